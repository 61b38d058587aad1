"""The epoch a user waits for: `jersey-cls fit` against a hand-written loop doing the same work, side by side.

    python bench/epoch.py                    # about 13 minutes on a 2-core CPU

Both train ResNet18 from scratch on the embedded set at base.yaml's settings (64 px, batch 32, 2 workers, the
same train augmentation, AdamW with warm-up and cosine), validate every epoch and save a checkpoint every
epoch. Each runs in a fresh process, interleaved, for 1 and for 3 epochs; the difference of the two wall
times, halved, is one epoch's wall time, so start-up (imports, rendering, the data doctor) cancels out.
Medians over --repeats. jersey-cls also runs with Lightning's simple profiler once, to break its epoch down.
"""

import argparse
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASE = str(REPO / "configs" / "base.yaml")


def hand_written(epochs: int, out: Path) -> None:
    """What a user writes by hand around the same data pipeline: train, validate, save, every epoch."""
    import timm
    import timm.optim
    import torch
    import torch.nn.functional as F
    import yaml
    from torch.utils.data import DataLoader

    from jersey_cls.data.datamodule import JerseyDataModule
    from jersey_cls.data.datasets import CropDataset, collate_readable
    from jersey_cls.data.transforms import eval_transform, train_transform

    torch.manual_seed(0)
    recipe = yaml.safe_load(Path(BASE).read_text())["data"]  # the augmentation base.yaml trains with
    damage = {key: recipe[key] for key in ("augment", "jpeg_quality", "jpeg_p", "noise_sigma", "noise_p", "erasing_p")}
    data = JerseyDataModule(image_size=64, batch_size=32, num_workers=2, **damage)
    data.prepare_data()
    data.setup("fit")
    hp = data.hparams
    index = {name: i for i, name in enumerate(data.class_names)}
    train = [(path, index[label]) for path, label in data.splits["train"].samples]
    val = [(path, index[label]) for path, label in data.splits["val"].samples]
    augment = train_transform(64, hp.augment, hp.jpeg_quality, hp.jpeg_p, hp.noise_sigma, hp.noise_p, hp.erasing_p)
    loaders = {
        "train": DataLoader(
            CropDataset(train, augment),
            batch_size=32,
            shuffle=True,
            drop_last=True,
            num_workers=2,
            collate_fn=collate_readable,
        ),  # fmt: skip
        "val": DataLoader(
            CropDataset(val, eval_transform(64)), batch_size=32, num_workers=2, collate_fn=collate_readable
        ),  # fmt: skip
    }
    model = timm.create_model("resnet18", pretrained=False, num_classes=len(data.class_names))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
    optimizer = timm.optim.create_optimizer_v2(model, "adamw", lr=0.004, weight_decay=0.05)
    total = 15 * len(loaders["train"])
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    for _ in range(epochs):
        model.train()
        for batch in loaders["train"]:
            loss = F.cross_entropy(model((batch["image"].float() - mean) / std), batch["target"], label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for batch in loaders["val"]:
                correct += int((model((batch["image"].float() - mean) / std).argmax(1) == batch["target"]).sum())
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, out / "last.pt")


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"bench: {' '.join(command[:4])} ... failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def jersey(epochs: int, run: Path, *flags: str) -> list[str]:
    return ["jersey-cls", "fit", "--config", BASE, "--trainer.default_root_dir", str(run), "--trainer.max_epochs",
            str(epochs), "--trainer.enable_progress_bar", "false", *flags]  # fmt: skip


def epoch_seconds(make, repeats: int) -> dict[str, float]:
    """Median per-epoch wall time of each contender, from 1- and 3-epoch runs, interleaved."""
    samples = {}
    for _ in range(repeats):
        for name, command in make.items():
            with tempfile.TemporaryDirectory() as folder:
                one = timed(command(1, Path(folder) / "one"))
                three = timed(command(3, Path(folder) / "three"))
            samples.setdefault(name, []).append((three - one) / 2)
    return {name: statistics.median(values) for name, values in samples.items()}


def breakdown() -> dict[str, float]:
    """Seconds per epoch in each part of a jersey-cls epoch, from Lightning's simple profiler (3 epochs)."""
    with tempfile.TemporaryDirectory() as folder:
        timed(jersey(3, Path(folder), "--trainer.profiler", "SimpleProfiler", "--trainer.profiler.dirpath", folder,
                     "--trainer.profiler.filename", "profile"))  # fmt: skip
        text = (Path(folder) / "fit-profile.txt").read_text()
    totals = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split("|") if cell.strip()]
        if len(cells) >= 4 and cells[0] not in ("Action", "Total"):
            try:
                totals[cells[0]] = float(cells[3])
            except ValueError:
                continue

    def part(*names: str) -> float:
        return sum(seconds for action, seconds in totals.items() if any(n in action for n in names)) / 3

    parts = {
        "training steps": part("run_training_batch"),
        "waiting for train batches": part("train_dataloader_next"),
        "validation steps": part("validation_step"),
        "waiting for validation batches": part("val_next"),
    }
    for action, seconds in totals.items():  # "[Callback]Name{state key}.hook": per callback, every hook
        if action.startswith("[Callback]"):
            name = re.split(r"[{.]", action.removeprefix("[Callback]"), maxsplit=1)[0]
            parts[f"callback {name}"] = parts.get(f"callback {name}", 0.0) + seconds / 3
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hand-written", type=int, default=0, help=argparse.SUPPRESS)  # a contender's own process
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hand_written:
        args.out.mkdir(parents=True, exist_ok=True)
        hand_written(args.hand_written, args.out)
        return
    with tempfile.TemporaryDirectory() as folder:
        timed(jersey(1, Path(folder)))  # renders the embedded set into the cache once
    seconds = epoch_seconds(
        {
            "jersey-cls fit": lambda epochs, run: jersey(epochs, run),
            "hand-written loop": lambda epochs, run: [
                sys.executable,
                __file__,
                "--hand-written",
                str(epochs),
                "--out",
                str(run),
            ],  # fmt: skip
        },
        args.repeats,
    )
    print(json.dumps({"epoch seconds": seconds}), flush=True)
    parts = breakdown()
    crops = 64 * 30  # the embedded set's train split
    result = {
        "epoch seconds": seconds,
        "ratio": seconds["hand-written loop"] / seconds["jersey-cls fit"],
        "parts": parts,
    }
    print(json.dumps(result, indent=2))
    print(f"\nper-epoch wall, medians of {args.repeats} (embedded set, {crops} train crops, base.yaml)")
    for name, value in seconds.items():
        print(f"  {name:<22} {value:6.1f} s  ({crops / value:.0f} crops/s)")
    print(f"  ratio jersey-cls / hand-written (speed): {result['ratio']:.3f}   (target >= 0.9)")
    epoch = seconds["jersey-cls fit"]
    print("\none jersey-cls epoch, from the profiler (a 3-epoch fit's totals / 3, and their share of the epoch):")
    for name, value in parts.items():
        print(f"  {name:<32} {value:6.2f} s  {value / epoch:6.1%}")
    once = ("callback ExportOnFitEnd",)  # runs once per fit: the difference of 1 and 3 epochs leaves it out
    callbacks = sum(value for name, value in parts.items() if name.startswith("callback ") and name not in once)
    extra = epoch - seconds["hand-written loop"]
    print(f"  every callback but the fit-end export  {callbacks:6.2f} s  {callbacks / epoch:6.1%}")
    print(f"fixed overhead against the same-work loop: {extra:+.2f} s an epoch, {extra / epoch:+.1%} (target <= 5%)")


if __name__ == "__main__":
    main()
