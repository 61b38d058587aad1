"""What the bench scripts share: paths, running a command, interleaved medians, fit-then-predict, top-1."""

import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from jersey_cls.evaluation.spreadsheet import read_rows
from jersey_cls.numbers import ILLEGIBLE

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BASE = str(REPO / "configs" / "base.yaml")


def run(command: list[str], log: Path | None = None, env: dict | None = None, cwd: Path | None = None) -> float:
    """Run ``command`` to its end; its wall seconds. Its output is appended to ``log``, or kept back when there
    is none; a failure ends the bench with the output's tail."""
    started = time.perf_counter()
    if log is None:
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd)
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as out:
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    seconds = time.perf_counter() - started
    if done.returncode:
        output, where = (done.stderr, "") if log is None else (log.read_text(), f" (its log: {log})")
        sys.exit(f"bench: {shlex.join(command)} failed{where}:\n{output[-3000:]}")
    return seconds


def run_json(command: list[str], out: Path, env: dict | None = None) -> dict:
    """Run ``command`` in out's folder with $JERSEY_BENCH_OUT naming ``out``; the JSON it writes there."""
    run(command, env={**(env or os.environ), "JERSEY_BENCH_OUT": str(out)}, cwd=out.parent)
    return json.loads(out.read_text())


def jersey(*args: str, log: Path | None = None, env: dict | None = None) -> float:
    """`jersey-cls ARGS`; its wall seconds."""
    return run(["jersey-cls", *args], log=log, env=env)


def interleaved_samples(contenders: dict[str, Callable], repeats: int, alternate: bool = False) -> dict[str, list]:
    """Each contender's results over ``repeats`` rounds, the contenders in turn within a round (A B A B ...), so a
    noisy machine slows them alike. ``alternate``: every other round runs in reverse order, so none always
    goes first."""
    samples = {name: [] for name in contenders}
    for repeat in range(repeats):
        order = list(contenders)[:: -1 if alternate and repeat % 2 else 1]
        for name in order:
            samples[name].append(contenders[name]())
    return samples


def interleaved(contenders: dict[str, Callable[[], float]], repeats: int, alternate: bool = False) -> dict[str, float]:
    """The median of each contender's results, run as interleaved_samples runs them."""
    samples = interleaved_samples(contenders, repeats, alternate)
    return {name: statistics.median(values) for name, values in samples.items()}


def fit(data: Path, run_dir: Path, epochs: int, *flags: str, reuse: bool = False) -> float:
    """`jersey-cls fit` at base.yaml's recipe on ``data`` into ``run_dir``, output in <run_dir>/bench.log; its
    seconds. ``reuse``: a finished fit in run_dir stands (with the seconds it took), an interrupted one resumes."""
    finished = run_dir / "fit_seconds.txt"
    if reuse and finished.exists():
        return float(finished.read_text())
    resume = ["--ckpt_path", "last"] if reuse else []
    seconds = jersey("fit", *run_flags(run_dir), "--data.data_root", str(data), "--trainer.max_epochs", str(epochs),
                     *resume, *flags, log=run_dir / "bench.log")  # fmt: skip
    finished.write_text(f"{seconds:.1f}\n")
    return seconds


def fit_predict(
    data: Path, run_dir: Path, epochs: int, *fit_flags: str, predict_flags: Iterable[str] = (), reuse: bool = False
) -> tuple[list[dict], float, float]:
    """fit(), then `jersey-cls predict` of its best checkpoint on <data>/test: (the rows of predict's CSV, fit
    seconds, predict seconds)."""
    fit_seconds = fit(data, run_dir, epochs, *fit_flags, reuse=reuse)
    path = run_dir / "test.csv"
    predict_seconds = jersey("predict", *run_flags(run_dir), "--ckpt_path", "best", "--data.predict_path",
                             str(data / "test"), "--predictions.path", str(path), *predict_flags,
                             log=run_dir / "bench.log")  # fmt: skip
    return read_csv(path), fit_seconds, predict_seconds


def run_flags(run_dir: Path) -> list[str]:
    return ["--config", BASE, "--trainer.default_root_dir", str(run_dir), "--trainer.enable_progress_bar", "false"]


def best_checkpoint(run_dir: Path) -> tuple[Path, float]:
    """The best-*.ckpt in <run_dir>/checkpoints with the highest val/acc_top1, and that accuracy, from its name."""
    scored = [
        (float(match.group(1)), path)
        for path in (run_dir / "checkpoints").glob("best-*.ckpt")
        if (match := re.search(r"acc=([0-9.]+)\.ckpt$", path.name))
    ]
    if not scored:
        sys.exit(f"bench: {run_dir}/checkpoints holds no best checkpoint")
    accuracy, path = max(scored)
    return path, accuracy


def read_csv(path: Path) -> list[dict]:
    """The rows of a CSV file (predict's: path, label, pred_label, pred_prob, ...), as dicts."""
    with open(path, newline="", encoding="utf-8") as rows:
        return read_rows(rows)


def read_split(folder: Path) -> list[dict]:
    """The rows of <folder>/annotations.jsonl (image, prefix, suffix: the label, and any other keys), each with
    ``path``: <folder>/<image>."""
    lines = (folder / "annotations.jsonl").read_text().splitlines()
    return [{**row, "path": str(folder / row["image"])} for row in map(json.loads, lines)]


def top1(rows: list[dict], labels: set[str] | None = None) -> float:
    """The share of ``rows`` (predict's CSV) whose pred_label is their label, among those whose label is in
    ``labels`` (None: all)."""
    picked = [row for row in rows if labels is None or row["label"] in labels]
    return sum(row["pred_label"] == row["label"] for row in picked) / max(1, len(picked))


def majority(labels: Iterable[str], skip: tuple[str, ...] = (ILLEGIBLE, "?")) -> str | None:
    """The most common of ``labels`` once those in ``skip`` (by default illegible and predict's abstention, ?)
    are left out; None when none is left."""
    kept = [label for label in labels if label not in skip]
    return Counter(kept).most_common(1)[0][0] if kept else None
