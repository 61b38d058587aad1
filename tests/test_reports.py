import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jersey_cls.cli import main
from jersey_cls.evaluation.figures import save_confusion_matrix
from jersey_cls.evaluation.reports import most_confused_pairs, per_class_rows

from .conftest import LABELS, eval_args, fit_args, printed_metric

RUN = Path("runs/jersey")


def test_per_class_rows_tolerate_classes_absent_from_the_split():
    confusion = np.array([[3, 1, 0], [0, 0, 0], [2, 0, 4]])
    rows = {row["label"]: row for row in per_class_rows(confusion, ["0", "00", "7"])}
    assert rows["00"]["support"] == 0 and rows["00"]["recall"] is None and rows["00"]["precision"] == 0.0
    assert rows["0"]["precision"] == pytest.approx(3 / 5) and rows["0"]["recall"] == pytest.approx(3 / 4)
    assert rows["7"]["recall"] == pytest.approx(4 / 6) and "accuracy" not in rows["7"]  # recall, said once
    assert most_confused_pairs(confusion, ["0", "00", "7"], top=20) == [("7", "0", 2), ("0", "00", 1)]


def test_confusion_matrix_stays_legible_at_101_classes(tmp_path):
    names = ["0", "00"] + [str(i) for i in range(1, 100)]
    confusion = np.random.default_rng(0).integers(0, 5, size=(101, 101)) + np.eye(101, dtype=int) * 30
    path = save_confusion_matrix(confusion, names, tmp_path / "cm.png", "101 classes")
    width, height = Image.open(path).size
    assert height / 101 >= 15, "each class row needs at least ~15 px to print its label"
    assert width > height


def test_fit_writes_pictures_summary_and_curves(jsonl_root):
    main(fit_args(jsonl_root, epochs=2))
    for epoch in ("000", "001"):
        assert (RUN / "confusion_matrix" / f"epoch_{epoch}.png").is_file()
        assert Image.open(RUN / "samples" / f"epoch_{epoch}.png").size[0] > 500
    summary = json.loads((RUN / "dataset_summary.json").read_text())
    assert summary["images"] == {"train": 40, "val": 16, "test": 16}
    assert summary["per_class"]["00"] == {"train": 10, "val": 4, "test": 4}
    assert summary["imbalance_ratio"] == 1.0
    assert (RUN / "plots" / "loss.png").is_file() and (RUN / "plots" / "accuracy.png").is_file()


def test_validate_report_matches_printed_accuracy_and_tolerates_missing_classes(jsonl_root, capsys):
    annotations = jsonl_root / "valid" / "annotations.jsonl"
    kept = [line for line in annotations.read_text().splitlines() if '"suffix": "7"' not in line]
    annotations.write_text("\n".join(kept) + "\n")  # val now lacks class "7"
    main(fit_args(jsonl_root, "--model.lr", "0.01", epochs=2))
    capsys.readouterr()
    main(eval_args("validate", jsonl_root))
    output = capsys.readouterr().out
    report = RUN / "reports" / "last"  # named after the checkpoint validated
    with open(report / "val_per_class.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["label"] for row in rows] == LABELS
    assert next(row for row in rows if row["label"] == "7")["support"] == "0"
    correct, support = sum(int(r["correct"]) for r in rows), sum(int(r["support"]) for r in rows)
    assert support == 12
    assert correct / support == pytest.approx(printed_metric(output, "val/acc_top1"), abs=1e-4)
    assert "most confused" in output
    assert (report / "val_confusion_matrix.png").is_file()
    assert (report / "val_confused_pairs.csv").read_text().startswith("true,predicted,count")
    assert (report / "val_reliability.png").is_file() and (report / "val_risk_coverage.png").is_file()
