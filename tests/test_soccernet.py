"""SoccerNet's jersey task as it is downloaded: tracklet folders and a ground-truth JSON in; one answer per track,
its track accuracy and the benchmark's submission file out."""

import csv
import json
import re
from pathlib import Path

import pytest
import torch

from jersey_cls.cli import main
from jersey_cls.data.datamodule import JerseyDataModule

from .conftest import fit_args, printed_metric

RUN = Path("runs/jersey")
ILLEGIBLE_ON = ("--data.illegible", "true", "--data.val_share", "0.25")


def test_val_is_held_out_by_whole_tracks_seeded_and_recorded(soccernet_root, capsys):
    data = JerseyDataModule(data_root=str(soccernet_root), illegible=True, val_share=0.25, num_workers=0)
    data.setup("fit")
    train, val = data.splits["train"], data.splits["val"]
    assert len(data.held_out) == 4  # a quarter of 15 tracks
    assert set(val.tracks.values()) == set(data.held_out)
    assert not set(train.tracks.values()) & set(val.tracks.values())  # no track on both sides
    assert len(val.samples) == 4 * 4 and len(train.samples) == 11 * 4
    again = JerseyDataModule(data_root=str(soccernet_root), illegible=True, val_share=0.25, num_workers=0)
    other = JerseyDataModule(data_root=str(soccernet_root), illegible=True, val_share=0.25, val_seed=1)
    assert again.held_out == data.held_out and other.held_out != data.held_out
    assert data.class_names == ["0", "00", "7", "23", "illegible"] or data.class_names[-1] == "illegible"

    main(fit_args(soccernet_root, *ILLEGIBLE_ON))
    assert re.search(r"val: the data has no val split, so 4 of train's 15 player tracks are held\s+out",
                     capsys.readouterr().out)  # fmt: skip
    summary = json.loads((RUN / "dataset_summary.json").read_text())
    assert summary["val_held_out"] == {"share": 0.25, "seed": 0, "tracks": data.held_out}


def test_track_accuracy_equals_the_submission_scored_against_the_ground_truth(soccernet_root, capsys):
    main(fit_args(soccernet_root, *ILLEGIBLE_ON, "--model.lr", "0.01", epochs=2))
    capsys.readouterr()
    main(["test", "--ckpt_path", "best", "--data.num_workers", "0"])
    logged = printed_metric(capsys.readouterr().out, "test/track_acc")
    main(["predict", "--ckpt_path", "best", "--data.predict_path", str(soccernet_root / "test")])
    submission = json.loads((RUN / "predictions" / "test_submission.json").read_text())
    truth = json.loads((soccernet_root / "test" / "test_gt.json").read_text())
    assert sorted(submission) == sorted(p.name for p in (soccernet_root / "test" / "images").iterdir())
    assert all(type(number) is int for number in submission.values())
    with open(RUN / "predictions" / "test_tracks.csv", newline="") as f:
        answers = {row["track"]: row["answer"] for row in csv.DictReader(f)}
    assert submission == {t: -1 if a == "illegible" else int(a) for t, a in answers.items()}
    # SoccerNet's score: the share of players whose number is exactly right, -1 included. Its integers make "00"
    # 0; the logged score keeps them apart, so it is checked against predict's answers, which do too.
    expected = sum(answers[player] == ("illegible" if n == -1 else str(n)) for player, n in truth.items()) / len(truth)
    assert logged == pytest.approx(expected, abs=1e-6)
    with open(next(RUN.glob("reports/best-*/test_tracks.csv")), newline="") as f:
        rows = {row["track"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(truth) and all(row["crops_total"] == "4" for row in rows.values())
    assert {track: row["truth"] for track, row in rows.items()} == {
        t: "illegible" if n == -1 else str(n) for t, n in truth.items()}  # fmt: skip


def test_the_challenge_split_without_ground_truth_gets_a_submission_and_00_is_reported(soccernet_root):
    main(fit_args(soccernet_root, *ILLEGIBLE_ON))
    checkpoint = torch.load(RUN / "checkpoints" / "last.ckpt", weights_only=True)
    names = checkpoint["hyper_parameters"]["class_names"]
    checkpoint["state_dict"]["net.fc.bias"][names.index("00")] += 50  # every crop now reads 00
    torch.save(checkpoint, "reads_00.ckpt")
    with pytest.warns(UserWarning, match=r"tracks answered 00 are written as 0: c0, c1, c2, c3"):
        main(["predict", "--ckpt_path", "reads_00.ckpt", "--data.predict_path", str(soccernet_root / "challenge")])
    submission = json.loads(Path("predictions/challenge_submission.json").read_text())
    assert submission == {"c0": 0, "c1": 0, "c2": 0, "c3": 0}


def test_a_broken_ground_truth_is_named_and_mismatched_tracks_are_reported(soccernet_root, capsys):
    gt = soccernet_root / "train" / "train_gt.json"
    truth = json.loads(gt.read_text())
    gt.write_text(json.dumps(truth)[:-5])
    with pytest.raises(SystemExit) as stop:
        main(fit_args(soccernet_root, *ILLEGIBLE_ON))
    assert stop.value.code == 2
    assert f"{gt}: not valid JSON at line 1" in capsys.readouterr().err

    del truth["70"]  # a folder the ground truth lacks
    truth["ghost"] = 7  # a ground-truth entry with no folder
    gt.write_text(json.dumps(truth))
    with pytest.raises(SystemExit) as stop:
        main(fit_args(soccernet_root, *ILLEGIBLE_ON, "--data.strict", "true"))
    error = capsys.readouterr().err
    assert f"{soccernet_root}/train/images/70: not in {gt}" in error
    assert f"{gt}: 'ghost' (no {soccernet_root}/train/images/ghost/)" in error


def test_frames_per_track_reads_evenly_spaced_frames_in_evaluation_and_train_keeps_them_all(soccernet_root):
    data = JerseyDataModule(data_root=str(soccernet_root), illegible=True, frames_per_track=2, num_workers=0)
    data.setup("test")
    for split in ("val", "test"):
        names = {Path(path).name for path, _ in data.splits[split].samples}
        assert names == {"0000.jpg", "0003.jpg"}, split  # the first and the last of four
    assert {Path(path).name for path, _ in data.splits["train"].samples} == {f"{i:04d}.jpg" for i in range(4)}
    test = str(soccernet_root / "test")
    data = JerseyDataModule(data_root=str(soccernet_root), illegible=True, frames_per_track=3, predict_path=test)
    data.setup("predict")
    assert len(data.predict.inputs) == 6 * 3 and data.predict.tracks == ["t0", "t1", "t2", "t3", "t4", "t5"]
