"""The epoch a user waits for: `jersey-cls fit` against a hand-written loop doing the same work, side by side.

    python bench/epoch.py                    # about 13 minutes on a 2-core CPU

Both train ResNet18 from scratch on the embedded set at base.yaml's settings (64 px, batch 32, 2 workers, the
same train augmentation, AdamW with warm-up and cosine), validate every epoch and save a checkpoint every
epoch. Each runs in a fresh process, interleaved, for 1 and for 3 epochs; the difference of the two wall
times, halved, is one epoch's wall time, so start-up (imports, rendering, the data doctor) cancels out.
Medians over --repeats. jersey-cls also runs with Lightning's simple profiler once, to break its epoch down
into training steps, validation, work done at every step (EMA update, divergence check) and work done once an
epoch (checkpoints, reports, curves): the fixed per-epoch overhead is the last, less the loop's one save.
The augmentation's CPU time is measured on its own, one process decoding and augmenting one epoch of crops.
"""

import argparse
import copy
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BASE = str(REPO / "configs" / "base.yaml")


def base_augmentation() -> dict:
    """base.yaml's training augmentation: its data settings, in train_transform's order after the image size."""
    recipe = yaml.safe_load(Path(BASE).read_text())["data"]
    return {key: recipe[key] for key in ("augment", "jpeg_quality", "jpeg_p", "noise_sigma", "noise_p", "erasing_p")}


def hand_written(epochs: int, out: Path) -> None:
    """What a user writes by hand around the same data pipeline: train, validate, save, every epoch."""
    import timm
    import timm.optim
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader

    from jersey_cls.data.datamodule import JerseyDataModule
    from jersey_cls.data.datasets import CropDataset, collate_readable
    from jersey_cls.data.transforms import eval_transform, train_transform

    torch.manual_seed(0)
    data = JerseyDataModule(image_size=64, num_workers=0)  # for its splits and classes; the loaders are below
    data.prepare_data()
    data.setup("fit")
    index = {name: i for i, name in enumerate(data.class_names)}
    train = [(path, index[label]) for path, label in data.splits["train"].samples]
    val = [(path, index[label]) for path, label in data.splits["val"].samples]
    augment = train_transform(64, *base_augmentation().values())
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
    seconds = {"validation": 0.0, "save": 0.0}
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
        started = time.perf_counter()
        with torch.no_grad():
            for batch in loaders["val"]:
                correct += int((model((batch["image"].float() - mean) / std).argmax(1) == batch["target"]).sum())
        saved = time.perf_counter()
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, out / "last.pt")
        seconds["validation"] += saved - started
        seconds["save"] += time.perf_counter() - saved
    (out / "seconds.json").write_text(json.dumps({k: v / epochs for k, v in seconds.items()}))


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"bench: {' '.join(command[:4])} ... failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def jersey(epochs: int, run: Path, *flags: str) -> list[str]:
    return ["jersey-cls", "fit", "--config", BASE, "--trainer.default_root_dir", str(run), "--trainer.max_epochs",
            str(epochs), "--trainer.enable_progress_bar", "false", *flags]  # fmt: skip


def epoch_seconds(make, repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median per-epoch wall time of each contender, from 1- and 3-epoch runs, interleaved; and the loop's own
    validation and save seconds an epoch (medians)."""
    samples, loop = {}, {}
    for _ in range(repeats):
        for name, command in make.items():
            with tempfile.TemporaryDirectory() as folder:
                one = timed(command(1, Path(folder) / "one"))
                three = timed(command(3, Path(folder) / "three"))
                own = Path(folder) / "three" / "seconds.json"
                for key, value in (json.loads(own.read_text()) if own.is_file() else {}).items():
                    loop.setdefault(key, []).append(value)
            samples.setdefault(name, []).append((three - one) / 2)
    median = {name: statistics.median(values) for name, values in samples.items()}
    return median, {key: statistics.median(values) for key, values in loop.items()}


def augmentation_seconds() -> dict:
    """CPU seconds to decode and resize one epoch of train crops, and to decode and augment them (one process,
    one thread, as a data worker); and each transform's share: its seconds when always applied, times its
    probability."""
    import torch
    from torchvision.transforms import v2

    from jersey_cls.data.datamodule import JerseyDataModule
    from jersey_cls.data.datasets import CropDataset
    from jersey_cls.data.images import load_rgb
    from jersey_cls.data.transforms import eval_transform, train_transform

    torch.set_num_threads(1)
    augment = train_transform(64, *base_augmentation().values())
    data = JerseyDataModule(image_size=64, num_workers=0)
    data.prepare_data()
    data.setup("fit")
    train = [(path, 0) for path, _ in data.splits["train"].samples]
    result = {}
    for name, transform in (("decode and resize", eval_transform(64)), ("decode and augment", augment)):
        dataset = CropDataset(train, transform, seed=0)
        started = time.process_time()
        for position in range(len(dataset)):
            dataset[(0, position, position)]
        result[name] = time.process_time() - started
    crops = [v2.PILToTensor()(load_rgb(path)) for path, _ in train]
    result["by transform"] = {}
    for step in augment.transforms[1:]:
        always = step.transforms[0] if isinstance(step, v2.RandomApply) else step
        if isinstance(always, v2.RandomPerspective | v2.RandomErasing):
            always = copy.copy(always)
            always.p = 1.0
        started = time.process_time()
        out = [always(crop) for crop in crops]
        chance = step.p if isinstance(step, v2.RandomApply | v2.RandomPerspective | v2.RandomErasing) else 1.0
        result["by transform"][type(always).__name__] = (time.process_time() - started) * chance
        if isinstance(always, v2.RandomResizedCrop):
            crops = out  # the transforms after it see 64 px crops
    return result


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
    for action, seconds in totals.items():  # "[Callback]Name{state key}.hook": per callback and kind of hook
        if action.startswith("[Callback]"):
            name = re.split(r"[{]", action.removeprefix("[Callback]"), maxsplit=1)[0].split(".")[0]
            hook = action.rsplit(".", 1)[1]
            if hook in ONCE_PER_FIT:
                continue  # the difference of 1 and 3 epochs leaves these out of the epoch
            kind = "every step" if hook in EVERY_STEP else "every epoch"
            parts[f"{kind}: {name}"] = parts.get(f"{kind}: {name}", 0.0) + seconds / 3
    return parts


EVERY_STEP = {"on_train_batch_start", "on_train_batch_end", "on_before_backward", "on_after_backward",
              "on_before_optimizer_step", "on_before_zero_grad"}  # fmt: skip
ONCE_PER_FIT = {"setup", "teardown", "on_fit_start", "on_fit_end", "on_train_start", "on_train_end",
                "on_sanity_check_start", "on_sanity_check_end"}  # fmt: skip


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
    seconds, loop = epoch_seconds(
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
    print(json.dumps({"epoch seconds": seconds, "loop": loop}), flush=True)
    parts = breakdown()
    augmentation = augmentation_seconds()
    crops = 64 * 30  # the embedded set's train split
    epoch = seconds["jersey-cls fit"]
    every_epoch = sum(value for name, value in parts.items() if name.startswith("every epoch: "))
    every_step = sum(value for name, value in parts.items() if name.startswith("every step: "))
    fixed = every_epoch - loop["save"]
    result = {
        "epoch seconds": seconds,
        "ratio": seconds["hand-written loop"] / epoch,
        "loop": loop,
        "parts": parts,
        "fixed per-epoch overhead": fixed,
        "augmentation cpu seconds": augmentation,
    }
    print(json.dumps(result, indent=2))
    print(f"\nper-epoch wall, medians of {args.repeats} (embedded set, {crops} train crops, base.yaml)")
    for name, value in seconds.items():
        print(f"  {name:<22} {value:6.1f} s  ({crops / value:.0f} crops/s)")
    print(f"  ratio jersey-cls / hand-written (speed): {result['ratio']:.3f}   (target >= 0.9)")
    print(f"  the loop's validation pass {loop['validation']:.2f} s, its checkpoint save {loop['save']:.2f} s")
    print("\none jersey-cls epoch, from the profiler (a 3-epoch fit's totals / 3, and their share of the epoch):")
    for name, value in parts.items():
        if value >= 0.005:
            print(f"  {name:<36} {value:6.2f} s  {value / epoch:6.1%}")
    print(f"  callbacks at every step (recipe: EMA update, divergence check, ...)  {every_step:.2f} s  "
          f"{every_step / epoch:.1%}")  # fmt: skip
    print(f"  callbacks once an epoch (checkpoints, reports, EMA swap, curves)    {every_epoch:.2f} s  "
          f"{every_epoch / epoch:.1%}")  # fmt: skip
    print(f"fixed per-epoch overhead (once-an-epoch callbacks less the loop's save): {fixed:.2f} s, "
          f"{fixed / epoch:.1%} of an epoch (target <= 5%)")  # fmt: skip
    extra = epoch - seconds["hand-written loop"]
    print(f"all extra time against the same-work loop: {extra:+.2f} s an epoch, {extra / epoch:+.1%}")
    aug = augmentation["decode and augment"] - augmentation["decode and resize"]
    print(f"augmentation (recipe, in the data workers): {aug:.1f} CPU s an epoch beyond decoding "
          f"({augmentation['decode and resize']:.1f} s), {aug / (2 * epoch):.1%} of 2 cores over an epoch")  # fmt: skip
    for name, value in augmentation["by transform"].items():
        print(f"  {name:<22} {value:5.2f} CPU s an epoch")


if __name__ == "__main__":
    main()
