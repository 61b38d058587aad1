"""ExportOnFitEnd: when fit ends, calibrate the best checkpoint, export it to ONNX (checked) and write the model
card."""

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
from jersey_cls.export import export_onnx, validation_crops
from jersey_cls.model import JerseyClassifier
from jersey_cls.model_card import count_flops, dataset_summary, write_model_card
from jersey_cls.plots import save_reliability
from jersey_cls.trainer import load_model


@torch.no_grad()
def uncalibrated_scores(model: JerseyClassifier, loader) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    scores, targets = [], []
    for batch in loader:
        if batch is not None:
            scores.append(model.head.scores(model.logits(batch["image"])))
            targets.append(batch["target"])
    return torch.cat(scores), torch.cat(targets)


class ExportOnFitEnd(pl.Callback):
    def __init__(self, onnx: bool = True, calibrate: bool = True) -> None:
        """From the best checkpoint, write ``<run>/export/model.onnx`` + ``labels.json`` and ``<run>/model_card.md``.

        Args:
            onnx: Export to ONNX and check it against PyTorch (needs `pip install 'jersey-cls[export]'`).
            calibrate: Fit a temperature on the validation split, so that an answer's probability matches how
                often such answers are right; it is stored in the best checkpoint and the export. The model card
                reports the calibration error before and after, on validation and (held out) test.
        """
        super().__init__()
        self.onnx = onnx
        self.calibrate = calibrate

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        log_dir = trainer.log_dir  # a broadcast under DDP: every rank must ask
        if not trainer.is_global_zero or trainer.checkpoint_callback is None:
            return
        run = Path(trainer.default_root_dir)
        best = trainer.checkpoint_callback
        path = best.best_model_path or best.last_model_path
        if not path or not Path(path).is_file():
            warnings.warn(
                "no model card or export: fit ended with no checkpoint to deploy", JerseyWarning, stacklevel=1
            )
            return
        model = load_model(path)
        calibration = self._calibrate(trainer, model, Path(path), run) if self.calibrate else None
        export = None
        if self.onnx:
            try:
                export = export_onnx(model, validation_crops(trainer.datamodule), run / "export")
            except JerseyInputError as error:
                warnings.warn(f"skipping the ONNX export: {error}", JerseyWarning, stacklevel=1)
        config_file = Path(log_dir or run) / "config.yaml"
        card = write_model_card(
            run / "model_card.md",
            {
                "backbone": model.hparams.backbone,
                "started_from": pl_module.started_from,
                "parameters": sum(p.numel() for p in model.parameters()),
                "flops": count_flops(model.net, model.hparams.image_size),
                "image_size": model.hparams.image_size,
                "best_acc": float(best.best_model_score) if best.best_model_score is not None else float("nan"),
                "best_epoch": read_checkpoint(Path(path))["epoch"],
                "best_checkpoint": path,
                "ema": any(isinstance(cb, EMA) and cb.enabled for cb in trainer.callbacks),
                "calibration": calibration,
                "export": export,
                "class_names": model.class_names,
                "dataset_summary": dataset_summary(run),
                "command": shlex.join(["jersey-cls", *sys.argv[1:]]),
                "config": config_file.read_text() if config_file.is_file() else "(not saved)",
            },
        )
        print(f"jersey-cls: model card {card}" + (f", ONNX {export['onnx_path']}" if export else ""))

    def _calibrate(self, trainer, model: JerseyClassifier, path: Path, run: Path) -> dict:
        """Fit the temperature on validation, measure it there and on test, and store it in ``path``."""
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
        model.temperature.fill_(temperature)
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        for state in (checkpoint["state_dict"], checkpoint.get("current_model_state", {})):
            state["temperature"] = torch.tensor(temperature)
        trainer.strategy.checkpoint_io.save_checkpoint(checkpoint, path)
        png = save_reliability(curves, run / "calibration.png", f"temperature {temperature:.3f}")
        result = {"temperature": temperature, "ece": ece, "png": str(png)}
        (run / "calibration.json").write_text(json.dumps(result, indent=2))
        return result
