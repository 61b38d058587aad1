"""EvaluationReport: confusion matrix, sample predictions and the per-class report, per validation or test pass."""

import csv
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.trainer.states import TrainerFn
from rich.console import Console
from rich.table import Table
from torchmetrics.classification import MulticlassConfusionMatrix

from jersey_cls.plots import save_confusion_matrix, save_sample_grid


def per_class_rows(confusion: np.ndarray, class_names: list[str]) -> list[dict]:
    """label, support, correct, precision, recall, F1 and accuracy per class; support 0 gives empty ratios."""
    rows = []
    for index, label in enumerate(class_names):
        support, predicted = int(confusion[index].sum()), int(confusion[:, index].sum())
        correct = int(confusion[index, index])
        precision = correct / predicted if predicted else None
        recall = correct / support if support else None
        f1 = 2 * precision * recall / (precision + recall) if precision and recall else (0.0 if support else None)
        rows.append(
            {
                "label": label,
                "support": support,
                "correct": correct,
                "precision": precision,
                "recall": recall,
                "f1": f1,
                # per-class accuracy: the share of this number's crops read correctly
                "accuracy": recall,
            }
        )
    return rows


def most_confused_pairs(confusion: np.ndarray, class_names: list[str], top: int) -> list[tuple[str, str, int]]:
    off_diagonal = confusion.copy()
    np.fill_diagonal(off_diagonal, 0)
    order = np.argsort(off_diagonal, axis=None)[::-1][:top]
    pairs = [(int(i), int(j)) for i, j in zip(*np.unravel_index(order, confusion.shape), strict=True)]
    return [(class_names[i], class_names[j], int(off_diagonal[i, j])) for i, j in pairs if off_diagonal[i, j] > 0]


class EvaluationReport(pl.Callback):
    def __init__(self, num_samples: int = 32, top_confused: int = 20) -> None:
        """Pictures and tables of what the model gets wrong.

        After every validation epoch: ``<run>/confusion_matrix/epoch_NNN.png`` and ``<run>/samples/epoch_NNN.png``.
        After ``validate`` or ``test``: ``confusion_matrix/<stage>.png``, ``samples/<stage>.png`` and
        ``reports/<stage>_per_class.csv``, ``reports/<stage>_confused_pairs.csv`` (both printed as tables) and
        ``reports/<stage>_confusion_matrix.csv`` (counts; rows: true label, columns: predicted).
        With a WandbLogger the same figures and tables go to W&B.

        Args:
            num_samples: Crops in the sample-predictions grid, mistakes first.
            top_confused: Most confused (true, predicted) pairs to list.
        """
        super().__init__()
        self.num_samples = num_samples
        self.top_confused = top_confused
        self._confusion: MulticlassConfusionMatrix | None = None
        self._samples: list[tuple[torch.Tensor, int, int, float]] = []

    def _start(self, pl_module: pl.LightningModule) -> None:
        if self._confusion is None:
            self._confusion = MulticlassConfusionMatrix(len(pl_module.class_names))
        self._confusion = self._confusion.to(pl_module.device)
        self._confusion.reset()
        self._samples = []

    def _collect(self, trainer: pl.Trainer, logits: torch.Tensor | None, batch) -> None:
        if logits is None or batch is None or trainer.sanity_checking:
            return
        images, targets = batch["image"], batch["target"]
        probs, preds = logits.softmax(dim=1).max(dim=1)
        self._confusion.update(preds, targets)
        # A few crops from every batch: a pool several times the grid, spread over the split, so mistakes can
        # go first without holding the whole split in memory.
        batches = trainer.num_test_batches if trainer.testing else trainer.num_val_batches
        per_batch = -(-4 * self.num_samples // max(1, int(batches[0])))
        for image, target, pred, prob in list(zip(images, targets, preds, probs, strict=True))[:per_batch]:
            self._samples.append((image.cpu(), int(target), int(pred), float(prob)))

    def _finish(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.sanity_checking:
            return
        confusion = self._confusion.compute().cpu().numpy()  # summed over all ranks
        if not trainer.is_global_zero:
            return
        run = Path(trainer.default_root_dir)
        fitting = trainer.state.fn == TrainerFn.FITTING
        name = f"epoch_{trainer.current_epoch:03d}" if fitting else trainer.state.fn.value
        names = pl_module.class_names
        title = f"{stage} · {name} · top-1 {np.trace(confusion) / max(1, confusion.sum()):.3f}"
        matrix_png = save_confusion_matrix(confusion, names, run / "confusion_matrix" / f"{name}.png", title)
        figures = {f"{stage}/confusion_matrix": matrix_png}
        if self._samples:
            figures[f"{stage}/samples"] = self._save_samples(run / "samples" / f"{name}.png", names, title)
        if not fitting:
            self._report(trainer, confusion, names, run / "reports", stage)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                for key, path in figures.items():
                    logger.log_image(key=key, images=[str(path)], step=trainer.global_step)

    def _save_samples(self, path: Path, names: list[str], title: str) -> Path:
        chosen = sorted(self._samples, key=lambda s: s[1] == s[2])[: self.num_samples]  # mistakes first
        images = np.stack([s[0].permute(1, 2, 0).numpy() for s in chosen])
        return save_sample_grid(
            images, [names[s[1]] for s in chosen], [names[s[2]] for s in chosen], [s[3] for s in chosen], path, title
        )

    def _report(self, trainer: pl.Trainer, confusion: np.ndarray, names: list[str], folder: Path, stage: str) -> None:
        rows = per_class_rows(confusion, names)
        pairs = most_confused_pairs(confusion, names, self.top_confused)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{stage}_per_class.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
        with open(folder / f"{stage}_confused_pairs.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["true", "predicted", "count"])
            writer.writerows(pairs)
        with open(folder / f"{stage}_confusion_matrix.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["true \\ predicted", *names])
            writer.writerows([name, *row] for name, row in zip(names, confusion.tolist(), strict=True))

        def fmt(value):
            return "—" if value is None else f"{value:.3f}"

        table = Table(title=f"{stage}: per class", show_lines=False)
        for column in ("label", "support", "precision", "recall", "f1"):
            table.add_column(column, justify="right")
        for row in rows:
            style = "dim" if row["support"] == 0 else None
            cells = [row["label"], str(row["support"]), fmt(row["precision"]), fmt(row["recall"]), fmt(row["f1"])]
            table.add_row(*cells, style=style)
        confused = Table(title=f"{stage}: most confused (true → predicted)")
        for column in ("true", "predicted", "count"):
            confused.add_column(column, justify="right")
        for true, predicted, count in pairs:
            confused.add_row(true, predicted, str(count))
        console = Console()
        console.print(table)
        console.print(confused)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                columns = list(rows[0])
                data = [[row[c] for c in columns] for row in rows]
                logger.log_table(key=f"{stage}/per_class", columns=columns, data=data)
                logger.log_table(key=f"{stage}/confused_pairs", columns=["true", "predicted", "count"], data=pairs)

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._start(pl_module)

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self._start(pl_module)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._collect(trainer, outputs, batch)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._collect(trainer, outputs, batch)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        self._finish(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._finish(trainer, pl_module, "test")
