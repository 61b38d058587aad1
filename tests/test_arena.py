"""In the arena: illegible crops as a class, a confidence that can be trusted, one answer per player track."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from PIL import Image
from sklearn.metrics import precision_score, recall_score

from jersey_cls.cli import main

from .conftest import LABELS, fit_args, numpy_ece, predictions_of, printed_metric, write_crop

REPO = Path(__file__).resolve().parents[1]
RUN = Path("runs/jersey")


@pytest.fixture
def with_illegible(jsonl_root) -> Path:
    """The small JSONL set plus unreadable crops: rows with an empty label, and SoccerNet-style -1 labels; test
    rows carry a track_id, four crops per track."""
    for split, count in (("train", 8), ("valid", 4), ("test", 4)):
        rows = [json.loads(line) for line in (jsonl_root / split / "annotations.jsonl").read_text().splitlines()]
        for i in range(count):
            name = f"blank_{i}.jpg"
            write_crop(jsonl_root / split / name, "", seed=f"{split}-blank-{i}")  # a jersey with no number
            rows.append({"image": name, "suffix": "" if i % 2 else "-1"})
        for i, row in enumerate(rows):
            row["track_id"] = f"track{i // 4}"
        (jsonl_root / split / "annotations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return jsonl_root


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("head", ["classes", "digits"])
def test_illegible_crops_are_a_class_and_their_metrics_equal_sklearn(with_illegible, capsys, head):
    main(fit_args(with_illegible, "--data.illegible", "true", "--model.head", head, "--model.lr", "0.01", epochs=2))
    class_names = torch.load(RUN / "checkpoints" / "last.ckpt", weights_only=True)["hyper_parameters"]["class_names"]
    assert class_names[-1] == "illegible"
    summary = json.loads((RUN / "dataset_summary.json").read_text())
    assert summary["per_class"]["illegible"] == {"train": 8, "val": 4, "test": 4}  # empty labels and -1 alike
    capsys.readouterr()
    main(["validate", "--ckpt_path", "last", "--data.num_workers", "0"])
    printed = capsys.readouterr().out
    main(["predict", "--ckpt_path", "last", "--data.predict_path", str(with_illegible / "valid")])
    rows = read_rows(predictions_of())
    truth = ["illegible" if row["label"] in ("", "-1") else row["label"] for row in rows]
    said = [row["pred_label"] for row in rows]
    legible = [(t, s) for t, s in zip(truth, said, strict=True) if t != "illegible"]
    assert printed_metric(printed, "val/legible_acc") == pytest.approx(np.mean([t == s for t, s in legible]), abs=1e-6)
    is_truth, is_said = [t == "illegible" for t in truth], [s == "illegible" for s in said]
    precision = precision_score(is_truth, is_said, zero_division=0)
    assert printed_metric(printed, "val/illegible_precision") == pytest.approx(precision, abs=1e-6)
    assert printed_metric(printed, "val/illegible_recall") == pytest.approx(recall_score(is_truth, is_said), abs=1e-6)


def test_without_the_option_empty_labels_are_skipped_and_counted(with_illegible):
    main(fit_args(with_illegible))
    report = json.loads((RUN / "data_report.json").read_text())
    assert report["empty label"]["count"] == 4 + 2 + 2  # the -1 rows stay a label of their own
    assert (
        "illegible"
        not in torch.load(RUN / "checkpoints" / "last.ckpt", weights_only=True)["hyper_parameters"]["class_names"]
    )


def onnx_probabilities(export: Path, paths: list[str]) -> np.ndarray:
    labels = json.loads((export / "labels.json").read_text())
    height, width = labels["input_shape"]
    session = onnxruntime.InferenceSession(str(export / "model.onnx"), providers=["CPUExecutionProvider"])
    crops = [np.asarray(Image.open(p).convert("RGB").resize((width, height), Image.BILINEAR)).transpose(2, 0, 1)
             for p in paths]  # fmt: skip
    return session.run(["probabilities"], {"images": np.stack(crops)})[0]


def test_the_calibration_figures_are_what_predict_answers_and_the_export_is_calibrated(with_illegible):
    main(fit_args(with_illegible, "--data.illegible", "true", "--model.lr", "0.01", epochs=2, onnx=True))
    calibration = json.loads((RUN / "calibration.json").read_text())
    assert calibration["temperature"] != 1.0 and (RUN / "calibration.png").is_file()
    assert f"{calibration['temperature']:.3f}" in (RUN / "model_card.md").read_text()
    test = str(with_illegible / "test")

    def answered(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        truth = ["illegible" if row["label"] in ("", "-1") else row["label"] for row in rows]
        said = [row["pred_label"] for row in rows]
        return np.array([float(row["pred_prob"]) for row in rows]), np.array(truth) == np.array(said)

    main(["predict", "--ckpt_path", "best", "--data.predict_path", test])
    calibrated = read_rows(predictions_of())
    assert calibration["ece"]["test after"] == pytest.approx(numpy_ece(*answered(calibrated)), abs=1e-4)
    record = next(s for s in torch.load(RUN / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"].values()
                  if s.get("best_model_path"))  # fmt: skip
    best = torch.load(RUN / "checkpoints" / Path(record["best_model_path"]).name, weights_only=True)
    best["state_dict"]["temperature"] = torch.tensor(1.0)
    torch.save(best, "uncalibrated.ckpt")
    main(["predict", "--ckpt_path", "uncalibrated.ckpt", "--data.predict_path", test])
    uncalibrated = read_rows(Path("predictions/test.csv"))
    assert calibration["ece"]["test before"] == pytest.approx(numpy_ece(*answered(uncalibrated)), abs=1e-4)
    # The export carries the temperature: its probabilities are predict's calibrated ones.
    probabilities = onnx_probabilities(RUN / "export", [row["path"] for row in calibrated])
    assert np.allclose(probabilities.max(1), [float(row["pred_prob"]) for row in calibrated], atol=1e-4)


def test_min_confidence_one_abstains_on_every_crop_and_track(with_illegible):
    main(fit_args(with_illegible, "--data.illegible", "true"))
    main(["predict", "--ckpt_path", "last", "--data.predict_path", str(with_illegible / "test"),
          "--predictions.min_confidence", "1.0", "--predictions.tracks", "track_id"])  # fmt: skip
    assert {row["pred_label"] for row in read_rows(predictions_of())} == {"?"}
    assert {row["answer"] for row in read_rows(RUN / "predictions" / "test_tracks.csv")} == {"?"}


def test_a_track_of_illegible_crops_answers_illegible(with_illegible):
    main(fit_args(with_illegible, "--data.illegible", "true"))
    checkpoint = torch.load(RUN / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["state_dict"]["net.fc.bias"][-1] += 50  # every crop now reads as illegible
    torch.save(checkpoint, "blind.ckpt")
    main(["predict", "--ckpt_path", "blind.ckpt", "--data.predict_path", str(with_illegible / "test"),
          "--predictions.tracks", "track_id"])  # fmt: skip
    tracks = read_rows(Path("predictions/test_tracks.csv"))  # the checkpoint's own folder is the run
    assert len(tracks) == 5 and all(t["answer"] == "illegible" and t["crops_used"] == "0" for t in tracks)


def test_the_track_example_over_onnx_answers_what_predict_answers(with_illegible):
    main(fit_args(with_illegible, "--data.illegible", "true", "--model.lr", "0.01", epochs=2, onnx=True))
    test = with_illegible / "test"
    main(["predict", "--ckpt_path", "best", "--data.predict_path", str(test), "--predictions.tracks", "track_id"])
    expected = {row["track"]: row["answer"] for row in read_rows(RUN / "predictions" / "test_tracks.csv")}
    example = REPO / "examples" / "read_tracks.py"
    done = subprocess.run([sys.executable, str(example), str(RUN / "export" / "model.onnx"),
                           str(test / "annotations.jsonl"), "track_id"], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()} == expected
    assert len(expected) == (len(LABELS) * 4 + 4) // 4
