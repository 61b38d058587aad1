"""PredictionWriter: stream `predict` results to a CSV (or JSON lines) file, one row per input image."""

import json
import warnings
from pathlib import Path
from typing import Literal

import torch
from jsonargparse.typing import ClosedUnitInterval, NonNegativeInt, PositiveInt
from lightning.pytorch.callbacks import BasePredictionWriter

from jersey_cls.data.layouts import TRACK_KEY
from jersey_cls.deploy.review import crops_to_review, tracks_to_review, write_review
from jersey_cls.evaluation.spreadsheet import DictWriter, read_rows, write_dicts
from jersey_cls.evaluation.tracks import ABSTAIN, Tracks, soccernet_submission
from jersey_cls.messages import JerseyInputError, JerseyWarning, say
from jersey_cls.training.run_folder import predictions_file


class PredictionWriter(BasePredictionWriter):
    def __init__(
        self,
        format: Literal["csv", "jsonl"] = "csv",
        top_k: PositiveInt = 5,
        path: str | None = None,
        min_confidence: ClosedUnitInterval = 0.0,
        tracks: str | None = None,
        review: NonNegativeInt = 0,
    ) -> None:
        """Write predictions as they are made, so memory does not grow with the input.

        Columns: path, pred_label, pred_prob, top1_label, top1_prob, ... topK_prob, label (when the input
        has one: JSONL and ImageFolder splits), error (why an image could not be read; its predictions are empty).

        Args:
            format: "csv" or "jsonl" (JSON lines).
            top_k: Number of top labels and probabilities per row.
            path: File to write (overwritten if it exists). None: <run>/predictions/<input name>.<format>, e.g.
                predictions/crops.csv for --data.predict_path crops/, with -2, -3, ... added rather than
                overwriting an earlier one.
            min_confidence: Answer "?" (abstain) when the answer's probability is below this.
            tracks: One answer per player track as well, in <predictions file>_tracks.csv: "folder" groups the
                crops by their folder, any other word is the JSONL key that names a crop's track. None: the
                input's own tracks, when it has them (a SoccerNet split, JSONL rows with a track_id). Columns:
                track, answer, evidence (the answer's summed probability over the track's crops: how many frames
                show it; under the checkpoint's track threshold, the answer is illegible), confidence,
                crops_used (those read as legible), crops_total. For a SoccerNet split,
                also <predictions file>_submission.json, the benchmark's submission: {player id: number}, -1 for
                illegible.
            review: Also write this many crops the model is least sure of (with tracks: tracks, each as the crop
                that read its answer most surely) as a Roboflow JSONL split, <predictions file>_review/ with the
                images and annotations.jsonl, the model's guess as each label: import it, correct, and add it to
                your data. Least sure: the lowest probability of the likeliest answer (for a track, the track
                answer's confidence).
        """
        super().__init__(write_interval="batch")
        self.format = format
        self.top_k = int(top_k)
        self.chosen_path = path
        self.min_confidence = float(min_confidence)
        self.tracks = tracks
        self.review = int(review)
        self._file = None
        self._writer = None
        self._tracks: Tracks | None = None
        self.path: Path | None = None
        self.rows = 0

    def on_predict_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        k = min(self.top_k, len(pl_module.class_names))
        self._columns = ["path", "pred_label", "pred_prob"]
        self._columns += [f"top{i}_{kind}" for i in range(1, k + 1) for kind in ("label", "prob")]
        self._columns += ["label", "error"]
        read = trainer.datamodule.predict
        stem = read.name
        self.path = Path(self.chosen_path or predictions_file(Path(trainer.default_root_dir), stem, self.format))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed in on_predict_end
        if self.format == "csv":
            self._writer = DictWriter(self._file, fieldnames=self._columns)
            self._writer.writeheader()
        self._track_key = self.tracks or (TRACK_KEY if read.tracks else None)
        if read.layout == "soccernet" and self.tracks == "folder":  # a tracklet is a folder: the same grouping
            self._track_key = TRACK_KEY
        self._tracks = Tracks(pl_module.class_names) if self._track_key else None
        self.rows = 0

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
        if self._file is None:
            return
        names = pl_module.class_names
        k = min(self.top_k, len(names))
        probabilities = prediction.float().cpu()
        top_probs, top_indices = torch.topk(probabilities, k, dim=1)
        for i, path in enumerate(batch["path"]):
            row = {"path": path, "label": batch["label"][i], "error": batch["error"][i]}
            if not row["error"]:
                labels = [names[j] for j in top_indices[i].tolist()]
                probs = [round(p, 6) for p in top_probs[i].tolist()]
                answer = labels[0] if probs[0] >= self.min_confidence else ABSTAIN
                row |= {"pred_label": answer, "pred_prob": probs[0]}
                for rank, (label, prob) in enumerate(zip(labels, probs, strict=True), start=1):
                    row |= {f"top{rank}_label": label, f"top{rank}_prob": prob}
                if self._tracks is not None:
                    self._tracks.add(self._track_of(path, batch["fields"][i]), probabilities[i].numpy(), path)
            if self.format == "csv":
                self._writer.writerow(row)
            else:
                self._file.write(json.dumps({c: row.get(c, "") for c in self._columns}) + "\n")
            self.rows += 1

    def _track_of(self, path: str, fields: str) -> str:
        if self._track_key == "folder":
            return str(Path(path).parent)
        track = json.loads(fields).get(self._track_key)
        if track is None:
            raise JerseyInputError(
                f"--predictions.tracks {self._track_key}: {path} has no {self._track_key!r} key in its JSONL row. "
                "Name the key that holds each crop's track, or use --predictions.tracks folder."
            )
        return str(track)

    def on_predict_end(self, trainer, pl_module) -> None:
        if self._file is None:
            return
        self._file.close()
        self._file = None
        say(f"jersey-cls: wrote {self.rows} predictions to {self.path}")
        review = None
        if self.review and self._tracks is None:
            review = crops_to_review(self._read_back(), self.review)
        if self._tracks is not None:
            rows = self._tracks.answers(pl_module.track_threshold, self.min_confidence)
            tracks_path = self.path.with_name(f"{self.path.stem}_tracks.csv")
            write_dicts(tracks_path, rows, None if rows else ["track", "answer"])
            say(f"jersey-cls: wrote {len(rows)} track answers to {tracks_path}")
            read = trainer.datamodule.predict
            if read.layout == "soccernet" and self._track_key == TRACK_KEY:
                self._write_submission(rows, read.tracks)
            if self.review:
                answers = self._tracks.answers(pl_module.track_threshold)
                review = tracks_to_review(answers, self._tracks.crop_reading, self.review)
        if review is not None:
            annotations = write_review(self.path.with_name(f"{self.path.stem}_review"), review)
            say(f"jersey-cls: wrote the {len(review)} least-sure {'tracks' if self._tracks else 'crops'} to review "
                  f"to {annotations}")  # fmt: skip

    def _read_back(self) -> list[dict]:
        with open(self.path, newline="", encoding="utf-8") as f:
            return read_rows(f) if self.format == "csv" else [json.loads(line) for line in f]

    def _write_submission(self, rows: list[dict], every_track: list[str]) -> None:
        submission, lost = soccernet_submission(rows, every_track)
        path = self.path.with_name(f"{self.path.stem}_submission.json")
        path.write_text(json.dumps(submission, indent=1) + "\n")
        say(f"jersey-cls: wrote SoccerNet's submission for {len(submission)} tracks to {path}")
        if lost["00"]:
            warnings.warn(
                f"{path}: SoccerNet's format has integers only, so {len(lost['00'])} tracks answered 00 are written "
                f"as 0: {', '.join(lost['00'][:20])}. Their answer is 00 in {self.path.stem}_tracks.csv.",
                JerseyWarning,
                stacklevel=1,
            )
        if lost["not a number"]:
            warnings.warn(
                f"{path}: {len(lost['not a number'])} tracks answered a label that is not a number, written as -1: "
                f"{', '.join(lost['not a number'][:20])}.",
                JerseyWarning,
                stacklevel=1,
            )
