"""Figures a person reads: confusion matrix, sample predictions, training curves, calibration. Written as PNG.

Matplotlib's object API (Figure, no pyplot): no global state, nothing to close, safe from any thread.
"""

from pathlib import Path

import numpy as np


def _figure(width: float, height: float):
    # Imported on first use: matplotlib costs start-up time that `jersey-cls --help` should not pay.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110)


def save_confusion_matrix(confusion: np.ndarray, class_names: list[str], path: Path, title: str) -> Path:
    """Row-normalised confusion matrix (rows: true label), legible from 2 up to 101 classes."""
    n = len(class_names)
    support = confusion.sum(axis=1, keepdims=True)
    normalised = np.divide(confusion, support, out=np.zeros_like(confusion, dtype=float), where=support > 0)
    side = min(24.0, max(6.0, 0.18 * n + 2.0))  # ~0.18 in per class keeps 101 labels apart at 5 pt
    font = max(6.0, min(10.0, 300.0 / n))
    fig = _figure(side + 1.2, side)
    ax = fig.subplots()
    image = ax.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    ticks = np.arange(n)
    ax.set_xticks(ticks, labels=class_names, rotation=90, fontsize=font)
    ax.set_yticks(ticks, labels=class_names, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 20:  # cell values stay readable only for small class counts
        for i, j in zip(*np.nonzero(confusion), strict=True):
            colour = "white" if normalised[i, j] > 0.5 else "black"
            text = f"{normalised[i, j]:.2f}".removeprefix("0").replace("1.00", "1")
            ax.text(j, i, text, ha="center", va="center", fontsize=font * 0.8, color=colour)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true label")
    margin = 0.9 / side  # fixed margins for the tick labels: tight_layout measured every label, slowly
    fig.subplots_adjust(left=margin, right=0.9, bottom=margin, top=1 - 0.45 / side)
    return _save(fig, path)


def save_curves(history: dict[str, dict[int, float]], path: Path, metric: str) -> Path:
    """One line per ``<stage>/<metric>`` series in ``history`` (series name -> {epoch: value})."""
    fig = _figure(6, 4)
    ax = fig.subplots()
    for name, points in sorted(history.items()):
        if name.endswith(f"/{metric}") and points:
            epochs = sorted(points)
            ax.plot(epochs, [points[e] for e in epochs], marker="o", markersize=3, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def save_reliability(curves: dict[str, tuple], path: Path, title: str) -> Path:
    """Reliability diagram: accuracy against confidence per bin, one line per ``curves`` entry (name ->
    (mean confidence, accuracy, count) per bin, from jersey_cls.evaluation.calibration.reliability); the diagonal is
    perfect calibration."""
    fig = _figure(5, 5)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
    for name, (confidence, accuracy, counts) in curves.items():
        used = counts > 0
        ax.plot(confidence[used], accuracy[used], marker="o", markersize=3, label=name)
    ax.set_xlabel("confidence (probability of the answer)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    return _save(fig, path)


def save_risk_coverage(coverage, accuracy, path: Path, title: str) -> Path:
    """Accuracy of the answered crops against the share answered, when the least confident are left out."""
    fig = _figure(6, 4)
    ax = fig.subplots()
    ax.plot(coverage, accuracy)
    ax.set_xlabel("coverage (share of crops answered, most confident first)")
    ax.set_ylabel("accuracy of the answered crops")
    ax.set_xlim(0, 1)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
