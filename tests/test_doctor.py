import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jersey_cls.cli import main
from jersey_cls.data import doctor
from jersey_cls.data.datamodule import JerseyDataModule
from jersey_cls.data.images import load_rgb
from jersey_cls.data.layouts import read_split
from jersey_cls.messages import jersey_console

from .conftest import fit_args

FAULTS = {
    "zero-byte image": 1,
    "truncated image": 1,
    "undecodable image": 1,
    "non-image file": 1,
    "malformed JSONL line": 1,
    "missing image": 1,
    "empty label": 1,
    "image listed with different labels": 1,
    "val image identical to a train image (leakage)": 1,
    "val label absent from train (the classes head cannot score it)": 1,
}


def salt(root):
    """Add one of every fault the data doctor knows to a JSONL dataset."""
    train, valid = root / "train", root / "valid"
    (train / "empty.jpg").write_bytes(b"")
    Image.effect_noise((224, 224), 60).convert("RGB").save(train / "whole.jpg")
    whole = (train / "whole.jpg").read_bytes()
    (train / "truncated.jpg").write_bytes(whole[: len(whole) * 2 // 3])  # cut inside the image data
    (train / "notes.jpg").write_text("not an image at all")
    (train / "labels.txt").write_text("0 00 7 23")
    shutil.copy(train / "23_1.jpg", valid / "leak.jpg")
    shutil.copy(valid / "7_0.jpg", valid / "99.jpg")
    rows = [
        {"image": "empty.jpg", "suffix": "7"},
        {"image": "truncated.jpg", "suffix": "7"},
        {"image": "notes.jpg", "suffix": "7"},
        {"image": "labels.txt", "suffix": "7"},
        {"image": "gone.jpg", "suffix": "7"},
        {"image": "0_1.jpg", "suffix": ""},
        {"image": "0_2.jpg", "suffix": "00"},  # 0_2.jpg is already listed as "0"
    ]
    with open(train / "annotations.jsonl", "a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows) + '{"image": "broken\n')
    with open(valid / "annotations.jsonl", "a") as f:
        f.write(json.dumps({"image": "leak.jpg", "suffix": "23"}) + "\n")
        f.write(json.dumps({"image": "99.jpg", "suffix": "99"}) + "\n")


def test_doctor_names_every_fault_and_fit_still_completes(jsonl_root):
    salt(jsonl_root)
    with pytest.warns(UserWarning, match="the data doctor skipped bad samples") as record:
        main(fit_args(jsonl_root))
    report_warning = next(w for w in record if "data doctor" in str(w.message))
    with jersey_console():  # as the command prints it
        printed = warnings.formatwarning(report_warning.message, report_warning.category, report_warning.filename, 1)
    assert printed.startswith(f"jersey-cls: warning: --data.data_root {jsonl_root}: the data doctor skipped")
    report = json.loads(Path("runs/jersey/data_report.json").read_text())
    assert {kind: group["count"] for kind, group in report.items()} == FAULTS
    assert report["truncated image"]["examples"][0].startswith(str(jsonl_root / "train" / "truncated.jpg"))
    summary = json.loads(Path("runs/jersey/dataset_summary.json").read_text())
    # train: 40 good images less 0_2.jpg (two labels); the bad files are gone. valid: 16 + 99.jpg, no leak.
    assert summary["images"]["train"] == 39 and summary["images"]["val"] == 17


def test_strict_refuses_with_the_whole_report(jsonl_root, capsys):
    salt(jsonl_root)
    with pytest.raises(SystemExit) as exit_info:
        main(fit_args(jsonl_root, "--data.strict", "true"))
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "--data.strict is on" in error
    assert all(kind in error for kind in FAULTS)


def test_scan_results_are_cached_by_size_and_mtime(jsonl_root, tmp_path, monkeypatch):
    def scan() -> None:
        JerseyDataModule(data_root=str(jsonl_root), cache_dir=str(tmp_path / "c"), num_workers=0).setup("fit")

    scan()
    monkeypatch.setattr(doctor, "inspect_image", lambda path: pytest.fail(f"re-inspected {path}"))
    scan()
    changed = jsonl_root / "train" / "7_3.jpg"
    changed.write_bytes(b"")
    seen = []
    monkeypatch.setattr(doctor, "inspect_image", lambda path: seen.append(path) or ("zero-byte image", path, None))
    with pytest.warns(UserWarning, match="zero-byte image"):
        scan()
    assert seen == [str(changed)]


def test_over_a_hundred_images_are_scanned_in_a_process_pool_with_the_same_findings(jsonl_root, tmp_path, monkeypatch):
    salt(jsonl_root)
    rng = np.random.default_rng(0)
    with open(jsonl_root / "train" / "annotations.jsonl", "a") as f:
        for i in range(80):  # 120 train images in all: the pool's side of the threshold
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(jsonl_root / "train" / f"n{i}.png")
            f.write(json.dumps({"image": f"n{i}.png", "suffix": "7"}) + "\n")
    splits = {name: read_split(jsonl_root, name) for name in ("train", "val")}
    pools = []

    class CountedPool(doctor.ProcessPoolExecutor):
        def __init__(self, workers: int) -> None:
            pools.append(workers)
            super().__init__(workers)

    monkeypatch.setattr(doctor, "ProcessPoolExecutor", CountedPool)
    pooled = doctor.examine(splits, tmp_path / "pooled", workers=2)
    assert pools == [2]
    alone = doctor.examine(splits, tmp_path / "alone", workers=1)
    assert pools == [2]  # one process: no pool
    assert pooled == alone
    report = pooled[0]
    assert {kind: group["count"] for kind, group in report.items()} == FAULTS


@pytest.mark.parametrize(
    ("mode", "pixel", "expected"),
    [
        ("L", 200, (200, 200, 200)),
        ("LA", (200, 255), (200, 200, 200)),
        ("RGBA", (10, 20, 30, 255), (10, 20, 30)),
        ("RGBA", (10, 20, 30, 0), (0, 0, 0)),  # transparent: composited over black
        ("CMYK", (0, 0, 0, 0), (255, 255, 255)),
        ("I;16", 65535, (255, 255, 255)),
        ("I;16", 32896, (128, 128, 128)),
    ],
)
def test_every_image_mode_becomes_8_bit_rgb(tmp_path, mode, pixel, expected):
    path = tmp_path / ("crop.tif" if mode in ("CMYK", "I;16") else "crop.png")
    Image.new(mode, (4, 4), pixel).save(path)
    image = load_rgb(str(path))
    assert image.mode == "RGB"
    assert tuple(np.asarray(image)[0, 0]) == expected


def test_palette_images_keep_their_colours(tmp_path):
    path = tmp_path / "p.png"
    Image.new("RGB", (4, 4), (200, 16, 46)).convert("P", palette=Image.Palette.ADAPTIVE).save(path)
    assert tuple(np.asarray(load_rgb(str(path)))[0, 0]) == (200, 16, 46)
