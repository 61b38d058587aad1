import csv
import json
import random
from collections import Counter
from pathlib import Path

import pytest
import torch
from PIL import Image

from jersey_cls.cli import main as jersey_cls
from jersey_cls.cli.synth import main as synth
from jersey_cls.data.datamodule import JerseyDataModule
from jersey_cls.data.summary import summarize
from jersey_cls.numbers import LEGAL_NUMBERS
from jersey_cls.synth.render import Look, render_crop

from .conftest import eval_args, fit_args, predictions_of, printed_metric


def test_same_seed_same_crop_and_0_and_00_render_differently():
    look = Look(size=48)
    first, again = render_crop("23", random.Random("s"), look), render_crop("23", random.Random("s"), look)
    assert first.size == (48, 48) and first.tobytes() == again.tobytes()
    assert render_crop("0", random.Random("s"), look).tobytes() != render_crop("00", random.Random("s"), look).tobytes()


def test_top_up_of_an_imagefolder_split_then_both_read_together_and_the_digits_head_trains(imagefolder_root, capsys):
    # train has 10 crops each of 0, 00, 7 and 23; give 7 only 3, then top up everything below 8 to 12, add 41.
    for extra in sorted((imagefolder_root / "train" / "7").iterdir())[3:]:
        extra.unlink()
    synth(["--split", str(imagefolder_root / "train"), "--count", "12", "--below", "8", "--numbers", "41",
           "--look.size", "48"])  # fmt: skip
    out = imagefolder_root / "train" / "synthetic"
    rows = [json.loads(line) for line in (out / "annotations.jsonl").read_text().splitlines()]
    assert Counter(row["suffix"] for row in rows) == {"7": 9, "41": 12}  # 0, 00 and 23 had 10, not below 8
    assert all((out / row["image"]).is_file() for row in rows)
    assert Image.open(out / "contact_sheet.png").size[0] >= 8 * 48

    data = JerseyDataModule(data_root=str(imagefolder_root), image_size=32, num_workers=0)
    assert data.splits["train"].layout == "imagefolder+jsonl"
    data.setup("fit")
    per_class = summarize(data.splits, data.class_names, data.data_root)["per_class"]
    assert per_class["7"]["train"] == 12 and per_class["00"]["train"] == 10
    assert data.class_names == ["0", "00", "7", "23", "41"]

    # The digits head: all 101 numbers as classes, both heads reported, the export checked against PyTorch.
    jersey_cls(fit_args(imagefolder_root, "--model.head", "digits", onnx=True))
    run = Path("runs/jersey")
    assert json.loads((run / "export" / "labels.json").read_text())["class_names"] == LEGAL_NUMBERS
    # The whole-number output is scored beside the answer: made to say "7" for every crop, it is right on the
    # quarter of the val crops that are 7s, whatever the tens and units say.
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["state_dict"]["net.fc.bias"][LEGAL_NUMBERS.index("7")] += 50
    torch.save(checkpoint, "whole_number_says_7.ckpt")
    capsys.readouterr()
    jersey_cls(["validate", "--ckpt_path", "whole_number_says_7.ckpt", "--data.num_workers", "0"])
    assert printed_metric(capsys.readouterr().out, "val/whole_number_acc") == pytest.approx(0.25)
    jersey_cls(eval_args("predict", imagefolder_root))
    with open(predictions_of(), newline="") as f:
        assert {row["pred_label"] for row in csv.DictReader(f)} <= set(LEGAL_NUMBERS)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "nothing to render"),
        (["--numbers", "7 x", "--out", "o"], "not numbers: x"),
        (["--numbers", "7"], "--out is needed"),
        (["--split", "nowhere"], "--split nowhere: no such folder"),
        (["--numbers", "7", "--out", "."], "already exists and is not empty"),
        (["--numbers", "7", "--out", "o", "--look.fonts+", "keep.txt"], "--look.fonts keep.txt: cannot be read"),
        (["--numbers", "7", "--out", "o", "--look.fold_p", "1.5"], "--look.fold_p 1.5: a probability"),
    ],
    ids=["nothing", "not-a-number", "no-out", "missing-split", "out-not-empty", "bad-font", "bad-probability"],
)
def test_bad_synth_input_is_a_clear_error(args, message, capsys, tmp_path):
    (tmp_path / "keep.txt").write_text("user file")
    with pytest.raises(SystemExit) as stop:
        synth(args)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "user file"


def test_digits_head_refuses_data_with_labels_that_are_not_numbers(imagefolder_root, capsys):
    (imagefolder_root / "train" / "7").rename(imagefolder_root / "train" / "A")
    with pytest.raises(SystemExit) as stop:
        jersey_cls(fit_args(imagefolder_root, "--model.head", "digits", onnx=True))
    assert stop.value.code == 2
    assert "--model.head digits reads the numbers 0-99 and 00" in capsys.readouterr().err
