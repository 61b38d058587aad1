"""TrackAccuracy: one answer per player track in validation and test, scored as SoccerNet's benchmark scores it."""

import lightning.pytorch as pl
import torch
from torchmetrics import CatMetric

from jersey_cls.data.tracks import track_truths
from jersey_cls.evaluation.passes import EvaluationPass
from jersey_cls.evaluation.spreadsheet import write_dicts
from jersey_cls.evaluation.tracks import Tracks, fit_threshold
from jersey_cls.numbers import ILLEGIBLE
from jersey_cls.training.run_folder import report_folder

STAGE_SPLITS = {"val": "val", "test": "test"}


class TrackAccuracy(EvaluationPass):
    """When the evaluated split's crops belong to player tracks (SoccerNet tracklets, JSONL rows with a
    ``track_id``): each track gets one answer by the rule of predict's tracks file (evaluation.tracks), and
    ``val/track_acc`` or ``test/track_acc`` is the share of tracks answered exactly (the ``illegible`` tracks,
    SoccerNet's -1, included, when the run learns that class); ``tracks_read`` the share answered a number;
    ``track_score`` the accuracy with ties broken by how surely the truths were read (what ranks checkpoints).
    While fitting, each validation fits the model's track threshold on the val tracks (logged as
    ``val/track_threshold``); the checkpoints keep it, and test and predict use it. After ``validate`` or
    ``test``, ``<stage>_tracks.csv`` in the report folder lists each track: truth, answer, evidence, confidence,
    crops read as legible and crops read."""

    def __init__(self) -> None:
        super().__init__()
        self._index, self._probabilities = CatMetric(), CatMetric()  # per crop; gathered from every rank

    def start(self, pl_module: pl.LightningModule) -> None:
        for metric in (self._index, self._probabilities):
            metric.to(pl_module.device).reset()

    def collect(self, trainer: pl.Trainer, scores: torch.Tensor | None, batch) -> None:
        if scores is not None and batch is not None and not trainer.sanity_checking:
            self._index.update(batch["index"])
            self._probabilities.update(scores.float().softmax(dim=1))

    def finish(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        split = trainer.datamodule.splits.get(STAGE_SPLITS[stage]) if trainer.datamodule else None
        if trainer.sanity_checking or split is None or not split.tracks or not self._index.update_count:
            return
        loader = trainer.val_dataloaders if stage == "val" else trainer.test_dataloaders
        samples = loader.dataset.samples
        names = pl_module.class_names
        indices = self._index.compute().long().cpu().tolist()
        tracks, labels = Tracks(names), {}
        for index, probabilities in zip(indices, self._probabilities.compute().cpu().numpy(), strict=True):
            path, target = samples[index]
            if path in split.tracks:
                tracks.add(split.tracks[path], probabilities)
                labels[path] = names[target]
        truths = track_truths(split, labels)
        if not truths:
            return
        if trainer.state.fn == "fit":  # the rule that reads the most val tracks right goes with the weights
            pl_module.track_threshold = fit_threshold(tracks, truths)
            pl_module.log("val/track_threshold", pl_module.track_threshold, batch_size=len(truths))
        rows = [{"truth": truths[row["track"]], **row} for row in tracks.answers(pl_module.track_threshold)]
        accuracy = sum(row["truth"] == row["answer"] for row in rows) / len(rows)
        read = sum(row["answer"] != ILLEGIBLE for row in rows) / len(rows)
        pl_module.log(f"{stage}/track_acc", accuracy, batch_size=len(rows))
        pl_module.log(f"{stage}/tracks_read", read, batch_size=len(rows))
        # A few dozen val tracks often tie on accuracy; the share of each track's evidence that its truth holds
        # breaks the tie (at 1/1000 it cannot outweigh one track of up to 1,000), toward the surer model.
        score = accuracy + 0.001 * sum(tracks.truth_share(row["track"], row["truth"]) for row in rows) / len(rows)
        pl_module.log(f"{stage}/track_score", score, batch_size=len(rows))
        if trainer.is_global_zero and trainer.state.fn != "fit":
            path = report_folder(trainer) / f"{stage}_tracks.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_dicts(path, rows)
