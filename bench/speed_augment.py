"""Where the training augmentation runs: per crop in the loader workers, or batched on the device, side by side.

    python bench/speed_augment.py                 # about 15 minutes on a 2-core CPU
    python bench/speed_augment.py crop loader     # some sections only

Sections, each comparing the two places in one run, interleaved:
    crop    CPU time per crop of what a loader worker does at 224 px with t4.yaml's full strength (one thread):
            decode and augment (workers), against decode, JPEG and noise at the crop's own size, and resize
            (device). Also what the batched rest costs a crop when the device is this CPU (batches of 64).
    loader  crops a second the train loader delivers at 224 px, full strength, with 2 and 4 workers, both ways
            (on the device path, the batched rest is the GPU's work, not the loader's).
    epoch   base.yaml's 64 px recipe on this CPU, both ways: 2-epoch fits of the embedded set, each in a fresh
            process; wall seconds and the ratio.

The crops are the embedded set's (96 px JPEGs, rendered into the cache first). GPU figures need a GPU: run
`jersey-cls fit --config configs/base.yaml --config configs/t4.yaml --data.augment_on workers|device` there.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import BASE, best_checkpoint, interleaved, run
from torch.utils.data import DataLoader

from jersey_cls.data.augment import Augment, batch_augmentation, train_transform
from jersey_cls.data.datasets import CropDataset, collate_readable
from jersey_cls.data.layouts import read_split
from jersey_cls.data.sampling import EpochSampler
from jersey_cls.synth.sets import embedded_dataset

SECTIONS = ("crop", "loader", "epoch")
FULL = Augment(strength=1.0)  # t4.yaml's


def crops() -> list[str]:
    return [path for path, _ in read_split(embedded_dataset(), "train").samples]


def transforms(size: int) -> dict:
    """What a loader worker does per crop: all of the augmentation, or only the device path's share."""
    return {"workers": train_transform(size, FULL), "device": train_transform(size, FULL, batched=True)}


def crop_section(args) -> None:
    paths = crops()[: args.crops]
    torch.set_num_threads(1)

    def cpu_ms(transform) -> float:
        dataset = CropDataset([(path, 0) for path in paths], transform, seed=0)
        started = time.process_time()
        for position in range(len(dataset)):
            dataset[(0, position, position)]
        return (time.process_time() - started) / len(dataset) * 1000

    per_crop = interleaved({name: lambda t=t: cpu_ms(t) for name, t in transforms(224).items()}, args.repeats)
    augment, images = batch_augmentation(224, FULL), torch.randint(0, 256, (64, 3, 224, 224), dtype=torch.uint8)

    def batched_ms() -> float:
        started = time.process_time()
        augment(images.float().div(255)).mul(255).round().clamp(0, 255).to(torch.uint8)
        return (time.process_time() - started) / len(images) * 1000

    on_cpu = statistics.median(batched_ms() for _ in range(args.repeats))
    print(f"\nCPU time per crop at 224 px, strength 1, one thread ({len(paths)} crops, medians of {args.repeats}):")
    print(f"  workers (decode, augment):                  {per_crop['workers']:.2f} ms")
    ratio = per_crop["workers"] / per_crop["device"]
    print(f"  device  (decode, JPEG and noise, resize):   {per_crop['device']:.2f} ms: {ratio:.1f}x less")
    print(f"  the device path's batched rest, run on this CPU: {on_cpu:.2f} ms a crop (batch of 64)")


def loader_section(args) -> None:
    samples = [(path, 0) for path in crops()]

    def crops_per_second(transform, workers: int) -> float:
        loader = DataLoader(CropDataset(samples, transform, seed=0), batch_size=64, num_workers=workers,
                            sampler=EpochSampler(len(samples), seed=0), collate_fn=collate_readable)  # fmt: skip
        batches = iter(loader)
        next(batches)  # the workers' start-up
        started, delivered = time.perf_counter(), 0
        for _, batch in zip(range(args.batches), batches, strict=False):
            delivered += len(batch["image"])
        return delivered / (time.perf_counter() - started)

    print(f"\ncrops a second the train loader delivers at 224 px, strength 1 ({args.batches} batches of 64, "
          f"medians of {args.repeats}):")  # fmt: skip
    for workers in (2, 4):
        rates = interleaved(
            {name: lambda t=t, w=workers: crops_per_second(t, w) for name, t in transforms(224).items()}, args.repeats
        )
        print(f"  {workers} workers: workers {rates['workers']:.0f}/s, device {rates['device']:.0f}/s: "
              f"{rates['device'] / rates['workers']:.1f}x")  # fmt: skip


def epoch_section(args) -> None:
    crops()  # the embedded set in the cache, before any timing
    with tempfile.TemporaryDirectory() as folder:

        def fit(place: str):
            def sample() -> float:
                run_dir = Path(tempfile.mkdtemp(dir=folder))
                seconds = run([sys.executable, "-m", "jersey_cls", "fit", "--config", BASE, "--trainer.max_epochs",
                               "2", "--trainer.default_root_dir", str(run_dir), "--trainer.enable_progress_bar",
                               "false", "--onnx.enabled", "false", "--data.augment_on", place])  # fmt: skip
                print(f"  {place}: {seconds:.0f} s, best val/acc_top1 {best_checkpoint(run_dir)[1]:.4f}", flush=True)
                return seconds

            return sample

        print(f"\nbase.yaml's 64 px recipe on this CPU, 2-epoch fits ({os.cpu_count()} cores, {args.repeats} each):")
        wall = interleaved({place: fit(place) for place in ("workers", "device")}, args.repeats, alternate=True)
    print(f"  medians: workers {wall['workers']:.0f} s, device {wall['device']:.0f} s: the device path takes "
          f"{wall['device'] / wall['workers']:.2f}x the workers' time")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", help=f"some of {', '.join(SECTIONS)}; default: all")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--crops", type=int, default=300, help="crops timed per repeat in the crop section")
    parser.add_argument("--batches", type=int, default=20, help="batches timed per repeat in the loader section")
    args = parser.parse_args()
    if unknown := set(args.sections) - set(SECTIONS):
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    sections = {"crop": crop_section, "loader": loader_section, "epoch": epoch_section}
    for name in args.sections or SECTIONS:
        sections[name](args)


if __name__ == "__main__":
    main()
