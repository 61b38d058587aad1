import json
import random
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from jersey_cls.synth.render import Look, render_crop

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
LABELS = ["0", "00", "7", "23"]
SPLIT_SIZES = {"train": 10, "valid": 4, "test": 4}


@pytest.fixture(autouse=True)
def isolated(tmp_path, tmp_path_factory, monkeypatch):
    """Every test runs in its own folder, offline, with its own cache and temp folder.

    The temp folder matters for processes a test kills: W&B makes temp folders at import that only a clean
    exit removes.
    """
    monkeypatch.chdir(tmp_path)
    temp = tmp_path_factory.mktemp("tmp")
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setattr(sys, "argv", ["jersey-cls"])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "cache" / "jersey-cls" / "torchinductor"))
    monkeypatch.setenv("WANDB_MODE", "disabled")
    # An in-process W&B run leaves its service's address in os.environ; a later subprocess would then log
    # through that service, which writes relative paths from another test's folder.
    monkeypatch.delenv("WANDB_SERVICE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")


def write_crop(path: Path, label: str, seed: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    render_crop(label, random.Random(seed), Look(size=48)).save(path)


@pytest.fixture
def jsonl_root(tmp_path) -> Path:
    """A tiny Roboflow JSONL export: train/ valid/ test/, each with annotations.jsonl."""
    return write_jsonl_dataset(tmp_path / "jsonl_data")


def write_jsonl_dataset(root: Path) -> Path:
    for split, count in SPLIT_SIZES.items():
        rows = []
        for label in LABELS:
            for i in range(count):
                name = f"{label}_{i}.jpg"
                write_crop(root / split / name, label, seed=f"{split}-{label}-{i}")
                rows.append({"image": name, "prefix": "Read the number.", "suffix": label})
        (root / split / "annotations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture(scope="session")
def trained_once(tmp_path_factory) -> Path:
    """One short fit of the small JSONL set per test process (2 epochs, lr 0.01), offline, for the tests that
    only need some trained run: each works on its own copy (`trained`)."""
    folder = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setattr(sys, "argv", ["jersey-cls"])
        for name, value in {"WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg",
                            "XDG_CACHE_HOME": str(folder / "cache")}.items():  # fmt: skip
            patch.setenv(name, value)
        from jersey_cls.cli import main

        main(fit_args(write_jsonl_dataset(folder / "jsonl_data"), "--model.lr", "0.01", epochs=2))
    return folder


@pytest.fixture
def trained(trained_once, tmp_path) -> Path:
    """A copy of the shared fit's run in runs/jersey, and of its data, which the test may change: the data's path.
    The checkpoints still name the shared data, so commands that rely on that are given --data.data_root."""
    shutil.copytree(trained_once / "runs", tmp_path / "runs")
    return shutil.copytree(trained_once / "jsonl_data", tmp_path / "jsonl_data")


@pytest.fixture
def imagefolder_root(tmp_path) -> Path:
    """A tiny ImageFolder dataset: train/<label>/ and val/<label>/."""
    root = tmp_path / "folder_data"
    for split, count in (("train", 10), ("val", 4)):
        for label in LABELS:
            for i in range(count):
                write_crop(root / split / label / f"{i}.png", label, seed=f"{split}-{label}-{i}")
    return root


def favour_first_class(source: Path, target: Path, by: float) -> None:
    """An exported ONNX file whose classifier favours the first class: its bias raised ``by``."""
    import onnx

    graph = onnx.load(source)
    bias = next(t for t in graph.graph.initializer if t.name == "net.fc.bias")
    values = onnx.numpy_helper.to_array(bias).copy()
    values[0] += by
    bias.CopyFrom(onnx.numpy_helper.from_array(values, bias.name))
    onnx.save(graph, target)


def fit_args(data_root: Path, *extra: str, epochs: int = 1, onnx: bool = False) -> list[str]:
    """A fast real fit: tiny timm backbone, 32 px, no workers, quiet; one output per label of the small test sets
    (the classes head: --model.head auto would pick the digits head and its 101 classes for their numbers); the
    ONNX export, which costs more than such a fit's training, only when the test reads it."""
    return [
        "fit",
        "--config", str(CONFIGS / "base.yaml"),
        "--data.data_root", str(data_root),
        "--data.image_size", "32",
        "--data.batch_size", "8",
        "--data.num_workers", "0",
        "--model.backbone", "test_resnet",
        "--model.head", "classes",
        "--trainer.max_epochs", str(epochs),
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--onnx.enabled", str(onnx).lower(),
        *extra,
    ]  # fmt: skip


def eval_args(subcommand: str, data_root: Path, *extra: str) -> list[str]:
    """validate / test / predict / export of the run's last.ckpt; the checkpoint supplies model and image size."""
    return [
        subcommand,
        "--config", str(CONFIGS / "base.yaml"),
        "--data.data_root", str(data_root),
        "--data.num_workers", "0",
        "--trainer.enable_progress_bar", "false",
        "--ckpt_path", "runs/jersey/checkpoints/last.ckpt",
        *extra,
    ]  # fmt: skip


def printed_metric(output: str, name: str) -> float:
    """A metric from Lightning's results table as printed by validate/test."""
    return float(re.search(rf"{re.escape(name)}\s*│\s*([0-9.]+)", output).group(1))


def predictions_of(run: Path = Path("runs/jersey")) -> Path:
    """The newest predictions file `predict` wrote into the run folder's predictions/ (not a tracks file)."""
    written = [p for p in (run / "predictions").iterdir() if not p.stem.endswith("_tracks")]
    return max(written, key=lambda p: p.stat().st_mtime_ns)


def numpy_ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Top-label expected calibration error, written out: |accuracy - mean confidence| per confidence bin
    [i/15, (i+1)/15), the last bin closed, weighted by the bin's share of crops."""
    total = 0.0
    for low in np.arange(bins) / bins:
        chosen = (confidence >= low) & (confidence < low + 1 / bins) if low < 1 - 1 / bins else confidence >= low
        if chosen.any():
            total += chosen.mean() * abs(correct[chosen].mean() - confidence[chosen].mean())
    return float(total)


SOCCERNET_TRACKS = {  # split: {player id: number}, SoccerNet's ground truth (a string keeps "00" apart from 0)
    "train": {**{f"{n}{i}": n for n in (0, 7, 23) for i in range(3)}, "x0": "00", "x1": "00", "x2": "00",
              "h0": -1, "h1": -1, "h2": -1},
    "test": {"t0": 0, "t1": 7, "t2": 23, "t3": "00", "t4": -1, "t5": 7},
    "challenge": {"c0": 0, "c1": 7, "c2": 23, "c3": -1},  # its ground truth is not published
}  # fmt: skip


@pytest.fixture
def soccernet_root(tmp_path) -> Path:
    """A small SoccerNet jersey download: <split>/images/<player id>/ with four crops each, <split>_gt.json beside
    images/ (none for challenge); the -1 players' crops show a jersey with no number."""
    root = tmp_path / "soccernet"
    for split, truth in SOCCERNET_TRACKS.items():
        for track, number in truth.items():
            shown = "" if number == -1 else str(number)
            for frame in range(4):
                write_crop(root / split / "images" / track / f"{frame:04d}.jpg", shown, seed=f"{split}-{track}-{frame}")
        if split != "challenge":
            (root / split / f"{split}_gt.json").write_text(json.dumps(truth))
    return root
