"""Deploying on a CPU: the int8 ONNX model against fp32, and `jersey-cls predict` against a plain onnxruntime loop.

    python bench/speed_int8.py          # about 40 minutes on a 2-core CPU

Part 1, int8 against fp32, for the digits head and the classes head at 64 px (base.yaml) and 224 px (t4.yaml's
size, --model.pretrained false). Data: bench/real_digits.py's `confirm` numbers (handwritten digit scans composed
into 64 px crops; never drawn by the synthetic engine). Each model is one `jersey-cls fit` (64 px: --epochs; 224
px: 2 epochs from the 64 px model's weights, --model.init_from, as a fit at 224 from nothing takes hours on a CPU),
then `jersey-cls export --ckpt_path best --onnx.int8 true`, which checks itself on the val crops. Side by side:
each file's size, test top-1 of each through `jersey-cls predict --onnx_file`, and crops a second of each file on
a fixed batch of 32 test crops (decoded once: the model alone), one thread and every core, interleaved medians.

Part 2, `jersey-cls predict --onnx_file` against a plain loop (PIL decode and resize, batches of 32,
onnxruntime on every core) over the same SoccerNet-layout split and the same file, decode and resize in both,
for model.onnx and model.int8.onnx of the 64 px digits model. predict's crops a second exclude its start-up
(imports, reading the checkpoint): it reads the split twice, once every frame, once one frame a tracklet, and
the difference of the two wall times is the time the extra frames took.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from common import best_checkpoint, fit, interleaved, jersey, read_csv, run_flags, top1
from PIL import Image
from real_digits import held_out_numbers, write_numbers
from tracklet_sets import SPLITS
from tracklet_sets import build as build_tracklets

from jersey_cls.deploy.onnx import crops_per_second

FILES = ("model.onnx", "model.int8.onnx")


def numbers_set(out: Path) -> Path:
    root = out / "data" / "confirm"
    if not (root / "test" / "annotations.jsonl").exists():
        write_numbers(root, held_out_numbers(0.2, 1), {"train": 30, "valid": 5, "test": 10}, size=64, seed=0, half=1)
    return root


def exported(run: Path, data: Path) -> Path:
    """`jersey-cls export --ckpt_path best --onnx.int8 true` of ``run``: its export folder."""
    export_json = next((run / "exports").glob("*/export.json"), None)
    if export_json is None:
        jersey("export", *run_flags(run), "--ckpt_path", "best", "--data.data_root", str(data), "--onnx.int8",
               "true", log=run / "bench.log")  # fmt: skip
        export_json = next((run / "exports").glob("*/export.json"))
    return export_json.parent


def read(path: str, shape: list[int]) -> np.ndarray:
    height, width = shape
    return np.asarray(Image.open(path).convert("RGB").resize((width, height), Image.BILINEAR)).transpose(2, 0, 1)


def model_part(out: Path, data: Path, epochs: int, repeats: int) -> dict:
    results = {}
    for head in ("digits", "classes"):
        small = out / f"{head}-64"
        fit(data, small, epochs, "--model.head", head, "--onnx.enabled", "false", reuse=True)
        large = out / f"{head}-224"
        weights, _ = best_checkpoint(small)
        fit(data, large, 2, "--model.head", head, "--data.image_size", "224", "--model.init_from", str(weights),
            "--onnx.enabled", "false", reuse=True)  # fmt: skip
        for size, run in (("64", small), ("224", large)):
            folder = exported(run, data)
            record = json.loads((folder / "export.json").read_text())
            shape = json.loads((folder / "labels.json").read_text())["input_shape"]
            test = {}
            for name in FILES:
                path = run / f"test-{name}.csv"
                if not path.exists():
                    jersey("predict", *run_flags(run), "--ckpt_path", "best", "--data.predict_path",
                           str(data / "test"), "--predictions.path", str(path), "--onnx_file", str(folder / name),
                           log=run / "bench.log")  # fmt: skip
                test[name] = read_csv(path)
            batch = np.stack([read(row["path"], shape) for row in test[FILES[0]][:32]])
            cores = os.cpu_count() or 1
            contenders = {(name, threads): lambda path=folder / name, t=threads, b=batch: crops_per_second(path, b, t)
                          for name in FILES for threads in (1, cores)}  # fmt: skip
            rates = interleaved(contenders, repeats, alternate=True)
            agree = np.mean([a["pred_label"] == b["pred_label"] for a, b in zip(*test.values(), strict=True)])
            results[f"{head} {size} px"] = {
                "MB": [(folder / name).stat().st_size / 1e6 for name in FILES],
                "val top-1 (export's check)": [record["fp32_acc"], record["int8_acc"]],
                "test top-1 (predict --onnx_file)": [top1(test[name]) for name in FILES],
                "test: same answer as fp32": float(agree),
                "crops/s, 1 thread": [rates[(name, 1)] for name in FILES],
                f"crops/s, {cores} threads": [rates[(name, cores)] for name in FILES],
            }
    return results


def plain_loop(model: Path, files: list[str], shape: list[int]) -> float:
    """Crops a second of the plainest reader: PIL decode and resize, batches of 32, onnxruntime on every core."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    started = time.perf_counter()
    for start in range(0, len(files), 32):
        batch = np.stack([read(path, shape) for path in files[start : start + 32]])
        session.run(["probabilities"], {"images": batch})
    return len(files) / (time.perf_counter() - started)


def predict_rate(run: Path, model: Path, split: Path, frames: int, tracks: int) -> float:
    """Crops a second of `jersey-cls predict --onnx_file` over ``split``, start-up excluded (see the docstring)."""
    seconds = {}
    for per_track in ("null", "1"):
        seconds[per_track] = jersey("predict", *run_flags(run), "--ckpt_path", "best", "--data.predict_path",
                                    str(split), "--onnx_file", str(model), "--data.frames_per_track", per_track,
                                    "--predictions.path", str(run / "predict-rate.csv"),
                                    log=run / "bench.log")  # fmt: skip
        for written in run.glob("predict-rate*"):
            written.unlink()
    return (frames - tracks) / (seconds["null"] - seconds["1"])


def predict_part(out: Path, tracklets: int, repeats: int) -> dict:
    counts = dict(zip(SPLITS, (1, tracklets, 1), strict=True))
    tracklets = build_tracklets(out / f"tracklets-{counts['test']}", "crops", "scans", counts, 3)
    split = tracklets / "data" / "test"
    files = sorted(str(path) for path in (split / "images").rglob("*.jpg"))
    tracks = len(list((split / "images").iterdir()))
    run = out / "digits-64"
    folder = next((run / "exports").glob("*/export.json")).parent
    shape = json.loads((folder / "labels.json").read_text())["input_shape"]
    results = {}
    for name in FILES:
        samples = {"plain loop": [], "predict": []}
        for _ in range(repeats):
            samples["plain loop"].append(plain_loop(folder / name, files, shape))
            samples["predict"].append(predict_rate(run, folder / name, split, len(files), tracks))
        results[name] = {kind: statistics.median(values) for kind, values in samples.items()}
    return {"frames": len(files), "tracklets": tracks, "rates": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10, help="the 64 px fits'")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tracklets", type=int, default=150, help="in the split predict reads (about 60 frames each)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-int8"))
    args = parser.parse_args()
    out = args.out.resolve()
    data = numbers_set(out)
    models = model_part(out, data, args.epochs, args.repeats)
    reading = predict_part(out, args.tracklets, args.repeats)
    (out / "results.json").write_text(json.dumps({"models": models, "predict": reading}, indent=2))

    print(f"\nint8 against fp32 ({os.cpu_count()} cores; {sys.platform}); each cell fp32 / int8 (int8 / fp32)")
    rows = list(next(iter(models.values())))
    print(f"{'':<34}" + "".join(f"{name:>30}" for name in models))
    for row in rows:
        cells = []
        for result in models.values():
            value = result[row]
            if isinstance(value, list):
                ratio = f" ({value[1] / value[0]:.2f}x)" if "top-1" not in row else ""
                fmt = ".3f" if "top-1" in row else ".1f" if "MB" in row else ".0f"
                cells.append(f"{value[0]:{fmt}} / {value[1]:{fmt}}{ratio}")
            else:
                cells.append(f"{value:.3f}")
        print(f"{row:<34}" + "".join(f"{cell:>30}" for cell in cells))
    print(f"\npredict --onnx_file against a plain onnxruntime loop, {reading['frames']} frames of "
          f"{reading['tracklets']} tracklets, decode and resize included (crops a second, median of "
          f"{args.repeats})")  # fmt: skip
    for name, rates in reading["rates"].items():
        print(
            f"{name:<18} plain loop {rates['plain loop']:7.0f}   predict {rates['predict']:7.0f}   "
            f"predict / plain {rates['predict'] / rates['plain loop']:.2f}x"
        )


if __name__ == "__main__":
    main()
