"""The evaluation report of one split: per-class table, most confused pairs, confusion matrix, calibration."""

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from jersey_cls.evaluation.calibration import calibration_error, reliability, risk_coverage
from jersey_cls.evaluation.figures import save_reliability, save_risk_coverage
from jersey_cls.evaluation.spreadsheet import write_rows
from jersey_cls.messages import say


def per_class_rows(confusion: np.ndarray, class_names: list[str]) -> list[dict]:
    """label, support, correct, precision, recall (the share of the class's crops read right) and F1 per class;
    support 0 gives empty ratios."""
    rows = []
    for index, label in enumerate(class_names):
        support, predicted = int(confusion[index].sum()), int(confusion[:, index].sum())
        correct = int(confusion[index, index])
        precision = correct / predicted if predicted else None
        recall = correct / support if support else None
        f1 = 2 * precision * recall / (precision + recall) if precision and recall else (0.0 if support else None)
        rows.append({"label": label, "support": support, "correct": correct, "precision": precision,
                     "recall": recall, "f1": f1})  # fmt: skip
    return rows


def most_confused_pairs(confusion: np.ndarray, class_names: list[str], top: int) -> list[tuple[str, str, int]]:
    off_diagonal = confusion.copy()
    np.fill_diagonal(off_diagonal, 0)
    order = np.argsort(off_diagonal, axis=None)[::-1][:top]
    pairs = [(int(i), int(j)) for i, j in zip(*np.unravel_index(order, confusion.shape), strict=True)]
    return [(class_names[i], class_names[j], int(off_diagonal[i, j])) for i, j in pairs if off_diagonal[i, j] > 0]


def write_report(folder: Path, stage: str, confusion: np.ndarray, names: list[str], confidence: np.ndarray,
                 correct: np.ndarray, top_confused: int) -> tuple[list[dict], list[tuple]]:  # fmt: skip
    """CSVs, the reliability diagram and the risk-coverage curve into ``folder``; prints the tables."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = per_class_rows(confusion, names)
    pairs = most_confused_pairs(confusion, names, top_confused)
    write_rows(
        folder / f"{stage}_per_class.csv", list(rows[0]), [["" if v is None else v for v in r.values()] for r in rows]
    )
    write_rows(folder / f"{stage}_confused_pairs.csv", ["true", "predicted", "count"], pairs)
    write_rows(folder / f"{stage}_confusion_matrix.csv", ["true \\ predicted", *names],
              [[name, *row] for name, row in zip(names, confusion.tolist(), strict=True)])  # fmt: skip
    ece = calibration_error(confidence, correct)
    save_reliability({stage: reliability(confidence, correct)}, folder / f"{stage}_reliability.png",
                     f"{stage}: expected calibration error {ece:.3f}")  # fmt: skip
    save_risk_coverage(*risk_coverage(confidence, correct), folder / f"{stage}_risk_coverage.png",
                       f"{stage}: accuracy when the least confident crops are left unanswered")  # fmt: skip
    print_tables(stage, rows, pairs)
    say(f"{stage}: expected calibration error {ece:.4f}; {folder}/{stage}_reliability.png, {stage}_risk_coverage.png")
    return rows, pairs


def print_tables(stage: str, rows: list[dict], pairs: list[tuple]) -> None:
    def fmt(value):
        return "—" if value is None else f"{value:.3f}"

    table = Table(title=f"{stage}: per class", show_lines=False)
    for column in ("label", "support", "precision", "recall", "f1"):
        table.add_column(column, justify="right")
    for row in rows:
        style = "dim" if row["support"] == 0 else None
        table.add_row(row["label"], str(row["support"]), fmt(row["precision"]), fmt(row["recall"]), fmt(row["f1"]),
                      style=style)  # fmt: skip
    confused = Table(title=f"{stage}: most confused (true → predicted)")
    for column in ("true", "predicted", "count"):
        confused.add_column(column, justify="right")
    for true, predicted, count in pairs:
        confused.add_row(true, predicted, str(count))
    console = Console()
    console.print(table)
    console.print(confused)
