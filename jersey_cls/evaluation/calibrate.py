"""Calibrate: when training ends, the temperature that makes the best checkpoint's confidence truthful."""

import json
from pathlib import Path

import lightning.pytorch as pl
import torch
from torchmetrics import CatMetric

from jersey_cls.data.tracks import track_truths
from jersey_cls.evaluation.calibration import answer_and_confidence, calibration_error, fit_temperature, reliability
from jersey_cls.evaluation.figures import save_reliability
from jersey_cls.evaluation.tracks import Tracks, fit_threshold
from jersey_cls.model import JerseyClassifier
from jersey_cls.numbers import ILLEGIBLE
from jersey_cls.training.checkpoints import best_of, load_model, read_checkpoint


@torch.no_grad()
def uncalibrated_scores(model: JerseyClassifier, loader) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scores before the temperature, targets and sample indices of every crop of ``loader``'s split: under DDP
    each rank reads its share and every rank gets all of them."""
    model.eval()
    scores, targets, index = (CatMetric().to(model.device) for _ in range(3))
    for batch in loader:
        if batch is not None:
            scores.update(model.head.scores(model.logits(batch["image"].to(model.device))))
            targets.update(batch["target"].to(model.device))
            index.update(batch["index"].to(model.device))
    return scores.compute().cpu(), targets.compute().long().cpu(), index.compute().long().cpu()


def track_of_each(loader, split, index: torch.Tensor) -> torch.Tensor:
    """A track number for each crop ``index`` names in ``loader``'s dataset."""
    numbered: dict[str, int] = {}
    samples = loader.dataset.samples
    return torch.tensor([numbered.setdefault(split.tracks[samples[i][0]], len(numbered)) for i in index.tolist()])


def track_threshold(model: JerseyClassifier, probabilities: torch.Tensor, loader, split, index) -> float:
    """The track threshold fitted on ``split``'s tracks (evaluation.tracks) from these crop probabilities."""
    tracks, labels, samples = Tracks(model.class_names), {}, loader.dataset.samples
    for i, crop in zip(index.tolist(), probabilities.numpy(), strict=True):
        path, target = samples[i]
        tracks.add(split.tracks[path], crop)
        labels[path] = model.class_names[target]
    return fit_threshold(tracks, track_truths(split, labels))


class Calibrate(pl.Callback):
    """When training ends, fit a temperature on the validation split so that an answer's probability matches how
    often such answers are right, and store it in the best checkpoint (and so in the export). Crops labelled by
    their player track (SoccerNet's) are fitted by the likelihood of what such a label says (model.bags): a frame
    shows its track's number or nothing. With tracks in val, the track threshold is fitted again on the
    calibrated probabilities and stored beside it. Writes
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
        data, (val_scores, val_targets, val_index) = trainer.datamodule, scores["val"]
        val = data.splits["val"]
        samples = splits["val"].dataset.samples
        tracked = bool(val.tracks) and all(samples[i][0] in val.tracks for i in val_index.tolist())
        if data.labels_per_track and tracked:  # a frame shows its track's number or nothing: that likelihood
            bags = track_of_each(splits["val"], val, val_index)
            temperature = fit_temperature(val_scores, val_targets, bags, model.class_names.index(ILLEGIBLE))
        else:
            temperature = fit_temperature(val_scores, val_targets)
        threshold = None
        if tracked:  # the track threshold was fitted before the temperature: again, after it
            calibrated = (val_scores / temperature).softmax(dim=1)
            threshold = track_threshold(model, calibrated, splits["val"], val, val_index)
        ece, curves = {}, {}
        for name, (split_scores, targets, _) in scores.items():
            for when, t in (("before", 1.0), ("after", temperature)):
                answers = answer_and_confidence((split_scores / t).softmax(dim=1), targets)
                ece[f"{name} {when}"] = calibration_error(*answers)
                curves[f"{name}, {when} (ECE {ece[f'{name} {when}']:.3f})"] = reliability(*answers)
        checkpoint = read_checkpoint(Path(best.best_model_path))
        checkpoint["state_dict"]["temperature"] = torch.tensor(temperature)
        if threshold is not None:
            checkpoint["track_threshold"] = threshold
        trainer.strategy.checkpoint_io.save_checkpoint(checkpoint, best.best_model_path)
        run = Path(trainer.default_root_dir)
        png = save_reliability(curves, run / "calibration.png", f"temperature {temperature:.3f}")
        self.result = {"temperature": temperature, "ece": ece, "png": str(png)}
        if threshold is not None:
            self.result["track_threshold"] = threshold
        (run / "calibration.json").write_text(json.dumps(self.result, indent=2))
