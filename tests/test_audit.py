"""Which labels are wrong (jersey-cls audit), and which crops to label next (predict's review list)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from jersey_cls.cli import main
from jersey_cls.data.datamodule import JerseyDataModule
from jersey_cls.data.layouts import read_split_dir
from jersey_cls.evaluation.audit import label_at
from jersey_cls.evaluation.label_audit import confident_joint, confident_labels, suspects, thresholds

from .conftest import eval_args

# Seven crops, three classes; crop 2 (labelled 0) and crop 6 (labelled 2) look like other classes.
PROBABILITIES = np.array([
    [0.90, 0.05, 0.05],  # given 0
    [0.80, 0.10, 0.10],  # given 0
    [0.20, 0.70, 0.10],  # given 0
    [0.10, 0.80, 0.10],  # given 1
    [0.30, 0.60, 0.10],  # given 1
    [0.10, 0.20, 0.70],  # given 2
    [0.75, 0.10, 0.15],  # given 2
])  # fmt: skip
GIVEN = np.array([0, 0, 0, 1, 1, 2, 2])


def test_confident_learning_matches_the_papers_definitions_worked_by_hand():
    # t_j = mean of p_j over the crops labelled j (Northcutt et al. 2021, eq. 2).
    t = thresholds(PROBABILITIES, GIVEN)
    assert t == pytest.approx([(0.9 + 0.8 + 0.2) / 3, (0.8 + 0.6) / 2, (0.7 + 0.15) / 2])
    # A crop counts for the likeliest class whose probability reaches its threshold (eq. 1): crop 4 reaches none
    # (0.30 < 0.633, 0.60 < 0.70, 0.10 < 0.425); crop 6's 0.75 reaches class 0's 0.633.
    assert confident_labels(PROBABILITIES, t).tolist() == [0, 0, 1, 1, -1, 2, 0]
    assert confident_joint(GIVEN, confident_labels(PROBABILITIES, t), 3).tolist() == [[2, 1, 0], [0, 1, 0], [1, 0, 1]]
    # The off-diagonal crops, least-believed given label first: crop 6 (p=0.15), then crop 2 (p=0.20).
    found = suspects(PROBABILITIES, GIVEN)
    assert [(s.index, s.given, s.suggested) for s in found] == [(6, 2, 0), (2, 0, 1)]
    assert found[0].given_probability == pytest.approx(0.15) and found[0].suggested_threshold == pytest.approx(t[0])


def test_a_class_no_crop_is_labelled_with_is_never_suggested():
    probabilities = np.array([[0.1, 0.9], [0.2, 0.8]])
    assert suspects(probabilities, np.array([0, 0])) == []  # class 1 has no threshold


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_the_audit_ranks_suspects_of_every_split_and_names_the_line_that_holds_each_label(trained, capsys):
    main(eval_args("audit", trained, "--folds", "2", "--fold_epochs", "1", "--ckpt_path", "best"))
    out = capsys.readouterr().out
    assert "fold 2/2 read" in out
    rows = read_csv(Path("runs/jersey/audit/suspect_labels.csv"))
    assert rows, out
    assert {row["split"] for row in rows} <= {"train", "val", "test"}
    assert [int(row["rank"]) for row in rows] == list(range(1, len(rows) + 1))
    assert [float(row["given_prob"]) for row in rows] == sorted(float(row["given_prob"]) for row in rows)
    for row in rows:
        assert row["given"] != row["suggested"]
        assert float(row["suggested_prob"]) >= float(row["suggested_threshold"])
        file, line = row["label_at"].rsplit(":", 1)  # the JSONL line to correct
        written = json.loads(Path(file).read_text().splitlines()[int(line) - 1])
        assert written["suffix"] == row["given"] and Path(file).parent / written["image"] == Path(row["path"])
    assert Path("runs/jersey/audit/suspect_labels.png").stat().st_size > 0

    # The same rule recomputed with numpy from the probabilities the audit wrote: one threshold per class over
    # every audited crop, a suspect where the likeliest class at or above its threshold is not the given one.
    crops = read_csv(Path("runs/jersey/audit/out_of_sample.csv"))
    names = list(crops[0])[3:]
    probabilities = np.array([[float(crop[name]) for name in names] for crop in crops])
    given = np.array([names.index(crop["given"]) for crop in crops])
    t = np.array([probabilities[given == j, j].mean() for j in range(len(names))])
    confident = np.where(probabilities >= t, probabilities, -1)
    y_star = np.where((probabilities >= t).any(axis=1), confident.argmax(axis=1), -1)
    expected = {crops[i]["path"] for i in np.flatnonzero((y_star >= 0) & (y_star != given))}
    assert {row["path"] for row in rows} == expected


def test_validate_says_how_many_labels_the_model_confidently_disagrees_with(trained, capsys):
    main(eval_args("predict", trained, "--data.predict_path", str(trained / "valid")))
    predicted = read_csv(Path("runs/jersey/predictions/valid.csv"))
    names = sorted({row["label"] for row in predicted})
    probabilities = np.array([[float(next(row[f"top{k}_prob"] for k in range(1, 5) if row[f"top{k}_label"] == name))
                               for name in names] for row in predicted])  # fmt: skip
    given = np.array([names.index(row["label"]) for row in predicted])
    t = np.array([probabilities[given == j, j].mean() for j in range(len(names))])
    above = probabilities >= t
    confident = np.where(above.any(axis=1), np.where(above, probabilities, -1).argmax(axis=1), -1)
    expected = int(((confident >= 0) & (confident != given)).sum())
    capsys.readouterr()
    main(eval_args("validate", trained))
    assert f"the model confidently disagrees with {expected} of {len(predicted)} labels" in capsys.readouterr().out


def test_the_review_list_is_the_least_sure_crops_and_imports_back_as_a_jsonl_split(trained):
    crops = trained / "test"
    main(eval_args("predict", trained, "--data.predict_path", str(crops), "--predictions.review", "5"))
    predicted = read_csv(Path("runs/jersey/predictions/test.csv"))
    expected = sorted(predicted, key=lambda row: (float(row["top1_prob"]), row["path"]))[:5]
    folder = Path("runs/jersey/predictions/test_review")
    rows = [json.loads(line) for line in (folder / "annotations.jsonl").read_text().splitlines()]
    assert [row["source"] for row in rows] == [row["path"] for row in expected]
    assert [row["suffix"] for row in rows] == [row["top1_label"] for row in expected]
    split = read_split_dir(folder, "train")  # what a person corrects, then adds to the data
    assert [label for _, label in split.samples] == [row["top1_label"] for row in expected]
    assert all(Path(path).read_bytes() == Path(row["path"]).read_bytes()
               for (path, _), row in zip(split.samples, expected, strict=True))  # fmt: skip


def test_the_review_list_of_tracks_has_one_row_per_track_shown_by_one_of_its_crops(trained, soccernet_root):
    test = str(soccernet_root / "test")
    main(eval_args("predict", trained, "--data.predict_path", test, "--predictions.review", "4"))
    tracks = read_csv(Path("runs/jersey/predictions/test_tracks.csv"))
    expected = sorted(tracks, key=lambda row: (float(row["confidence"]), row["track"]))[:4]
    review = Path("runs/jersey/predictions/test_review/annotations.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in review]
    assert [row["track_id"] for row in rows] == [row["track"] for row in expected]
    crops = read_csv(Path("runs/jersey/predictions/test.csv"))

    def probability(crop: dict, label: str) -> float:
        return next(float(crop[f"top{k}_prob"]) for k in range(1, 5) if crop[f"top{k}_label"] == label)

    for row in rows:  # shown by the crop that gave the track's answer the highest probability
        of_track = [crop for crop in crops if Path(crop["path"]).parent.name == row["track_id"]]
        assert row["source"] == max(of_track, key=lambda crop: probability(crop, row["suffix"]))["path"]


def test_label_at_names_the_ground_truth_entry_and_the_imagefolder_folder(soccernet_root, imagefolder_root):
    data = JerseyDataModule(data_root=str(soccernet_root), illegible=True, val_share=0.25, num_workers=0)
    data.setup("fit")
    gt = soccernet_root / "train" / "train_gt.json"
    for split in ("train", "val"):  # val: train's tracks held out
        path = data.splits[split].samples[0][0]
        assert label_at(data.splits[split], path) == f"{gt}: {Path(path).parent.name!r}"
    data = JerseyDataModule(data_root=str(imagefolder_root), num_workers=0)
    data.setup("fit")
    path, label = data.splits["train"].samples[0]
    assert label_at(data.splits["train"], path) == str(imagefolder_root / "train" / label)
