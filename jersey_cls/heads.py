"""How the backbone's outputs become an answer over ``class_names``, and what the training loss is.

Both heads are extra units of timm's own classifier, so any backbone, the EMA and the export work unchanged.
"""

import torch
import torch.nn.functional as F
from torch import nn

from jersey_cls.errors import JerseyInputError
from jersey_cls.numbers import NO_TENS, digits, is_legal

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
    2021). It answers with the likeliest legal (tens, units) pair, so it reads numbers absent from train."""

    def __init__(self, class_names: list[str]) -> None:
        super().__init__()
        not_numbers = [name for name in class_names if not is_legal(name)]
        if not_numbers:
            raise JerseyInputError(
                f"--model.head digits reads the numbers 0-99 and 00, and the class list has other labels: "
                f"{not_numbers[:10]}. Relabel or drop them, or use --model.head classes."
            )
        self.num_classes = len(class_names)
        self.num_outputs = self.num_classes + TENS_OUTPUTS + UNITS_OUTPUTS
        tens, units = zip(*(digits(name) for name in class_names), strict=True)
        self.register_buffer("class_tens", torch.tensor(tens), persistent=False)
        self.register_buffer("class_units", torch.tensor(units), persistent=False)

    def split(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return logits.split([self.num_classes, TENS_OUTPUTS, UNITS_OUTPUTS], dim=1)

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """log p(tens) + log p(units) of each class's digits."""
        _, tens, units = self.split(logits)
        return tens.log_softmax(dim=1)[:, self.class_tens] + units.log_softmax(dim=1)[:, self.class_units]

    def whole_number_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return self.split(logits)[0]

    def loss(self, logits, targets, weight=None, label_smoothing: float = 0.0) -> torch.Tensor:
        whole, tens, units = self.split(logits)
        loss = F.cross_entropy(whole, targets, weight=weight, label_smoothing=label_smoothing)
        loss = loss + F.cross_entropy(tens, self.class_tens[targets], label_smoothing=label_smoothing)
        return loss + F.cross_entropy(units, self.class_units[targets], label_smoothing=label_smoothing)


HEADS = {"classes": ClassesHead, "digits": DigitsHead}
