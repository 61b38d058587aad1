"""Calibrate: when training ends, the temperature that makes the best checkpoint's confidence truthful."""

import json
from pathlib import Path

import lightning.pytorch as pl
import torch
from torchmetrics import CatMetric

from jersey_cls.evaluation.calibration import answer_and_confidence, calibration_error, fit_temperature, reliability
from jersey_cls.evaluation.figures import save_reliability
from jersey_cls.model import JerseyClassifier
from jersey_cls.training.checkpoints import best_of, load_model, read_checkpoint


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
                answers = answer_and_confidence((split_scores / t).softmax(dim=1), targets)
                ece[f"{name} {when}"] = calibration_error(*answers)
                curves[f"{name}, {when} (ECE {ece[f'{name} {when}']:.3f})"] = reliability(*answers)
        checkpoint = read_checkpoint(Path(best.best_model_path))
        checkpoint["state_dict"]["temperature"] = torch.tensor(temperature)
        trainer.strategy.checkpoint_io.save_checkpoint(checkpoint, best.best_model_path)
        run = Path(trainer.default_root_dir)
        png = save_reliability(curves, run / "calibration.png", f"temperature {temperature:.3f}")
        self.result = {"temperature": temperature, "ece": ece, "png": str(png)}
        (run / "calibration.json").write_text(json.dumps(self.result, indent=2))
