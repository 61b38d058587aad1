"""Learning SoccerNet-style tracklet labels: test and challenge track accuracy, side by side, of

    default    `jersey-cls fit --data.data_root DATA --data.illegible true`, nothing else (base.yaml's recipe):
               every frame takes its tracklet's number until halfway, then the frames the model reads as
               illegible are learned as illegible (--relabel.at 0.5); fresh frames each epoch, the calibrated
               track rule, the run chosen by val/track_acc, the thumbnails' own shape
    frames     the same without the relabelling: --relabel.at null
    naive      the same command with the release before all that (--before, 27eb6c5), run from a git worktree:
               every frame takes its tracklet's number, the same 16 frames each epoch, a tracklet -1 when no
               frame reads as legible, the run chosen by crop accuracy
    two-fit    the frames model reads every train frame; a second fit learns from those readings, the frames it
               reads as illegible labelled illegible (the weak-label route of the field's leading pipelines:
               three commands)
    bags       multiple-instance learning: a frame shows its tracklet's number or nothing, some frame shows it,
               in bags of 8 frames of one tracklet: --data.track_labels bags --relabel.at null
    ocr        RapidOCR (PP-OCRv4, Apache-2.0, weights inside its wheel), no training: the readings with
               confidence >= 0.5 that are 1-2 digits vote with their confidence; a tracklet with none is -1.
               Number crops: recognition only; player thumbnails: detection + recognition, upscaled to >= 128 px.
               Needs `pip install rapidocr-onnxruntime`; left out with a note when it is missing.

    python bench/tracklets.py --kind crops --glyphs scans --seed 2     # about 80 minutes on a 2-core CPU
    python bench/tracklets.py --kind players --glyphs scans --seed 2   # about 100 minutes

The sets are bench/tracklet_sets.py's. Every trained contender is read by its own `jersey-cls predict` (its
track rule and submission) with 16 frames of each test and challenge tracklet, as the OCR is; the challenge's
ground truth is used only to score. Scores are SoccerNet's (exact match of the submission, -1 included), split
into numbers seen in train, numbers never in train, and -1 tracklets. A rerun with the same --out reuses
finished fits and readings.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack, contextmanager
from multiprocessing import Pool
from pathlib import Path

from common import BASE, REPO, read_csv
from common import run as run_command
from tracklet_sets import SPLITS, build

from jersey_cls.data.layouts.soccernet import track_folders
from jersey_cls.data.tracks import thin_inputs
from jersey_cls.numbers import ILLEGIBLE

FRAMES = 16
BEFORE = "27eb6c5"
NO_RELABEL = ("--relabel.at", "null")  # the release whose SoccerNet fit was the naive reading


@contextmanager
def release(commit: str):
    """``jersey-cls`` arguments and environment that run the package as it was at ``commit``."""
    with tempfile.TemporaryDirectory() as folder:
        code = Path(folder) / "code"
        added = subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(code), commit],
                               capture_output=True, text=True)  # fmt: skip
        if added.returncode:
            sys.exit(f"bench: cannot check out {commit}: {added.stderr.strip()}")
        try:
            packaged = code / "jersey_cls" / "configs"  # the wheel ships configs/ as jersey_cls.configs
            if not packaged.exists():
                packaged.symlink_to(code / "configs", target_is_directory=True)
            env = {**os.environ, "PYTHONPATH": str(code), "PYTHONSAFEPATH": "1"}
            yield [sys.executable, "-m", "jersey_cls"], str(code / "configs" / "base.yaml"), env
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(code)], capture_output=True)
            subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], capture_output=True)


def fit(out: Path, name: str, data: Path, epochs: int | None, *flags: str, code=None) -> float:
    run = out / name
    if (run / "fit_seconds.txt").exists():
        return float((run / "fit_seconds.txt").read_text())
    command, base, env = code or (["jersey-cls"], BASE, None)
    extra = ["--trainer.max_epochs", str(epochs)] if epochs else []
    seconds = run_command([*command, "fit", "--config", base, "--data.data_root", str(data), "--data.illegible",
                           "true", "--trainer.default_root_dir", str(run), "--trainer.enable_progress_bar", "false",
                           "--onnx.enabled", "false", *extra, *flags], log=run / "bench.log", env=env)  # fmt: skip
    (run / "fit_seconds.txt").write_text(f"{seconds:.1f}\n")
    return seconds


def predict(run: Path, split_dir: Path, name: str, frames: int | None = FRAMES, code=None) -> dict[str, int]:
    """The run's best checkpoint over a SoccerNet split: its submission."""
    path = run / "predictions" / f"{name}.csv"
    if not path.with_name(f"{name}_submission.json").exists():
        command, _, env = code or (["jersey-cls"], BASE, None)
        run_command([*command, "predict", "--ckpt_path", "best", "--trainer.default_root_dir", str(run),
                     "--data.predict_path", str(split_dir), "--predictions.path", str(path),
                     "--data.frames_per_track", str(frames) if frames else "null"],
                    log=run / "bench.log", env=env)  # fmt: skip
    return json.loads(path.with_name(f"{name}_submission.json").read_text())


def two_fit_data(out: Path, data: Path, first: Path) -> Path:
    """A JSONL copy of train in which the frames the first fit's model reads as illegible are illegible; val holds
    the first run's held-out tracklets with their own numbers, so both fits are judged on the same val."""
    root = out / "two-fit-data"
    if (root / "train" / "annotations.jsonl").exists():
        return root
    predict(first, data / "train", "train", frames=None)
    readings = {row["path"]: row["pred_label"] for row in read_csv(first / "predictions" / "train.csv")}
    held = set(json.loads((first / "dataset_summary.json").read_text())["val_held_out"]["tracks"])
    truth = json.loads((data / "train" / "train_gt.json").read_text())
    for split in ("train", "val"):
        (root / split).mkdir(parents=True, exist_ok=True)
        lines = []
        for track, frames in track_folders(data / "train").items():
            if (track in held) != (split == "val"):
                continue
            number = str(truth[track])
            for frame in frames:
                read_illegible = split == "train" and readings.get(str(frame)) == ILLEGIBLE
                label = "" if number == "-1" or read_illegible else number
                image = os.path.relpath(frame, root / split)
                lines.append(json.dumps({"image": image, "suffix": label, "track_id": track}))
        (root / split / "annotations.jsonl").write_text("\n".join(lines) + "\n")
    return root


def ocr_reader(kind: str):
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        return None
    engine = RapidOCR()
    import numpy as np
    from PIL import Image

    def read(path: str) -> list[tuple[str, float]]:
        image = Image.open(path).convert("RGB")
        if kind == "crops":
            result, _ = engine(np.asarray(image), use_det=False, use_cls=False, use_rec=True)
            readings = [(text, float(score)) for text, score in (result or [])]
        else:
            scale = max(1.0, 128 / image.height)
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)
            result, _ = engine(np.asarray(image))
            readings = [(text, float(score)) for _, text, score in (result or [])]
        return [(text.strip(), score) for text, score in readings]

    return read


_READ = None


def ocr_frames(job: tuple[str, list[str]]) -> list[list[tuple[str, float]]]:
    """One worker's readings of its frames (the OCR engine is made once per worker)."""
    global _READ
    kind, paths = job
    _READ = _READ or ocr_reader(kind)
    return [_READ(path) for path in paths]


def ocr_submission(kind: str, split_dir: Path) -> dict[str, int]:
    inputs = [(str(f), None, json.dumps({"track_id": t})) for t, fs in track_folders(split_dir).items() for f in fs]
    read = thin_inputs(inputs, FRAMES)  # the frames predict reads
    with Pool(2) as pool:  # the OCR runs one frame per core
        readings = sum(pool.map(ocr_frames, [(kind, [p for p, _, _ in read[i::2]]) for i in (0, 1)]), [])
    order = [row for i in (0, 1) for row in read[i::2]]
    votes: dict[str, dict[str, float]] = {track: defaultdict(float) for track in track_folders(split_dir)}
    for (_, _, fields), frame in zip(order, readings, strict=True):
        for text, score in frame:
            if score >= 0.5 and text.isdigit() and len(text) <= 2:
                votes[json.loads(fields)["track_id"]][str(int(text))] += score
    return {track: int(max(v, key=v.get)) if v else -1 for track, v in votes.items()}


def scores(submission: dict[str, int], truth: dict[str, int], unseen: set[int]) -> dict[str, float]:
    """SoccerNet's accuracy (exact match, -1 included), overall and by kind of tracklet."""
    groups = {"all": truth, "seen": {}, "unseen": {}, "-1": {}}
    for track, number in truth.items():
        groups["-1" if number == -1 else "unseen" if number in unseen else "seen"][track] = number
    return {name: sum(submission.get(t) == n for t, n in group.items()) / max(1, len(group))
            for name, group in groups.items()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=("crops", "players"), default="players")
    parser.add_argument("--glyphs", choices=("font", "scans"), default="font")
    parser.add_argument("--tracks", type=int, nargs=3, default=[300, 100, 100], metavar=("TRAIN", "TEST", "CHALLENGE"))
    parser.add_argument("--seed", type=int, default=0, help="the set's seed: another seed, other tracklets")
    parser.add_argument("--epochs", type=int, default=None, help="every fit's; default: base.yaml's")
    parser.add_argument("--contenders", nargs="+", default=["naive", "frames", "two-fit", "bags", "default", "ocr"])
    parser.add_argument("--before", default=BEFORE, help=f"naive's release (any git revision; {BEFORE})")
    parser.add_argument("--flags", nargs=argparse.REMAINDER, default=[], help="more fit flags for default")
    parser.add_argument("--out", type=Path, default=None, help="default: runs/bench-tracklets/<kind>-<glyphs>-<seed>")
    args = parser.parse_args()
    out = (args.out or Path("runs/bench-tracklets") / f"{args.kind}-{args.glyphs}-{args.seed}").resolve()
    set_root = build(out / "set", args.kind, args.glyphs, dict(zip(SPLITS, args.tracks, strict=True)), args.seed)
    data = set_root / "data"
    unseen = set(json.loads((set_root / "unseen.json").read_text()))
    truths = {"test": json.loads((data / "test" / "test_gt.json").read_text()),
              "challenge": json.loads((set_root / "challenge_gt.json").read_text())}  # fmt: skip
    results, seconds, stack = {}, {}, ExitStack()
    for name in args.contenders:
        started = time.perf_counter()
        if name == "ocr":
            if ocr_reader(args.kind) is None:
                print("bench: ocr left out: pip install rapidocr-onnxruntime", file=sys.stderr)
                continue
            submissions = {}
            for split in truths:
                cached = out / "ocr" / f"{split}_submission.json"
                if not cached.exists():
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    cached.write_text(json.dumps(ocr_submission(args.kind, data / split)))
                submissions[split] = json.loads(cached.read_text())
            seconds[name] = 0.0
        else:
            code = None
            if name == "default":
                seconds[name] = fit(out, name, data, args.epochs, *args.flags)
            elif name == "frames":
                seconds[name] = fit(out, name, data, args.epochs, *NO_RELABEL)
            elif name == "naive":
                code = stack.enter_context(release(args.before))
                seconds[name] = fit(out, name, data, args.epochs, code=code)
            elif name == "bags":
                seconds[name] = fit(out, name, data, args.epochs, "--data.track_labels", "bags", *NO_RELABEL)
            elif name == "two-fit":
                first = seconds.get("frames") or fit(out, "frames", data, args.epochs, *NO_RELABEL)
                relabelled = two_fit_data(out, data, out / "frames")
                seconds[name] = first + fit(out, name, relabelled, args.epochs, *NO_RELABEL)
            submissions = {split: predict(out / name, data / split, split, code=code) for split in truths}
        results[name] = {split: scores(submissions[split], truths[split], unseen) for split in truths}
        results[name]["read seconds"] = time.perf_counter() - started
    stack.close()
    (out / "results.json").write_text(json.dumps({"results": results, "fit seconds": seconds}, indent=2))
    print(f"\n{args.kind} tracklets, {args.glyphs} digits, seed {args.seed}: {args.tracks} (train, test, challenge)")
    print(f"{'':<28}" + "".join(f"{name:>10}" for name in results))
    for split in truths:
        for group in ("all", "seen", "unseen", "-1"):
            cells = "".join(f"{results[name][split][group]:>10.3f}" for name in results)
            print(f"{split + ' ' + group:<28}{cells}")
    print(f"{'fit seconds':<28}" + "".join(f"{seconds.get(name, 0):>10.0f}" for name in results))


if __name__ == "__main__":
    main()
