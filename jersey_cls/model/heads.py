"""The heads: how the backbone's outputs become an answer over ``class_names``, what the training loss is, which
labels a head can learn, what it carries over to a new run and what it logs beside the answer.

Both heads are extra units of timm's own classifier, so any backbone, the EMA and the export work unchanged. A
new head is a class here, with these members, and a name in HEADS and HeadName.
"""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from jersey_cls.model.bags import at_least_one, bag_loss
from jersey_cls.numbers import ILLEGIBLE, NO_TENS, digits, is_legal, require_numbers

TENS_OUTPUTS, UNITS_OUTPUTS = NO_TENS + 1, 10


class ClassesHead(nn.Module):
    """One output per class: the scores are the logits. Any label."""

    all_numbers = False  # the class list is train's labels
    extra_rows = 0  # classifier rows beyond one per class, carried over whole by --model.init_from

    def __init__(self, class_names: list[str]) -> None:
        super().__init__()
        self.num_classes = len(class_names)
        self.num_outputs = self.num_classes

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        return logits

    def extra_metrics(self) -> dict:
        """Validation metrics of the head's own outputs, {name: (metric, the logits it reads)}."""
        return {}

    def loss(self, logits, targets, weight=None, label_smoothing: float = 0.0) -> torch.Tensor:
        return F.cross_entropy(logits, targets, weight=weight, label_smoothing=label_smoothing)

    def bag_loss(self, logits, targets, bags, illegible: int, label_smoothing: float = 0.0) -> torch.Tensor:
        """The loss of frames labelled by their track, in bags of one track's frames (model.bags)."""
        return smoothed(bag_loss, logits.log_softmax(dim=1), targets, bags, illegible, label_smoothing=label_smoothing)


class DigitsHead(nn.Module):
    """A whole-number output per class plus tens (or none) and units outputs, trained together (Vats et al.
    2021). It answers with the likeliest legal (tens, units) pair, so it reads numbers absent from train. With an
    "illegible" class, the whole-number output says how likely a crop is illegible, and the digits share the
    rest. Jersey numbers (0-99, 00) only."""

    all_numbers = True  # the class list is the 101 legal numbers, those train lacks included
    extra_rows = TENS_OUTPUTS + UNITS_OUTPUTS

    def __init__(self, class_names: list[str]) -> None:
        super().__init__()
        require_numbers([name for name in class_names if name != ILLEGIBLE], "the class list")
        self.num_classes = len(class_names)
        self.num_outputs = self.num_classes + TENS_OUTPUTS + UNITS_OUTPUTS
        self.illegible = class_names.index(ILLEGIBLE) if ILLEGIBLE in class_names else None
        assert self.illegible in (None, self.num_classes - 1), "the data puts illegible last"
        tens, units = zip(*(digits(name) if name != ILLEGIBLE else (0, 0) for name in class_names), strict=True)
        self.register_buffer("class_tens", torch.tensor(tens), persistent=False)
        self.register_buffer("class_units", torch.tensor(units), persistent=False)

    def split(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return logits.split([self.num_classes, TENS_OUTPUTS, UNITS_OUTPUTS], dim=1)

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """log p(tens) + log p(units) of each class's digits (+ log p(legible), with an illegible class)."""
        whole, tens, units = self.split(logits)
        scores = tens.log_softmax(dim=1)[:, self.class_tens] + units.log_softmax(dim=1)[:, self.class_units]
        if self.illegible is None:
            return scores
        illegible = whole.log_softmax(dim=1)[:, self.illegible : self.illegible + 1]
        legible = torch.log1p(-illegible.exp().clamp(max=1 - 1e-6))
        return torch.cat([scores[:, : self.illegible] + legible, illegible], dim=1)  # illegible is the last class

    def extra_metrics(self) -> dict:
        """The whole-number output's own accuracy, beside the answer's."""
        whole_number = MulticlassAccuracy(self.num_classes, top_k=1, average="micro")
        return {"whole_number_acc": (whole_number, lambda logits: self.split(logits)[0])}

    def bag_loss(self, logits, targets, bags, illegible: int, label_smoothing: float = 0.0) -> torch.Tensor:
        """The answer (digits and legibility) and the whole-number output each learn the track labels
        (model.bags), and in a bag with a number at least one frame shows its tens and its units: the digit
        outputs' own signal, as in ``loss``, with ten or eleven classes to tell apart rather than 101."""
        whole, tens, units = self.split(logits)
        loss = smoothed(
            bag_loss, self.scores(logits).log_softmax(dim=1), targets, bags, illegible, label_smoothing=label_smoothing
        )
        loss = loss + smoothed(
            bag_loss, whole.log_softmax(dim=1), targets, bags, illegible, label_smoothing=label_smoothing
        )
        legible = targets != illegible
        for outputs, digit in ((tens, self.class_tens), (units, self.class_units)):
            log_probs = outputs[legible].log_softmax(dim=1)
            shown = log_probs.gather(1, digit[targets[legible]][:, None])[:, 0]
            loss = loss + (1 - label_smoothing) * at_least_one(shown, bags[legible])
            loss = loss - label_smoothing * log_probs.mean() if legible.any() else loss
        return loss

    def loss(self, logits, targets, weight=None, label_smoothing: float = 0.0) -> torch.Tensor:
        whole, tens, units = self.split(logits)
        loss = F.cross_entropy(whole, targets, weight=weight, label_smoothing=label_smoothing)
        legible = targets != self.illegible if self.illegible is not None else torch.ones_like(targets, dtype=bool)
        if legible.any():  # an illegible crop has no digits to learn
            tens_target, units_target = self.class_tens[targets[legible]], self.class_units[targets[legible]]
            loss = loss + F.cross_entropy(tens[legible], tens_target, label_smoothing=label_smoothing)
            loss = loss + F.cross_entropy(units[legible], units_target, label_smoothing=label_smoothing)
        return loss


def smoothed(loss, log_probs: torch.Tensor, *args, label_smoothing: float = 0.0) -> torch.Tensor:
    """``loss(log_probs, *args)`` with label smoothing's share of a uniform target."""
    return (1 - label_smoothing) * loss(log_probs, *args) - label_smoothing * log_probs.mean()


HEADS = {"classes": ClassesHead, "digits": DigitsHead}
HeadName = Literal["auto", "classes", "digits"]


def all_numbers(head: str) -> bool | None:
    """Whether a head's class list is the 101 legal numbers; None for auto, which decides from train's labels."""
    return HEADS[head].all_numbers if head in HEADS else None


def choose_head(class_names: list[str]) -> tuple[str, str]:
    """--model.head auto: the digits head when every class is a jersey number (or illegible), else classes;
    returns the head and why."""
    others = [name for name in class_names if name != ILLEGIBLE and not is_legal(name)]
    if others:
        return "classes", f"--model.head auto, as some labels are not jersey numbers: {others[:5]}"
    return "digits", "--model.head auto, as every label is a jersey number; it also reads numbers train lacks"
