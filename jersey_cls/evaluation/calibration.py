"""Confidence a user can trust: a temperature fitted on held-out crops, and how well calibrated a model is."""

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import binary_calibration_error

from jersey_cls.model.bags import bag_loss

TEMPERATURES = torch.logspace(-1.5, 1.5, 301)  # 0.03 to 32, 1% apart


def fit_temperature(
    scores: torch.Tensor, targets: torch.Tensor, bags: torch.Tensor | None = None, illegible: int | None = None
) -> float:
    """The temperature T that makes softmax(scores / T) the likeliest explanation of ``targets`` (least
    negative log-likelihood; Guo et al. 2017). A grid search: the likelihood is smooth and has one minimum.
    With ``bags`` (a track per crop), ``targets`` are track labels, and the likelihood is the one a fit from track
    labels maximises (model.bags): a crop shows its track's number or nothing."""
    if bags is None:
        losses = [F.cross_entropy(scores / t, targets) for t in TEMPERATURES]
    else:
        losses = [bag_loss((scores / t).log_softmax(dim=1), targets, bags, illegible) for t in TEMPERATURES]
    return float(TEMPERATURES[int(torch.stack(losses).argmin())])


def calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of answers given with ``confidence``, right where ``correct``: torchmetrics'
    top-label ECE (l1, equal-width bins), the one the logged ``ece`` metric computes."""
    return float(binary_calibration_error(torch.as_tensor(confidence), torch.as_tensor(correct).long(), n_bins=bins))


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> tuple[np.ndarray, ...]:
    """Per confidence bin: mean confidence, accuracy and crop count, for a reliability diagram. The bins are
    torchmetrics': [i/bins, (i+1)/bins), and one of its own for a confidence of exactly 1."""
    which = np.searchsorted(np.linspace(0, 1, bins + 1), confidence, side="right") - 1
    counts = np.bincount(which, minlength=bins + 1)
    mean_conf = np.bincount(which, weights=confidence, minlength=bins + 1) / np.maximum(counts, 1)
    accuracy = np.bincount(which, weights=correct.astype(float), minlength=bins + 1) / np.maximum(counts, 1)
    return mean_conf, accuracy, counts


def risk_coverage(confidence: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy on the most confident share of crops, for every share: what a confidence threshold buys."""
    order = np.argsort(-confidence, kind="stable")
    answered = np.arange(1, len(order) + 1)
    return answered / len(order), np.cumsum(correct[order]) / answered


def answer_and_confidence(probabilities: torch.Tensor, targets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per crop: the answer's probability and whether the answer is right, as numpy arrays."""
    confidence, answer = probabilities.max(dim=1)
    return confidence.double().cpu().numpy(), (answer == targets).cpu().numpy()
