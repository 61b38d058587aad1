"""jersey-cls speed and memory, as ratios measured side by side in one run: python bench/speed_run.py

Each comparison runs its contenders interleaved (A B A B ...), each in a fresh process, and reports medians,
so a noisy machine slows both sides alike. Figures are for this machine; the ratios are what travel. The
hand-written contender is bench/baseline.py at base.yaml's recipe; both sides train on base.yaml's augmentation.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from common import BASE, BENCH, interleaved, run, run_json

# bench/ on the path lets `jersey-cls fit` import probe.BenchProbe.
ENV = {**os.environ, "PYTHONPATH": str(BENCH), "WANDB_MODE": "disabled", "PYTHONWARNINGS": "ignore"}


def jersey_fit(args, *flags: str, steps: int | None = None) -> dict:
    """`jersey-cls fit` on the embedded set with BenchProbe appended; timing covers training steps only."""
    with tempfile.TemporaryDirectory() as run_dir:
        limit = ["--trainer.max_steps", str(steps or args.steps), "--trainer.num_sanity_val_steps", "0"]
        limit += ["--data.batch_size", str(args.batch_size)]
        command = ["jersey-cls", "fit", "--config", BASE, "--trainer.default_root_dir", run_dir,
                   "--trainer.callbacks+=probe.BenchProbe",
                   *(limit if steps != 0 else []), *flags]  # fmt: skip
        return run_json(command, Path(run_dir) / "bench.json", ENV)


def jersey_rate(args, *flags: str) -> float:
    """Images a second of jersey_fit's training steps."""
    result = jersey_fit(args, *flags)
    return result["images"] / result["seconds"]


def baseline_rate(args, mode: str, *flags: str) -> float:
    """Images a second of a mode of the hand-written loop, bench/baseline.py, in its own process."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, str(BENCH / "baseline.py"), mode, "--steps", str(args.steps)]
        command += ["--batch-size", str(args.batch_size), *flags]
        result = run_json(command, Path(folder) / "bench.json", ENV)
    return result["images"] / result["seconds"]


def wall_seconds(command: list[str]):
    return lambda: run(command, env=ENV)


def report(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n{title}")
    for name, value in rows:
        print(f"  {name:<52} {value}")


def bench_fit(args) -> None:
    no_ema = ("--ema.enabled", "false")
    rates = interleaved(
        {
            "plain": lambda: baseline_rate(args, "train"),
            "jersey": lambda: jersey_rate(args, *no_ema),
            "jersey_ema": lambda: jersey_rate(args),
            "jersey_nhwc": lambda: jersey_rate(args, *no_ema, "--model.channels_last", "true"),
            "jersey_compiled": lambda: jersey_rate(args, *no_ema, "--model.compile", "true"),
        },
        args.repeats,
    )
    report(
        f"fit throughput, images/s (resnet18, 64 px, batch {args.batch_size}, 2 workers; training steps only)",
        [
            ("plain PyTorch loop", f"{rates['plain']:.1f}"),
            ("jersey-cls fit, EMA off", f"{rates['jersey']:.1f}"),
            ("jersey-cls fit, default (EMA on)", f"{rates['jersey_ema']:.1f}"),
            ("ratio jersey-cls / plain (target >= 0.95)", f"{rates['jersey'] / rates['plain']:.3f}"),
            ("ratio jersey-cls with EMA / plain", f"{rates['jersey_ema'] / rates['plain']:.3f}"),
            ("jersey-cls fit, EMA off, --model.channels_last true", f"{rates['jersey_nhwc']:.1f}"),
            ("ratio channels_last / default layout", f"{rates['jersey_nhwc'] / rates['jersey']:.3f}"),
            ("jersey-cls fit, EMA off, --model.compile true", f"{rates['jersey_compiled']:.1f}"),
            ("ratio compiled / eager (compile time excluded)", f"{rates['jersey_compiled'] / rates['jersey']:.3f}"),
        ],
    )


def bench_data(args) -> None:
    contenders = {
        "loader": lambda: baseline_rate(args, "loader"),
        "loader_decoded": lambda: baseline_rate(args, "loader", "--decode-once"),
        "model": lambda: baseline_rate(args, "model"),
    }
    rates = interleaved(contenders, args.repeats)
    decode, augment = per_crop_milliseconds(args)
    report(
        "data pipeline vs model, images/s (the train loader alone; training steps on a batch in memory)",
        [
            ("JerseyDataModule train loader, 2 workers", f"{rates['loader']:.1f}"),
            ("model training steps", f"{rates['model']:.1f}"),
            ("ratio loader / model (target >= 2)", f"{rates['loader'] / rates['model']:.2f}"),
            ("the loader with --data.decode_once true", f"{rates['loader_decoded']:.1f}"),
            ("ratio decode_once / default", f"{rates['loader_decoded'] / rates['loader']:.3f}"),
            ("per crop, one process: decode (ms)", f"{decode:.2f}"),
            ("per crop, one process: train augmentation (ms)", f"{augment:.2f}"),
        ],
    )


def per_crop_milliseconds(args, crops: int = 300) -> tuple[float, float]:
    """What a decode cache could save: decoding a crop against augmenting it, single-threaded."""
    import torch
    from baseline import base_augmentation

    from jersey_cls.data.datamodule import JerseyDataModule
    from jersey_cls.data.images import load_rgb

    torch.set_num_threads(1)  # as in a DataLoader worker
    data = JerseyDataModule(image_size=args.image_size, num_workers=0, augment=base_augmentation())
    data.prepare_data()
    dataset = data.train_dataloader().dataset
    paths = [path for path, _ in dataset.samples[:crops]]
    started = time.perf_counter()
    images = [load_rgb(path) for path in paths]
    decoded = time.perf_counter()
    for image in images:
        dataset.transform(image)
    augmented = time.perf_counter()
    return 1000 * (decoded - started) / len(paths), 1000 * (augmented - decoded) / len(paths)


def bench_startup(args) -> None:
    seconds = interleaved(
        {
            "import": wall_seconds([sys.executable, "-c", "import lightning.pytorch"]),
            "help": wall_seconds(["jersey-cls", "--help"]),
            "print_config": wall_seconds(["jersey-cls", "fit", "--config", BASE, "--print_config"]),
        },
        args.repeats + 2,
    )
    report(
        "start-up, seconds",
        [
            ('python -c "import lightning.pytorch"', f"{seconds['import']:.2f}"),
            ("jersey-cls --help", f"{seconds['help']:.2f}"),
            ("jersey-cls fit --config base.yaml --print_config", f"{seconds['print_config']:.2f}"),
            ("ratio --help / import lightning (target <= 1.5)", f"{seconds['help'] / seconds['import']:.2f}"),
            ("ratio --print_config / import lightning", f"{seconds['print_config'] / seconds['import']:.2f}"),
        ],
    )


def bench_inference(args) -> None:
    import onnxruntime
    import torch

    from jersey_cls.deploy.onnx import export_onnx
    from jersey_cls.model import JerseyClassifier
    from jersey_cls.synth.sets import DEFAULT_NUMBERS

    torch.set_num_threads(os.cpu_count())
    model = JerseyClassifier(DEFAULT_NUMBERS, backbone="resnet18", image_size=args.image_size).eval()
    crops = torch.randint(0, 256, (8, 3, args.image_size, args.image_size), dtype=torch.uint8)
    rows = []
    with tempfile.TemporaryDirectory() as out:
        export = export_onnx(model, crops, Path(out))
        session = onnxruntime.InferenceSession(export["onnx_path"], providers=["CPUExecutionProvider"])
        for batch_size in (1, 64):
            images = torch.randint(0, 256, (batch_size, 3, args.image_size, args.image_size), dtype=torch.uint8)
            uint8 = images.numpy()  # what the exported graph takes: it normalises inside
            calls = max(3, 256 // batch_size)

            def eager(images=images, calls=calls):
                with torch.inference_mode():
                    started = time.perf_counter()
                    for _ in range(calls):
                        model(images)
                    return calls * len(images) / (time.perf_counter() - started)

            def ort(uint8=uint8, calls=calls):
                started = time.perf_counter()
                for _ in range(calls):
                    session.run(None, {"images": uint8})
                return calls * len(uint8) / (time.perf_counter() - started)

            eager(), ort()  # warm-up
            rates = interleaved({"eager": eager, "ort": ort}, args.repeats + 2)
            rows += [
                (f"batch {batch_size}: PyTorch eager", f"{rates['eager']:.1f}"),
                (f"batch {batch_size}: ONNX Runtime", f"{rates['ort']:.1f}"),
                (f"batch {batch_size}: ratio ONNX Runtime / eager", f"{rates['ort'] / rates['eager']:.2f}"),
            ]
    report(f"inference, images/s (resnet18, {args.image_size} px, CPU)", rows)


def bench_memory(args) -> None:
    result = jersey_fit(args, "--trainer.max_epochs", str(args.memory_epochs), steps=0)
    epochs = result["epoch_rss_mb"]
    growth = epochs[-1]["main"] - epochs[1]["main"]
    report(
        f"memory, MB (jersey-cls fit at the defaults of base.yaml, {args.memory_epochs} epochs)",
        [
            ("peak RSS, main process", f"{result['peak_rss_mb']:.0f}"),
            ("RSS per epoch end, main", " ".join(f"{e['main']:.0f}" for e in epochs)),
            ("PSS per epoch end, data workers (sum)", " ".join(f"{e['workers']:.0f}" for e in epochs)),
            ("growth, main, epoch 2 to last", f"{growth:+.0f}"),
        ],
    )


SECTIONS = {"startup": bench_startup, "fit": bench_fit, "data": bench_data, "inference": bench_inference,
            "memory": bench_memory}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", help=f"some of {', '.join(SECTIONS)}; default: all")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per contender")
    parser.add_argument("--steps", type=int, default=25, help="training steps per fit measurement")
    parser.add_argument("--image-size", type=int, default=64, help="the inference and per-crop measurements")
    parser.add_argument("--batch-size", type=int, default=64, help="both sides of the fit and data comparisons")
    parser.add_argument("--memory-epochs", type=int, default=5)
    args = parser.parse_args()
    if unknown := set(args.sections) - set(SECTIONS):
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    print(f"jersey-cls bench: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {args.repeats} repeats")
    for name in args.sections or SECTIONS:
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
