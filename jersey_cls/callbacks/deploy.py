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
from lightning.pytorch.callbacks import ModelCheckpoint
from torchmetrics import CatMetric

from jersey_cls.calibration import answer_and_confidence, calibration_error, fit_temperature, reliability
from jersey_cls.callbacks.ema import EMA
from jersey_cls.checkpoints import read_checkpoint
from jersey_cls.errors import JerseyInputError, JerseyWarning
from jersey_cls.export import ExportParityError, export_onnx, validation_crops
from jersey_cls.model import JerseyClassifier
from jersey_cls.model_card import count_flops, dataset_summary, write_model_card
from jersey_cls.plots import save_reliability
from jersey_cls.trainer import load_model


def best_of(trainer: pl.Trainer) -> ModelCheckpoint | None:
    """The checkpoint callback that ranks checkpoints by a metric, once it has saved its best; None before."""
    for callback in trainer.checkpoint_callbacks:
        if callback.monitor and callback.best_model_path and Path(callback.best_model_path).is_file():
            return callback
    return None


def callback_of(trainer: pl.Trainer, kind: type):
    return next((callback for callback in trainer.callbacks if isinstance(callback, kind)), None)


@torch.no_grad()
def uncalibrated_scores(model: JerseyClassifier, loader) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores before the temperature, and targets, of every crop of ``loader``'s split: under DDP each rank
    reads its share and every rank gets all of them."""
    model.eval()
    scores, targets = CatMetric().to(model.device), CatMetric().to(model.device)
    for batch in loader:
        if batch is not None:
            scores.update(model.head.scores(model.logits(batch["image"].to(model.device))))
            targets.update(batch["target"].to(model.device))
    return scores.compute().cpu(), targets.compute().long().cpu()


class Calibrate(pl.Callback):
    """When training ends, fit a temperature on the validation split so that an answer's probability matches how
    often such answers are right, and store it in the best checkpoint (and so in the export). Writes
    ``<run>/calibration.json`` and the reliability diagram ``<run>/calibration.png``: the calibration error before
    and after, on validation and on the test split, which the temperature never saw."""

    def __init__(self) -> None:
        super().__init__()
        self.result: dict | None = None

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if (best := best_of(trainer)) is None:
            return
        model = load_model(best.best_model_path).to(pl_module.device)
        splits = {"val": trainer.datamodule.val_dataloader()}
        if "test" in trainer.datamodule.splits:
            splits["test"] = trainer.datamodule.test_dataloader()
        scores = {name: uncalibrated_scores(model, loader) for name, loader in splits.items()}
        if not trainer.is_global_zero:
            return
        temperature = fit_temperature(*scores["val"])
        ece, curves = {}, {}
        for name, (split_scores, targets) in scores.items():
            for when, t in (("before", 1.0), ("after", temperature)):
                probabilities = (split_scores / t).softmax(dim=1)
                ece[f"{name} {when}"] = calibration_error(probabilities, targets)
                curves[f"{name}, {when} (ECE {ece[f'{name} {when}']:.3f})"] = reliability(
                    *answer_and_confidence(probabilities, targets)
                )
        checkpoint = torch.load(best.best_model_path, map_location="cpu", weights_only=True)
        checkpoint["state_dict"]["temperature"] = torch.tensor(temperature)
        trainer.strategy.checkpoint_io.save_checkpoint(checkpoint, best.best_model_path)
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
        best = best_of(trainer)
        if not self.enabled or not trainer.is_global_zero or best is None:
            return
        try:
            model = load_model(best.best_model_path)
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

    def __init__(self) -> None:
        super().__init__()
        self._log_dir: str | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._log_dir = trainer.log_dir  # a broadcast under DDP: asked here, where every rank asks at once

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or not trainer.is_global_zero:
            return
        if (best := best_of(trainer)) is None:
            warnings.warn("fit ended with no checkpoint to deploy: no model card", JerseyWarning, stacklevel=1)
            return
        path, run = Path(best.best_model_path), Path(trainer.default_root_dir)
        model = load_model(path)
        config_file = Path(self._log_dir or run) / "config.yaml"
        calibrate, export = callback_of(trainer, Calibrate), callback_of(trainer, ExportOnnx)
        ema = callback_of(trainer, EMA)
        card = write_model_card(
            run / "model_card.md",
            {
                "backbone": model.hparams.backbone,
                "head": f"{model.hparams.head} ({pl_module.head_choice})",
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


class ExportOnFitEnd(pl.Callback):
    def __init__(self, onnx: bool = True, calibrate: bool = True) -> None:
        """Split into Calibrate, ModelCard and the ``onnx`` section; named here so that a config saved before the
        split says how to update it.

        Args:
            onnx: Now ``onnx.enabled``.
            calibrate: Now the Calibrate entry of ``trainer.callbacks``.
        """
        raise JerseyInputError(
            "jersey_cls.callbacks.ExportOnFitEnd (in a config saved by an earlier jersey-cls) is now three parts: in "
            "that config's trainer.callbacks, replace its entry with `- class_path: jersey_cls.callbacks.Calibrate` "
            "(leave it out where it had calibrate: false) and `- class_path: jersey_cls.callbacks.ModelCard`, and "
            f"add the section `onnx: {{enabled: {str(onnx).lower()}}}`."
        )
