"""PredictionWriter: stream `predict` results to a CSV (or JSON lines) file, one row per input image."""

import csv
import json
from pathlib import Path
from typing import Literal

import torch
from jsonargparse.typing import PositiveInt
from lightning.pytorch.callbacks import BasePredictionWriter

from jersey_cls.run_folder import predictions_file


class PredictionWriter(BasePredictionWriter):
    def __init__(
        self, format: Literal["csv", "jsonl"] = "csv", top_k: PositiveInt = 5, path: str | None = None
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
        """
        super().__init__(write_interval="batch")
        self.format = format
        self.top_k = int(top_k)
        self.chosen_path = path
        self._file = None
        self._writer = None
        self.path: Path | None = None
        self.rows = 0

    def on_predict_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        k = min(self.top_k, len(pl_module.class_names))
        self._columns = ["path", "pred_label", "pred_prob"]
        self._columns += [f"top{i}_{kind}" for i in range(1, k + 1) for kind in ("label", "prob")]
        self._columns += ["label", "error"]
        stem = getattr(trainer.datamodule, "predict_name", "predictions")
        self.path = Path(self.chosen_path or predictions_file(Path(trainer.default_root_dir), stem, self.format))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed in on_predict_end
        if self.format == "csv":
            self._writer = csv.DictWriter(self._file, fieldnames=self._columns)
            self._writer.writeheader()
        self.rows = 0

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
        if self._file is None:
            return
        names = pl_module.class_names
        k = min(self.top_k, len(names))
        top_probs, top_indices = torch.topk(prediction.float().cpu(), k, dim=1)
        for i, path in enumerate(batch["path"]):
            row = {"path": path, "label": batch["label"][i], "error": batch["error"][i]}
            if not row["error"]:
                labels = [names[j] for j in top_indices[i].tolist()]
                probs = [round(p, 6) for p in top_probs[i].tolist()]
                row |= {"pred_label": labels[0], "pred_prob": probs[0]}
                for rank, (label, prob) in enumerate(zip(labels, probs, strict=True), start=1):
                    row |= {f"top{rank}_label": label, f"top{rank}_prob": prob}
            if self.format == "csv":
                self._writer.writerow(row)
            else:
                self._file.write(json.dumps({c: row.get(c, "") for c in self._columns}) + "\n")
            self.rows += 1

    def on_predict_end(self, trainer, pl_module) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            print(f"jersey-cls: wrote {self.rows} predictions to {self.path}")
