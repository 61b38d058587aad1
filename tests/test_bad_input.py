"""Bad input gets exit 2 and one message that names the flag or file, says what is wrong and how to fix it."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from jersey_cls.cli import main
from jersey_cls.data.datamodule import JerseyDataModule
from jersey_cls.messages import JerseyInputError
from jersey_cls.numbers import label_sort_key

from .conftest import CONFIGS, LABELS, eval_args, fit_args, write_crop

BASE = ["--config", str(CONFIGS / "base.yaml")]


def fails(capsys, args: list[str]) -> str:
    """What the command printed on stderr; it must have exited 2."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fit", *BASE, "--data.bach_size", "3"], "did you mean --data.batch_size?"),
        (["fit", *BASE, "--data.image_size", "0"], '"data.image_size":\n  Not of type PositiveInt: 0'),
        (["fit", *BASE, "--data.batch_size", "-3"], '"data.batch_size":\n  Not of type PositiveInt: -3'),
        (["fit", *BASE, "--data.num_workers", "-1"], '"data.num_workers":\n  Not of type NonNegativeInt'),
        (["fit", *BASE, "--data.augment.jpeg_p", "1.5"], "--data.augment.jpeg_p 1.5: give a value from 0 to 1"),
        (["predict", *BASE, "--predictions.top_k", "0"], '"predictions.top_k":\n  Not of type PositiveInt'),
        (["fit", *BASE, "--last_checkpoint.every_n_minutes", "0"], "--last_checkpoint.every_n_minutes 0"),
    ],
    ids=["misspelt-flag", "image-size", "batch-size", "workers", "probability", "top-k", "minutes"],
)
def test_bad_flags_are_refused_at_the_door(capsys, args, message):
    error = fails(capsys, args)
    assert message in error
    assert "usage:" not in error  # the message, not pages of usage before it
    if "did you mean" in message:
        assert error.rstrip().splitlines()[-1].startswith(message)


def test_evaluation_without_a_checkpoint_is_refused_and_names_the_checkpoints_there(jsonl_root, capsys):
    main(fit_args(jsonl_root))
    for command in ("validate", "test", "predict", "export"):
        error = fails(capsys, [command, *BASE])
        assert f"{command} needs --ckpt_path" in error and "last.ckpt" in error and "best-epoch=000" in error
    assert "no such checkpoint file" in fails(capsys, ["validate", *BASE, "--ckpt_path", "nope.ckpt"])
    Path("runs/jersey/checkpoints/last.ckpt").unlink()  # best checkpoints alone, copied for deployment say
    error = fails(capsys, ["validate", *BASE, "--ckpt_path", "best"])
    assert "runs/jersey/checkpoints has no last.ckpt, which records which checkpoint is best" in error
    assert "Give the file: best-epoch=000" in error


def test_jsonl_with_another_schema_names_the_keys_expected_and_found(jsonl_root, capsys):
    for split in ("train", "valid"):
        annotations = jsonl_root / split / "annotations.jsonl"
        rows = [json.loads(line) for line in annotations.read_text().splitlines()]
        annotations.write_text("".join(json.dumps({"file_name": r["image"], "text": r["suffix"]}) + "\n" for r in rows))
    error = fails(capsys, fit_args(jsonl_root))
    assert "train/annotations.jsonl" in error and "['image', 'suffix']" in error and "['file_name', 'text']" in error


def test_a_validation_split_is_read_and_a_missing_one_lists_the_names_accepted(jsonl_root, capsys):
    (jsonl_root / "valid").rename(jsonl_root / "validation")
    main(fit_args(jsonl_root))
    assert Path("runs/jersey/checkpoints/last.ckpt").is_file()
    shutil.rmtree(jsonl_root / "validation")
    error = fails(capsys, fit_args(jsonl_root, "--trainer.default_root_dir", "other"))
    assert "no val/ or valid/ or validation/ split" in error


def test_single_class_data_is_refused(imagefolder_root, capsys):
    for split in ("train", "val"):
        for label in LABELS[1:]:
            shutil.rmtree(imagefolder_root / split / label)
    assert "train has 1 label (0); a classifier needs at least two" in fails(capsys, fit_args(imagefolder_root))


def test_one_image_is_a_valid_predict_path_and_a_binary_file_is_not(trained, capsys):
    crop = trained / "test" / "7_0.jpg"
    main(eval_args("predict", trained, "--data.predict_path", str(crop)))
    rows = Path("runs/jersey/predictions/7_0.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith(str(crop))
    blob = Path("weights.bin")
    blob.write_bytes(bytes(range(256)))
    error = fails(capsys, eval_args("predict", trained, "--data.predict_path", str(blob)))
    assert "--data.predict_path weights.bin: neither an image" in error


def test_a_config_saved_before_the_package_was_laid_out_by_concern_names_the_new_class_paths(capsys, tmp_path):
    old = (CONFIGS / "base.yaml").read_text().replace("jersey_cls.training.BestCheckpoints",
                                                      "jersey_cls.callbacks.BestCheckpoints")  # fmt: skip
    (tmp_path / "old.yaml").write_text(old)
    error = fails(capsys, ["fit", "--config", str(tmp_path / "old.yaml")])
    assert "jersey_cls.callbacks.BestCheckpoints is now jersey_cls.training.BestCheckpoints" in error

    config = yaml.safe_load((CONFIGS / "base.yaml").read_text())
    config["data"].update(config["data"].pop("augment"))  # the flat options of before
    config["data"]["augment"] = config["data"].pop("strength")
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(config))
    error = fails(capsys, ["fit", "--config", str(tmp_path / "old.yaml")])
    assert "data.augment -> data.augment.strength" in error and "data.jpeg_p -> data.augment.jpeg_p" in error


ILLEGIBLE_ON = ("--data.illegible", "true")


def test_a_ground_truth_value_that_is_no_jersey_number_is_named_and_its_tracklet_skipped(soccernet_root, capsys):
    gt = soccernet_root / "train" / "train_gt.json"
    truth = json.loads(gt.read_text())
    truth.update({"00": 123, "01": -5, "02": 10**30, "70": "²", "71": "٣", "72": True})
    gt.write_text(json.dumps(truth))
    with pytest.raises(SystemExit) as stop:
        main(fit_args(soccernet_root, *ILLEGIBLE_ON, "--data.strict", "true"))
    assert stop.value.code == 2
    error = " ".join(capsys.readouterr().err.split())
    assert "6 ground-truth value that is no jersey number" in error
    assert f"{gt}: '00': 123 (expected an integer 0-99, or -1 when the number is never visible)" in error
    data = JerseyDataModule(data_root=str(soccernet_root), illegible=True, num_workers=0)
    data.setup("fit")
    tracks = {data.splits["train"].tracks[path] for path, _ in data.splits["train"].samples}
    tracks |= {data.splits["val"].tracks[path] for path, _ in data.splits["val"].samples}
    assert tracks == {"230", "231", "232", "x0", "x1", "x2", "h0", "h1", "h2"}  # the six refused, the rest read
    refused = data.splits["train"].skipped["ground-truth value that is no jersey number"]
    bad = (("00", "123"), ("01", "-5"), ("02", str(10**30)), ("70", "'²'"), ("71", "'٣'"), ("72", "True"))
    for track, value in bad:
        assert f"{gt}: {track!r}: {value} (expected an integer 0-99" in " ".join(refused), track
    assert "123" not in data.class_names and "2" not in data.class_names


def test_a_player_id_given_twice_is_refused_and_a_bom_is_read(soccernet_root):
    gt = soccernet_root / "train" / "train_gt.json"
    text = gt.read_text()
    gt.write_text(text[:-1] + ', "70": 77}')  # "70" is 7 earlier in the file
    with pytest.raises(JerseyInputError, match=rf"{gt}: 1 player ids are given more than once.*'70': 7, 77"):
        JerseyDataModule(data_root=str(soccernet_root), illegible=True, num_workers=0).setup("fit")
    gt.write_text("\ufeff" + text, encoding="utf-8")
    data = JerseyDataModule(data_root=str(soccernet_root), illegible=True, num_workers=0)
    data.setup("fit")
    assert "7" in data.class_names


def test_unicode_digits_are_their_ascii_number_and_sort_without_a_crash(jsonl_root, capsys):
    annotations = jsonl_root / "train" / "annotations.jsonl"
    rows = [json.loads(line) for line in annotations.read_text().splitlines()]
    for row, twin in zip(rows, ["٧", "７", "۰۰", " 7 "], strict=False):  # Arabic-Indic, full-width, Persian 00
        row["suffix"] = twin
    annotations.write_text("".join(json.dumps(row) + "\n" for row in rows))
    data = JerseyDataModule(data_root=str(jsonl_root), num_workers=0)
    data.setup("fit")
    assert set(data.class_names) == {"0", "00", "7", "23"}
    assert sorted(["²", "10", "٣", "2"], key=label_sort_key) == ["2", "10", "²", "٣"]  # not numbers: last


def test_jsonl_images_outside_the_data_root_are_skipped_and_named_unless_allowed(jsonl_root, tmp_path):
    outside = tmp_path / "elsewhere" / "x.jpg"
    write_crop(outside, "7", seed="outside")
    annotations = jsonl_root / "train" / "annotations.jsonl"
    lines = annotations.read_text().splitlines()
    escaping = [os.path.relpath(outside, annotations.parent), str(outside), "/etc/passwd"]
    lines += [json.dumps({"image": image, "suffix": "7"}) for image in escaping]
    annotations.write_text("\n".join(lines) + "\n")
    data = JerseyDataModule(data_root=str(jsonl_root), num_workers=0)
    data.setup("fit")
    train = data.splits["train"]
    assert not {str(outside), "/etc/passwd"} & {os.path.normpath(path) for path, _ in train.samples}
    refused = train.skipped["image outside the data root"]
    assert [entry.split(": ", 1)[0] for entry in refused] == [f"{annotations}:{len(lines) - 2 + i}" for i in range(3)]
    assert all("--data.allow_outside_root true" in entry for entry in refused)
    allowed = JerseyDataModule(data_root=str(jsonl_root), num_workers=0, allow_outside_root=True)
    allowed.setup("fit")
    read = {os.path.normpath(path) for path, _ in allowed.splits["train"].samples}
    assert str(outside) in read and "/etc/passwd" not in read  # not an image: the doctor's, as any broken file


class Runs:
    """A pickled object that would run code when loaded."""

    def __reduce__(self):
        return (print, ("this ran",))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b""), "the file is empty (0 bytes)"),
        (lambda p: p.write_bytes(p.with_name("whole.ckpt").read_bytes()[:5000]), "cut short or not a PyTorch"),
        (lambda p: torch.save({"x": Runs()}, p), "it holds Python objects beyond tensors and plain values"),
    ],
)
def test_a_checkpoint_that_cannot_be_loaded_says_why(make, message, tmp_path, jsonl_root, capsys):
    torch.save({"w": torch.ones(10_000)}, tmp_path / "whole.ckpt")
    broken = tmp_path / "broken.ckpt"
    make(broken)
    err = " ".join(fails(capsys, [*eval_args("validate", tmp_path), "--ckpt_path", str(broken)]).split())
    assert f"--ckpt_path {broken}: {message}" in err and "or best or last" in err, err
    err = " ".join(fails(capsys, [*fit_args(jsonl_root), "--model.init_from", str(broken)]).split())
    assert f"--model.init_from {broken}: {message}" in err and "best or last" not in err, err
    assert "this ran" not in capsys.readouterr().out


@pytest.mark.parametrize(("text", "message"), [("", "is empty"), ("- a\n- b\n", "holds a YAML list"),
                                               ("a: [1\n", "not valid YAML at line 2")])  # fmt: skip
def test_a_config_file_that_is_no_mapping_is_named(text, message, tmp_path, capsys):
    config = tmp_path / "mine.yaml"
    config.write_text(text)
    err = " ".join(fails(capsys, ["fit", *BASE, "--config", str(config)]).split())
    assert f"--config {config}" in err and message in err, err


@pytest.mark.parametrize("command", ["predict", "export", "audit"])
def test_commands_that_write_one_set_of_files_refuse_ddp_naming_the_flag(trained, command, capsys):
    with pytest.raises(SystemExit) as stop:
        main(eval_args(command, trained, "--trainer.accelerator", "cpu", "--trainer.devices", "2",
                       "--trainer.strategy", "ddp"))  # fmt: skip
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert f"{command} runs on one device: add --trainer.devices 1" in error and "Traceback" not in error
    assert not Path("runs/jersey/predictions").exists() and not Path("runs/jersey/exports").exists()
