"""Confident learning (Northcutt, Jiang & Chuang, JMLR 2021): which given labels are probably wrong, from
out-of-sample predicted probabilities.

A class's threshold is the mean probability the model gives that class over the crops labelled with it (the
paper's t_j, eq. 2). A crop counts for class j when its probability of j reaches t_j; of the classes it counts
for, it is put with the likeliest (the paper's confident joint C[given][y*], eq. 1). A crop whose y* is not
its given label is a suspect: the off-diagonal of the confident joint (the paper's C_{ỹ,y*} method). Suspects
are ranked by how little the model believes the given label.
"""

from dataclasses import dataclass

import numpy as np


def thresholds(probabilities: np.ndarray, given: np.ndarray) -> np.ndarray:
    """t_j: the mean probability of class j over the crops labelled j; inf for a class no crop is labelled with,
    so that no crop is counted for it."""
    classes = probabilities.shape[1]
    t = np.full(classes, np.inf)
    for j in range(classes):
        labelled = given == j
        if labelled.any():
            t[j] = probabilities[labelled, j].mean()
    return t


def confident_labels(probabilities: np.ndarray, t: np.ndarray) -> np.ndarray:
    """y* per crop: the likeliest class among those whose probability reaches their threshold; -1 for none."""
    above = probabilities >= t[None, :]
    masked = np.where(above, probabilities, -np.inf)
    return np.where(above.any(axis=1), masked.argmax(axis=1), -1)


def confident_joint(given: np.ndarray, y_star: np.ndarray, classes: int) -> np.ndarray:
    """C[i][j]: crops labelled i that count for class j (crops that count for none are left out)."""
    joint = np.zeros((classes, classes), dtype=int)
    counted = y_star >= 0
    np.add.at(joint, (given[counted], y_star[counted]), 1)
    return joint


@dataclass
class Suspect:
    index: int
    given: int
    suggested: int
    given_probability: float
    suggested_probability: float
    suggested_threshold: float


def suspects(probabilities: np.ndarray, given: np.ndarray, t: np.ndarray | None = None) -> list[Suspect]:
    """The crops whose confident label is another class than the given one, least-believed given label first;
    ``t``: the thresholds, by default those of these crops."""
    t = thresholds(probabilities, given) if t is None else t
    y_star = confident_labels(probabilities, t)
    flagged = np.flatnonzero((y_star >= 0) & (y_star != given))
    found = [
        Suspect(int(i), int(given[i]), int(y_star[i]), float(probabilities[i, given[i]]),
                float(probabilities[i, y_star[i]]), float(t[y_star[i]]))
        for i in flagged
    ]  # fmt: skip
    return sorted(found, key=lambda s: (s.given_probability, -s.suggested_probability))
