"""The epoch a user waits for: `jersey-cls fit` against a hand-written loop doing the same work, side by side.

    python bench/speed_epoch.py                    # about 13 minutes on a 2-core CPU

Both train ResNet18 from scratch on the embedded set at base.yaml's settings (64 px, batch 32, 2 workers, the
same train augmentation, AdamW and a cosine schedule; jersey-cls also warms the learning rate up and keeps an
EMA), validate every epoch and save a checkpoint every epoch. The loop is bench/baseline.py's. Each runs in a
fresh process, interleaved, for 1 and for 3 epochs; the difference of the two wall times, halved, is one
epoch's wall time, so start-up (imports, rendering, the data doctor) cancels out. Medians over --repeats.
jersey-cls also runs with Lightning's simple profiler once, to break its epoch down into training steps,
validation, work done at every step (EMA update, divergence check) and work done once an epoch (checkpoints,
reports, curves): the fixed per-epoch overhead is the last, less the loop's one save. The augmentation's CPU
time is measured on its own, one process decoding and augmenting one epoch of crops.
"""

import argparse
import copy
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from baseline import base_recipe, embedded_set, train_augmentation
from common import BASE, BENCH, interleaved_samples, jersey, run
from torchvision.transforms import v2

from jersey_cls.data.augment import eval_transform
from jersey_cls.data.datasets import CropDataset
from jersey_cls.data.images import load_rgb


def fit_args(epochs: int, run_dir: Path, *flags: str) -> list[str]:
    return ["fit", "--config", BASE, "--trainer.default_root_dir", str(run_dir), "--trainer.max_epochs",
            str(epochs), "--trainer.enable_progress_bar", "false", *flags]  # fmt: skip


def epoch_wall(contender: str):
    """One sample of a contender: (3-epoch wall - 1-epoch wall) / 2, each in a fresh process; for the loop also
    its own validation and save seconds an epoch, from the 3-epoch run."""

    def sample() -> dict[str, float]:
        with tempfile.TemporaryDirectory() as folder:
            wall, out = {}, Path(folder) / "loop.json"
            for epochs in (1, 3):
                if contender == "loop":
                    command = [sys.executable, str(BENCH / "baseline.py"), "epochs", "--epochs", str(epochs)]
                    wall[epochs] = run(command, env={**os.environ, "JERSEY_BENCH_OUT": str(out)})
                else:
                    wall[epochs] = jersey(*fit_args(epochs, Path(folder) / str(epochs)))
            own = json.loads(out.read_text()) if out.exists() else {}
        return {"epoch": (wall[3] - wall[1]) / 2, **own}

    return sample


def augmentation_seconds() -> dict:
    """CPU seconds to decode and resize one epoch of train crops, and to decode and augment them (one process,
    one thread, as a data worker); and each transform's share: its seconds when always applied, times its
    probability."""
    torch.set_num_threads(1)
    augment = train_augmentation(base_recipe())
    _, samples = embedded_set(image_size=64, num_workers=0)
    train = samples["train"]
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
        jersey(*fit_args(3, Path(folder), "--trainer.profiler", "SimpleProfiler", "--trainer.profiler.dirpath",
                         folder, "--trainer.profiler.filename", "profile"))  # fmt: skip
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        jersey(*fit_args(1, Path(folder)))  # renders the embedded set into the cache once
    samples = interleaved_samples({"jersey-cls fit": epoch_wall("jersey"), "hand-written loop": epoch_wall("loop")},
                                  args.repeats)  # fmt: skip
    seconds = {name: statistics.median(s["epoch"] for s in runs) for name, runs in samples.items()}
    loop = {key: statistics.median(s[key] for s in samples["hand-written loop"]) for key in ("validation", "save")}
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
