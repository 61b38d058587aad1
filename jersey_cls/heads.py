"""How the backbone's outputs become an answer over ``class_names``, and what the training loss is.

Both heads are extra units of timm's own classifier, so any backbone, the EMA and the export work unchanged.
"""

import torch
import torch.nn.functional as F
from torch import nn

from jersey_cls.errors import JerseyInputError
from jersey_cls.numbers import ILLEGIBLE, NO_TENS, digits, is_legal

TENS_OUTPUTS, UNITS_OUTPUTS = NO_TENS + 1, 10


class ClassesHead(nn.Module):
    """One output per class: the scores are the logits."""

    def __init__(self, class_names: list[str]) -> None:
        super().__init__()
        self.num_classes = len(class_names)
        self.num_outputs = self.num_classes

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        return logits

    def whole_number_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return logits

    def loss(self, logits, targets, weight=None, label_smoothing: float = 0.0) -> torch.Tensor:
        return F.cross_entropy(logits, targets, weight=weight, label_smoothing=label_smoothing)


class DigitsHead(nn.Module):
    """A whole-number output per class plus tens (or none) and units outputs, trained together (Vats et al.
    2021). It answers with the likeliest legal (tens, units) pair, so it reads numbers absent from train. With an
    "illegible" class, the whole-number output says how likely a crop is illegible, and the digits share the
    rest."""

    def __init__(self, class_names: list[str]) -> None:
        super().__init__()
        not_numbers = [name for name in class_names if not is_legal(name) and name != ILLEGIBLE]
        if not_numbers:
            raise JerseyInputError(
                f"--model.head digits reads the numbers 0-99 and 00, and the class list has other labels: "
                f"{not_numbers[:10]}. Relabel or drop them, or use --model.head classes."
            )
        self.num_classes = len(class_names)
        self.num_outputs = self.num_classes + TENS_OUTPUTS + UNITS_OUTPUTS
        self.illegible = class_names.index(ILLEGIBLE) if ILLEGIBLE in class_names else None
        if self.illegible not in (None, self.num_classes - 1):
            raise JerseyInputError(f"the class list must end with {ILLEGIBLE!r}; it is at {self.illegible}")
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

    def whole_number_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return self.split(logits)[0]

    def loss(self, logits, targets, weight=None, label_smoothing: float = 0.0) -> torch.Tensor:
        whole, tens, units = self.split(logits)
        loss = F.cross_entropy(whole, targets, weight=weight, label_smoothing=label_smoothing)
        legible = targets != self.illegible if self.illegible is not None else torch.ones_like(targets, dtype=bool)
        if legible.any():  # an illegible crop has no digits to learn
            tens_target, units_target = self.class_tens[targets[legible]], self.class_units[targets[legible]]
            loss = loss + F.cross_entropy(tens[legible], tens_target, label_smoothing=label_smoothing)
            loss = loss + F.cross_entropy(units[legible], units_target, label_smoothing=label_smoothing)
        return loss


HEADS = {"classes": ClassesHead, "digits": DigitsHead}
