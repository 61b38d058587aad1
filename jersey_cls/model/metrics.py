"""The metrics validation and test log: accuracy, top-5, macro F1, calibration, and how illegible crops fare."""

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    BinaryPrecision,
    BinaryRecall,
    MulticlassAccuracy,
    MulticlassCalibrationError,
    MulticlassF1Score,
)

from jersey_cls.numbers import ILLEGIBLE


class SaidIllegible:
    """Scores the answer "illegible" as a yes/no question: the answer against the truth."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def update(self, scores: torch.Tensor, targets: torch.Tensor) -> None:
        super().update((scores.argmax(dim=1) == self.index).long(), (targets == self.index).long())


class IllegiblePrecision(SaidIllegible, BinaryPrecision):
    """Of the crops answered illegible, the share that are."""


class IllegibleRecall(SaidIllegible, BinaryRecall):
    """Of the illegible crops, the share answered so."""


def evaluation_metrics(class_names: list[str], prefix: str) -> MetricCollection:
    num_classes = len(class_names)
    metrics = {
        "acc_top1": MulticlassAccuracy(num_classes, top_k=1, average="micro"),
        "acc_top5": MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro"),
        "f1_macro": MulticlassF1Score(num_classes, average="macro"),
        # Expected calibration error of the answer's probability, 15 bins, as evaluation.calibration computes it.
        "ece": MulticlassCalibrationError(num_classes, n_bins=15, norm="l1"),
    }
    if ILLEGIBLE in class_names:
        illegible = class_names.index(ILLEGIBLE)
        metrics["legible_acc"] = MulticlassAccuracy(num_classes, average="micro", ignore_index=illegible)
        metrics["illegible_precision"] = IllegiblePrecision(illegible)
        metrics["illegible_recall"] = IllegibleRecall(illegible)
    # compute_groups=False: torchmetrics otherwise merges metrics whose states match after the first batch
    # (acc_top5 and f1_macro do, when that batch is all correct) and reports one's value for both.
    return MetricCollection(metrics, prefix=prefix, compute_groups=False)
