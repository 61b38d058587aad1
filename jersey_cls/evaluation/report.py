"""EvaluationReport: confusion matrix, sample predictions, per-class report and calibration of a validation or
test pass."""

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.trainer.states import TrainerFn
from PIL import Image
from torchmetrics import CatMetric
from torchmetrics.classification import MulticlassConfusionMatrix

from jersey_cls.evaluation.figures import save_confusion_matrix
from jersey_cls.evaluation.label_audit import suspects
from jersey_cls.evaluation.passes import EvaluationPass
from jersey_cls.evaluation.reports import write_report
from jersey_cls.messages import say
from jersey_cls.synth.sheet import contact_sheet
from jersey_cls.training.run_folder import report_folder


class EvaluationReport(EvaluationPass):
    def __init__(self, num_samples: int = 32, top_confused: int = 20) -> None:
        """Pictures and tables of what the model gets wrong, and how far its confidence can be trusted.

        After every validation epoch of fit: ``<run>/confusion_matrix/epoch_NNN.png`` and
        ``<run>/samples/epoch_NNN.png``. After ``validate`` or ``test``, into ``<run>/reports/<checkpoint name>/``:
        the confusion matrix and sample grid, ``<stage>_per_class.csv`` and ``<stage>_confused_pairs.csv``
        (both printed as tables), ``<stage>_confusion_matrix.csv`` (counts; rows: true label), the
        reliability diagram ``<stage>_reliability.png`` and the risk-coverage curve ``<stage>_risk_coverage.png``;
        and how many crops the model confidently disagrees with (confident learning; `jersey-cls audit` lists them).
        With a WandbLogger the same figures and tables go to W&B.

        Args:
            num_samples: Crops in the sample-predictions grid, mistakes first.
            top_confused: Most confused (true, predicted) pairs to list.
        """
        super().__init__()
        self.num_samples = num_samples
        self.top_confused = top_confused
        self._confusion: MulticlassConfusionMatrix | None = None
        # Per crop; gathered from every rank.
        self._confidence, self._correct, self._probabilities, self._targets = (CatMetric() for _ in range(4))
        self._samples: list[tuple[torch.Tensor, int, int, float]] = []

    def start(self, pl_module: pl.LightningModule) -> None:
        if self._confusion is None:
            self._confusion = MulticlassConfusionMatrix(len(pl_module.class_names))
        for metric in (self._confusion, self._confidence, self._correct, self._probabilities, self._targets):
            metric.to(pl_module.device).reset()
        self._samples = []

    def collect(self, trainer: pl.Trainer, scores: torch.Tensor | None, batch) -> None:
        if scores is None or batch is None or trainer.sanity_checking:
            return
        images, targets = batch["image"], batch["target"]
        probs, preds = scores.softmax(dim=1).max(dim=1)
        self._confusion.update(preds, targets)
        self._confidence.update(probs.double())
        self._correct.update((preds == targets).double())
        if trainer.state.fn != TrainerFn.FITTING:
            self._probabilities.update(scores.softmax(dim=1).double())
            self._targets.update(targets.double())
        # A few crops from every batch: a pool several times the grid, spread over the split, so mistakes can
        # go first without holding the whole split in memory.
        batches = trainer.num_test_batches if trainer.testing else trainer.num_val_batches
        per_batch = -(-4 * self.num_samples // max(1, int(batches[0])))
        for image, target, pred, prob in list(zip(images, targets, preds, probs, strict=True))[:per_batch]:
            self._samples.append((image.cpu(), int(target), int(pred), float(prob)))

    def finish(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.sanity_checking:
            return
        confusion = self._confusion.compute().cpu().numpy()  # summed over all ranks
        fitting = trainer.state.fn == TrainerFn.FITTING
        if not fitting:
            confidence = self._confidence.compute().cpu().numpy()
            correct = self._correct.compute().cpu().numpy() > 0.5
            disagreements = len(suspects(self._probabilities.compute().cpu().numpy(),
                                         self._targets.compute().cpu().numpy().astype(int)))  # fmt: skip
        if not trainer.is_global_zero:
            return
        run = Path(trainer.default_root_dir)
        names = pl_module.class_names
        if fitting:
            name = f"epoch_{trainer.current_epoch:03d}"
            matrix_png, samples_png = run / "confusion_matrix" / f"{name}.png", run / "samples" / f"{name}.png"
        else:
            name = trainer.state.fn.value
            folder = report_folder(trainer)
            matrix_png, samples_png = folder / f"{stage}_confusion_matrix.png", folder / f"{stage}_samples.png"
        title = f"{stage} · {name} · top-1 {np.trace(confusion) / max(1, confusion.sum()):.3f}"
        figures = {f"{stage}/confusion_matrix": save_confusion_matrix(confusion, names, matrix_png, title)}
        if self._samples:
            figures[f"{stage}/samples"] = self._save_samples(samples_png, names, title)
        if not fitting:
            rows, pairs = write_report(folder, stage, confusion, names, confidence, correct, self.top_confused)
            say(f"jersey-cls: {stage}: the model confidently disagrees with {disagreements} of {len(correct)} "
                  "labels; where they are wrong, the figures above are limited by the labels. `jersey-cls audit` "
                  "lists them.")  # fmt: skip
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                for key, path in figures.items():
                    logger.log_image(key=key, images=[str(path)], step=trainer.global_step)
                if not fitting:
                    data = [list(row.values()) for row in rows]
                    logger.log_table(key=f"{stage}/per_class", columns=list(rows[0]), data=data)
                    logger.log_table(key=f"{stage}/confused_pairs", columns=["true", "predicted", "count"], data=pairs)

    def _save_samples(self, path: Path, names: list[str], title: str) -> Path:
        chosen = sorted(self._samples, key=lambda s: s[1] == s[2])[: self.num_samples]  # mistakes first
        crops = [Image.fromarray(image.permute(1, 2, 0).numpy()) for image, _, _, _ in chosen]
        captions = [f"{names[true]} → {names[pred]} ({prob:.2f})" for _, true, pred, prob in chosen]
        colours = ["black" if true == pred else "red" for _, true, pred, _ in chosen]
        return contact_sheet(crops, captions, path, title, colours)
