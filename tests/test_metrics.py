"""Every metric jersey-cls prints or writes equals scikit-learn's, recomputed from the predictions themselves."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from jersey_cls.cli import main
from jersey_cls.model.metrics import evaluation_metrics

from .conftest import eval_args, fit_args, numpy_ece, predictions_of, printed_metric, write_crop

RUN = Path("runs/jersey")


def test_metrics_equal_sklearn_when_the_first_batch_is_all_correct():
    # An all-correct first batch gives acc_top5 and f1_macro equal states, which torchmetrics' compute
    # groups then merged into one: both reported f1_macro's value.
    torch.manual_seed(0)
    num_classes = 10
    first = torch.arange(num_classes).repeat(3)
    batches = [(F.one_hot(first, num_classes).float() * 5, first)]
    batches += [(torch.randn(40, num_classes), torch.randint(0, num_classes, (40,))) for _ in range(3)]
    metrics = evaluation_metrics([str(i) for i in range(num_classes)], "val/")
    for scores, targets in batches:
        metrics.update(scores, targets)
    scores = torch.cat([s for s, _ in batches]).numpy()
    targets = torch.cat([t for _, t in batches]).numpy()
    probabilities = np.exp(scores) / np.exp(scores).sum(1, keepdims=True)
    expected = {
        "val/acc_top1": accuracy_score(targets, scores.argmax(1)),
        "val/acc_top5": top_k_accuracy_score(targets, scores, k=5, labels=range(num_classes)),
        "val/f1_macro": f1_score(targets, scores.argmax(1), average="macro"),
        "val/ece": numpy_ece(probabilities.max(1), probabilities.argmax(1) == targets),
    }
    assert {name: float(value) for name, value in metrics.compute().items()} == pytest.approx(expected, abs=1e-6)


def top_labels(row: dict) -> set[str]:
    """The labels of a predictions.csv row's top1_label ... topK_label columns (K: 5, or fewer classes)."""
    return {value for key, value in row.items() if key.startswith("top") and key.endswith("_label")}


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def seven_numbers(tmp_path) -> Path:
    """More classes than top-5, so acc_top5 is not 1 by construction."""
    root = tmp_path / "seven"
    for split, count in (("train", 8), ("valid", 4), ("test", 4)):
        rows = []
        for label in ("0", "00", "3", "7", "23", "41", "88"):
            for i in range(count):
                write_crop(root / split / f"{label}_{i}.jpg", label, seed=f"{split}-{label}-{i}")
                rows.append({"image": f"{label}_{i}.jpg", "suffix": label})
        (root / split / "annotations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.mark.parametrize("head", ["classes", "digits"])
def test_printed_metrics_and_reports_equal_sklearn_on_what_predict_answers(seven_numbers, capsys, head):
    jsonl_root = seven_numbers
    main(fit_args(jsonl_root, "--model.head", head, "--model.lr", "0.01", epochs=2))
    class_names = torch.load(RUN / "checkpoints" / "last.ckpt", weights_only=True)["hyper_parameters"]["class_names"]
    index = {name: i for i, name in enumerate(class_names)}
    for command, stage, split in (("validate", "val", "valid"), ("test", "test", "test")):
        capsys.readouterr()
        main(eval_args(command, jsonl_root))
        printed = capsys.readouterr().out
        main(eval_args("predict", jsonl_root, "--data.predict_path", str(jsonl_root / split)))
        rows = read_csv(predictions_of())
        y_true = np.array([index[row["label"]] for row in rows])
        y_pred = np.array([index[row["pred_label"]] for row in rows])
        in_top5 = [row["label"] in top_labels(row) for row in rows]

        assert printed_metric(printed, f"{stage}/acc_top1") == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-6)
        assert printed_metric(printed, f"{stage}/acc_top5") == pytest.approx(np.mean(in_top5), abs=1e-6)
        assert printed_metric(printed, f"{stage}/f1_macro") == pytest.approx(
            f1_score(y_true, y_pred, average="macro"), abs=1e-6
        )
        confidence = np.array([float(row["pred_prob"]) for row in rows])  # rounded to 6 decimals
        ece = numpy_ece(confidence, y_true == y_pred)
        assert printed_metric(printed, f"{stage}/ece") == pytest.approx(ece, abs=1e-4)
        # The same crops, read the same way: validate's confusion matrix is predict's, cell for cell.
        matrix = read_csv(RUN / "reports" / "last" / f"{stage}_confusion_matrix.csv")
        written = np.array([[int(row[name]) for name in class_names] for row in matrix])
        labels = range(len(class_names))
        assert (written == confusion_matrix(y_true, y_pred, labels=labels)).all()
        precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
        for row in read_csv(RUN / "reports" / "last" / f"{stage}_per_class.csv"):
            i = index[row["label"]]
            assert int(row["support"]) == support[i]
            if support[i]:
                assert float(row["precision"] or 0) == pytest.approx(precision[i], abs=1e-6)  # "": none predicted
                assert float(row["recall"]) == pytest.approx(recall[i], abs=1e-6)
                assert float(row["f1"]) == pytest.approx(f1[i], abs=1e-6)
