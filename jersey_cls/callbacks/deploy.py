"""What fit leaves behind for deployment, one job per callback, each at its own stage of the end of fit, so their
order in the config does not matter: Calibrate when training ends, ExportOnnx when fit ends, ModelCard at teardown.
"""

import json
import shlex
import sys
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch

from jersey_cls.calibration import answer_and_confidence, calibration_error, fit_temperature, reliability
from jersey_cls.callbacks.ema import EMA
from jersey_cls.checkpoints import read_checkpoint
from jersey_cls.errors import JerseyInputError, JerseyWarning
from jersey_cls.export import ExportParityError, export_onnx, validation_crops
from jersey_cls.model import JerseyClassifier
from jersey_cls.model_card import count_flops, dataset_summary, write_model_card
from jersey_cls.plots import save_reliability
from jersey_cls.trainer import load_model


def best_checkpoint(trainer: pl.Trainer) -> Path | None:
    """The best checkpoint this fit knows of, from the first checkpoint callback that monitors a metric."""
    for callback in trainer.checkpoint_callbacks:
        if callback.monitor and callback.best_model_path and Path(callback.best_model_path).is_file():
            return Path(callback.best_model_path)
    return None


def find(trainer: pl.Trainer, kind: type):
    return next((callback for callback in trainer.callbacks if isinstance(callback, kind)), None)


@torch.no_grad()
def uncalibrated_scores(model: JerseyClassifier, loader) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    scores, targets = [], []
    for batch in loader:
        if batch is not None:
            scores.append(model.head.scores(model.logits(batch["image"])))
            targets.append(batch["target"])
    return torch.cat(scores), torch.cat(targets)


class Calibrate(pl.Callback):
    """When training ends, fit a temperature on the validation split so that an answer's probability matches how
    often such answers are right, and store it in the best checkpoint (and so in the export). Writes
    ``<run>/calibration.json`` and the reliability diagram ``<run>/calibration.png``: the calibration error before
    and after, on validation and on the test split, which the temperature never saw."""

    def __init__(self) -> None:
        super().__init__()
        self.result: dict | None = None

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        path = best_checkpoint(trainer)
        if not trainer.is_global_zero or path is None:
            return
        model = load_model(path)
        splits = {"val": trainer.datamodule.val_dataloader()}
        if "test" in trainer.datamodule.splits:
            splits["test"] = trainer.datamodule.test_dataloader()
        scores = {name: uncalibrated_scores(model, loader) for name, loader in splits.items()}
        temperature = fit_temperature(*scores["val"])
        ece, curves = {}, {}
        for name, (split_scores, targets) in scores.items():
            for when, t in (("before", 1.0), ("after", temperature)):
                probabilities = (split_scores / t).softmax(dim=1)
                ece[f"{name} {when}"] = calibration_error(probabilities, targets)
                curves[f"{name}, {when} (ECE {ece[f'{name} {when}']:.3f})"] = reliability(
                    *answer_and_confidence(probabilities, targets)
                )
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        checkpoint["state_dict"]["temperature"] = torch.tensor(temperature)
        trainer.strategy.checkpoint_io.save_checkpoint(checkpoint, path)
        run = Path(trainer.default_root_dir)
        png = save_reliability(curves, run / "calibration.png", f"temperature {temperature:.3f}")
        self.result = {"temperature": temperature, "ece": ece, "png": str(png)}
        (run / "calibration.json").write_text(json.dumps(self.result, indent=2))


class ExportOnnx(pl.Callback):
    def __init__(self, enabled: bool = True) -> None:
        """When fit ends, export the best checkpoint to ``<run>/export/model.onnx`` and ``labels.json``, checked
        against PyTorch on validation crops.

        Args:
            enabled: Export. Needs onnx and onnxruntime (`pip install 'jersey-cls[export]'`); without them fit
                warns and goes on.
        """
        super().__init__()
        self.enabled = enabled
        self.result: dict | None = None

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        path = best_checkpoint(trainer)
        if not self.enabled or not trainer.is_global_zero or path is None:
            return
        try:
            model = load_model(path)
            out = Path(trainer.default_root_dir) / "export"
            self.result = export_onnx(model, validation_crops(trainer.datamodule), out)
        except (JerseyInputError, ExportParityError) as error:
            warnings.warn(f"skipping the ONNX export: {error}", JerseyWarning, stacklevel=1)


def calibration_of(path: Path, run: Path) -> dict | None:
    """``<run>/calibration.json`` when it describes the temperature the checkpoint holds: a fit resumed after its
    last epoch goes straight to its end, and the calibration is the one the first fit made."""
    recorded = run / "calibration.json"
    if not recorded.is_file():
        return None
    calibration = json.loads(recorded.read_text())
    temperature = float(read_checkpoint(path)["state_dict"]["temperature"])
    return calibration if abs(calibration["temperature"] - temperature) < 1e-6 else None


class ModelCard(pl.Callback):
    """At the end of fit, ``<run>/model_card.md``: backbone, start, size, FLOPs, classes, data, best accuracy,
    calibration, export, the command and the config."""

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        log_dir = trainer.log_dir  # a broadcast under DDP: every rank must ask
        if not trainer.is_global_zero:
            return
        path = best_checkpoint(trainer)
        if path is None:
            warnings.warn("fit ended with no checkpoint to deploy: no model card", JerseyWarning, stacklevel=1)
            return
        model = load_model(path)
        run = Path(trainer.default_root_dir)
        config_file = Path(log_dir or run) / "config.yaml"
        best = next(c for c in trainer.checkpoint_callbacks if c.monitor and c.best_model_path)
        calibrate, export, ema = find(trainer, Calibrate), find(trainer, ExportOnnx), find(trainer, EMA)
        card = write_model_card(
            run / "model_card.md",
            {
                "backbone": model.hparams.backbone,
                "started_from": pl_module.started_from,
                "parameters": sum(p.numel() for p in model.parameters()),
                "flops": count_flops(model.net, model.hparams.image_size),
                "image_size": model.hparams.image_size,
                "best_acc": float(best.best_model_score) if best.best_model_score is not None else float("nan"),
                "best_epoch": read_checkpoint(path)["epoch"],
                "best_checkpoint": str(path),
                "ema": ema is not None and ema.enabled,
                "calibration": calibrate.result if calibrate and calibrate.result else calibration_of(path, run),
                "export": export.result if export else None,
                "class_names": model.class_names,
                "dataset_summary": dataset_summary(run),
                "command": shlex.join(["jersey-cls", *sys.argv[1:]]),
                "config": config_file.read_text() if config_file.is_file() else "(not saved)",
            },
        )
        exported = f", ONNX {export.result['onnx_path']}" if export and export.result else ""
        print(f"jersey-cls: model card {card}{exported}")
