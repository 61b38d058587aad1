import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from jersey_cls.cli import main
from jersey_cls.data.datamodule import JerseyDataModule
from jersey_cls.model import JerseyClassifier
from jersey_cls.numbers import LEGAL_NUMBERS

from .conftest import (
    CONFIGS,
    LABELS,
    eval_args,
    favour_first_class,
    fit_args,
    predictions_of,
    printed_metric,
    write_crop,
)

REPO = Path(__file__).resolve().parents[1]
RUN = Path("runs/jersey")
LAST = RUN / "checkpoints" / "last.ckpt"


def accuracy_of(state_dict: dict, data_root: Path) -> float:
    data = JerseyDataModule(data_root=str(data_root), image_size=32, num_workers=0)
    model = JerseyClassifier(class_names=data.class_names, backbone="test_resnet", head="classes").eval()
    model.load_state_dict(state_dict)
    correct = total = 0
    with torch.no_grad():
        for batch in data.val_dataloader():
            correct += int((model(batch["image"]).argmax(1) == batch["target"]).sum())
            total += len(batch["target"])
    return correct / total


def test_ema_weights_are_what_validation_and_checkpoints_use(trained, capsys):
    checkpoint = torch.load(LAST, map_location="cpu", weights_only=True)
    ema, raw = checkpoint["state_dict"], checkpoint["current_model_state"]
    assert not torch.equal(ema["net.fc.weight"], raw["net.fc.weight"])
    assert int(checkpoint["averaging_state"]["n_averaged"]) == checkpoint["global_step"]
    capsys.readouterr()
    main(eval_args("validate", trained))
    printed = printed_metric(capsys.readouterr().out, "val/acc_top1")
    assert printed == pytest.approx(accuracy_of(ema, trained), abs=1e-6)


def test_best_checkpoints_hold_the_weights_validation_scored_and_no_training_state(trained, capsys):
    last = torch.load(LAST, map_location="cpu", weights_only=True)
    path = next(LAST.parent.glob("best-epoch=001-*.ckpt"))
    best = torch.load(path, map_location="cpu", weights_only=True)
    assert "optimizer_states" not in best and "current_model_state" not in best
    assert best["epoch"] == last["epoch"] == 1  # no step between epoch 1's validation and its last.ckpt
    assert best["state_dict"].keys() == last["state_dict"].keys()
    weights = [k for k in last["state_dict"] if k != "temperature"]  # calibration sets the best file's at fit end
    assert all(torch.equal(best["state_dict"][k], last["state_dict"][k]) for k in weights)  # the EMA weights
    assert not torch.equal(best["state_dict"]["net.fc.weight"], last["current_model_state"]["net.fc.weight"])
    assert best["hyper_parameters"] == last["hyper_parameters"] and best["datamodule_hyper_parameters"]
    assert path.stat().st_size < LAST.stat().st_size / 2
    score = float(path.name.removesuffix(".ckpt").split("acc=")[1])
    assert accuracy_of(best["state_dict"], trained) == pytest.approx(score, abs=1e-4)
    # Training resumes from last.ckpt; a best checkpoint starts a new run.
    for given, message in (("best", "fit resumes from --ckpt_path last"), (str(path), "holds the weights only")):
        capsys.readouterr()
        with pytest.raises(SystemExit) as stop:
            main(fit_args(trained, "--ckpt_path", given, epochs=3))
        assert stop.value.code == 2
        error = capsys.readouterr().err
        assert message in error and "--model.init_from" in error


def test_resume_restores_the_ema_state(trained):
    main(fit_args(trained, "--model.lr", "0.01", "--ckpt_path", "last", epochs=3))
    checkpoint = torch.load(LAST, map_location="cpu", weights_only=True)
    assert checkpoint["epoch"] == 2
    # Every optimizer step of both invocations was averaged: the count was restored, not restarted.
    assert int(checkpoint["averaging_state"]["n_averaged"]) == checkpoint["global_step"] == 15


def test_ema_can_be_turned_off(jsonl_root, caplog):
    main(fit_args(jsonl_root, "--ema.enabled", "false"))
    checkpoint = torch.load(LAST, map_location="cpu", weights_only=True)
    assert "current_model_state" not in checkpoint and "averaging_state" not in checkpoint
    assert "WeightAveraging" not in caplog.text  # no note about a missing average at every save


def test_predict_matches_validate_and_reports_unreadable_images(trained, capsys):
    (trained / "valid" / "corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with open(trained / "valid" / "annotations.jsonl", "a") as f:
        f.write(json.dumps({"image": "corrupt.jpg", "suffix": "7"}) + "\n")
    capsys.readouterr()
    main(eval_args("validate", trained))
    validate_acc = printed_metric(capsys.readouterr().out, "val/acc_top1")
    main(eval_args("predict", trained, "--data.predict_path", str(trained / "valid")))
    with open(predictions_of(), newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 17
    broken = [row for row in rows if row["error"]]
    assert [Path(row["path"]).name for row in broken] == ["corrupt.jpg"] and broken[0]["pred_label"] == ""
    readable = [row for row in rows if not row["error"]]
    assert list(readable[0])[:5] == ["path", "pred_label", "pred_prob", "top1_label", "top1_prob"]
    assert sum(row["pred_label"] == row["label"] for row in readable) / len(readable) == pytest.approx(validate_acc)


def run_example(export: Path, paths: list[str]) -> dict[str, str]:
    """examples/read_numbers.py, as a user runs it: {crop path: label it printed}."""
    command = [sys.executable, str(REPO / "examples" / "read_numbers.py"), str(export / "model.onnx"), *paths]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()}


def predicted_labels() -> dict[str, str]:
    with open(predictions_of(), newline="") as f:
        return {row["path"]: row["pred_label"] for row in csv.DictReader(f)}


@pytest.mark.parametrize("head", ["classes", "digits"])
def test_the_onnx_example_answers_what_predict_answers(jsonl_root, head):
    main(fit_args(jsonl_root, "--model.head", head, "--model.lr", "0.01", epochs=2, onnx=True))
    main(eval_args("predict", jsonl_root, "--data.predict_path", str(jsonl_root / "valid"), "--ckpt_path", "best"))
    predicted = predicted_labels()
    assert run_example(RUN / "export", list(predicted)) == predicted  # fit's export of its best checkpoint

    if head == "digits":  # a number train never showed can only come from the tens and units outputs
        checkpoint = torch.load(LAST, weights_only=True)
        bias = checkpoint["state_dict"]["net.fc.bias"]
        bias[len(LEGAL_NUMBERS) + 4] += 50  # tens: 4
        bias[len(LEGAL_NUMBERS) + 11 + 7] += 50  # units: 7
        torch.save(checkpoint, "reads_47.ckpt")
        flags = ["--ckpt_path", "reads_47.ckpt", "--trainer.default_root_dir", "unseen"]
        main([*eval_args("export", jsonl_root), *flags])
        main([*eval_args("predict", jsonl_root, "--data.predict_path", str(jsonl_root / "valid")), *flags])
        with open(predictions_of(Path("unseen")), newline="") as f:
            predicted = {row["path"]: row["pred_label"] for row in csv.DictReader(f)}
        assert set(predicted.values()) == {"47"} and "47" not in LABELS
        assert run_example(Path("unseen/exports/reads_47"), list(predicted)) == predicted


def test_fit_writes_a_model_card_and_export_subcommand_checks_itself(jsonl_root, capsys):
    main(fit_args(jsonl_root, "--model.lr", "0.01", "--onnx.int8", "true", epochs=2, onnx=True))
    card = (RUN / "model_card.md").read_text()
    for fact in ("`test_resnet`", "parameters", "GFLOPs at 32x32", "best val/acc_top1", "`00`"):
        assert fact in card
    record = json.loads((RUN / "export" / "export.json").read_text())
    for name in ("model.onnx", "model.int8.onnx"):  # both files: size, val accuracy (int8), crops a second
        row = next(line for line in card.splitlines() if line.startswith(f"| {name} |"))
        assert f"{(RUN / 'export' / name).stat().st_size / 1e6:.1f} MB" in row and "1 thread" in row
    assert f"val top-1 on 16 crops {record['int8_acc']:.4f} (fp32 {record['fp32_acc']:.4f})" in card
    assert "## Reproduce" in card and "jersey-cls" in card and "max_epochs" in card
    capsys.readouterr()
    main(eval_args("export", jsonl_root, "--trainer.default_root_dir", "exported"))
    assert "same top-1 on 16/16" in capsys.readouterr().out
    exported = Path("exported/exports/last")
    assert (exported / "model.onnx").is_file() and (exported / "labels.json").is_file()


def test_an_export_that_computes_something_else_is_rejected_and_a_good_one_is_kept(trained, monkeypatch, capsys):
    main(eval_args("export", trained))
    exported = RUN / "exports" / "last"
    good = (exported / "model.onnx").read_bytes()
    write = JerseyClassifier.to_onnx

    def corrupted(self, path, *args, **kwargs):
        write(self, path, *args, **kwargs)
        favour_first_class(path, path, by=5.0)

    monkeypatch.setattr(JerseyClassifier, "to_onnx", corrupted)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(eval_args("export", trained))
    assert stop.value.code == 4
    error = capsys.readouterr().err
    assert "ONNX Runtime disagrees with PyTorch on 16 validation crops" in error and "Traceback" not in error
    assert (exported / "model.onnx").read_bytes() == good and (exported / "model.rejected.onnx").is_file()
    # At the end of fit it is a warning: training and the checkpoints stand, the card has no export.
    with pytest.warns(UserWarning, match="skipping the ONNX export: .*ONNX Runtime disagrees"):
        main(fit_args(trained, "--trainer.default_root_dir", "other", onnx=True))
    assert not Path("other/export/model.onnx").exists() and Path("other/export/model.rejected.onnx").is_file()
    assert "| ONNX |" not in Path("other/model_card.md").read_text()


def test_predict_on_a_folder_of_crops_writes_what_was_asked_where_it_was_asked(trained):
    names = sorted(p.name for p in (trained / "test").glob("*.jpg"))
    Path("crops").mkdir()
    for name in names[:6]:
        shutil.copy(trained / "test" / name, Path("crops") / name)  # a plain folder: no labels
    every_class = ["--predictions.top_k", str(len(LABELS))]
    main(["predict", "--ckpt_path", str(LAST), "--data.predict_path", "crops", *every_class])
    rows = read_csv(RUN / "predictions" / "crops.csv")  # named after the folder
    assert [Path(row["path"]).name for row in rows] == names[:6]
    for row in rows:
        labels, probabilities = top_k(row)
        assert sorted(labels) == sorted(LABELS) and probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) == pytest.approx(1, abs=1e-5) and row["label"] == row["error"] == ""
        assert (row["pred_label"], row["pred_prob"]) == (row["top1_label"], row["top1_prob"])

    main(["predict", "--ckpt_path", str(LAST), "--data.predict_path", "crops", *every_class,
          "--predictions.path", "out/answers.csv"])  # fmt: skip
    assert Path("out/answers.csv").read_text() == (RUN / "predictions" / "crops.csv").read_text()
    assert [p.name for p in (RUN / "predictions").iterdir()] == ["crops.csv"]

    for track, chosen in (("p1", names[:3]), ("p2", names[3:8])):  # one folder of crops per player
        (Path("tracks") / track).mkdir(parents=True)
        for name in chosen:
            shutil.copy(trained / "test" / name, Path("tracks") / track / name)
    main(["predict", "--ckpt_path", str(LAST), "--data.predict_path", "tracks", *every_class,
          "--predictions.tracks", "folder"])  # fmt: skip
    evidence: dict[str, dict[str, float]] = {}
    for row in read_csv(RUN / "predictions" / "tracks.csv"):  # a track's crops add up their log-probabilities
        votes = evidence.setdefault(str(Path(row["path"]).parent), dict.fromkeys(LABELS, 0.0))
        for label, probability in zip(*top_k(row), strict=True):
            votes[label] += np.log(max(probability, 1e-12))
    tracks = read_csv(RUN / "predictions" / "tracks_tracks.csv")
    assert {row["track"]: row["answer"] for row in tracks} == {t: max(v, key=v.get) for t, v in evidence.items()}
    assert {row["track"]: row["crops_total"] for row in tracks} == {"tracks/p1": "3", "tracks/p2": "5"}


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def top_k(row: dict) -> tuple[list[str], list[float]]:
    ranks = range(1, 1 + sum(key.endswith("_label") and key.startswith("top") for key in row))
    return [row[f"top{k}_label"] for k in ranks], [float(row[f"top{k}_prob"]) for k in ranks]


def test_predict_jsonl_output_and_text_file_of_paths(trained):
    paths = sorted((trained / "test").glob("*.jpg"))[:3]
    list_file = Path("to_read.txt")
    list_file.write_text("\n".join(str(p) for p in paths) + "\n")
    main(eval_args("predict", trained, "--data.predict_path", str(list_file), "--predictions.format", "jsonl"))
    assert predictions_of().name == "to_read.jsonl"  # named after the input
    rows = [json.loads(line) for line in predictions_of().read_text().splitlines()]
    assert [row["path"] for row in rows] == [str(p) for p in paths]
    assert all(row["pred_label"] in LABELS and 0 < row["pred_prob"] <= 1 for row in rows)


def test_a_resume_that_would_not_continue_the_run_is_refused_with_a_diff(trained, capsys):
    def refused(*extra: str) -> str:
        capsys.readouterr()
        with pytest.raises(SystemExit) as stop:
            main(fit_args(trained, "--ckpt_path", "last", *extra, epochs=3))
        assert stop.value.code == 2
        return capsys.readouterr().err

    changes = [
        (["--model.backbone", "resnet18"], "--model.backbone: checkpoint 'test_resnet', now 'resnet18'"),
        (["--data.image_size", "48"], "--data.image_size: checkpoint 32, now 48"),
        (["--model.head", "digits"], "--model.head: checkpoint 'classes', now 'digits'"),
        (["--data.batch_size", "4"], "--data.batch_size: checkpoint 8, now 4"),
        (["--trainer.accumulate_grad_batches", "2"], "--trainer.accumulate_grad_batches: checkpoint 1, now 2"),
        (["--ema.enabled", "false"], "--ema.enabled: checkpoint True, now False"),
    ]
    for extra, message in changes:
        error = refused(*extra)
        assert "refusing to resume" in error and message in error, extra

    saved = torch.load(LAST, map_location="cpu", weights_only=True)
    two_devices = {**saved, "JerseyDataModule": {**saved["JerseyDataModule"], "world_size": 2}}
    torch.save(two_devices, LAST)  # as if trained on 2 devices (or nodes): 1 here
    assert "devices x nodes (--trainer.devices, --trainer.num_nodes): checkpoint 2, now 1" in refused()
    torch.save(saved, LAST)
    for i in range(4):  # a number train did not have
        write_crop(trained / "train" / f"41_{i}.jpg", "41", seed=f"41-{i}")
    with open(trained / "train" / "annotations.jsonl", "a") as f:
        f.writelines(json.dumps({"image": f"41_{i}.jpg", "suffix": "41"}) + "\n" for i in range(4))
    error = refused()
    assert "class list: checkpoint has 4 classes, the data has 5; only in checkpoint: [], only in data: ['41']" in error
    assert torch.load(LAST, map_location="cpu", weights_only=True)["epoch"] == 1  # nothing was overwritten


def test_bad_checkpoints_and_predict_inputs_get_clear_errors(trained, tmp_path, capsys):
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, foreign)
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["validate", "--config", str(CONFIGS / "base.yaml"), "--ckpt_path", str(foreign)], "not a jersey-cls"),
        (eval_args("predict", trained, "--data.predict_path", str(tmp_path / "nope")), "no such file or folder"),
        (eval_args("predict", trained, "--data.predict_path", str(empty)), "no images found"),
    ]
    for args, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
