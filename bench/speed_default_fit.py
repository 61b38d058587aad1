"""The README's quick start, this checkout against an earlier commit: the whole default fit, side by side.

    python bench/speed_default_fit.py --before 6b74b40     # about 13 minutes a repeat on a 2-core CPU
    python bench/speed_default_fit.py --before ff2dc74 --flags "--data.augment.strength 0.5"   # flags for both sides

Each side runs `jersey-cls fit --config configs/base.yaml` (the embedded set, 15 epochs) with its own code and
its own base.yaml, in a fresh process; the two are interleaved, each going first in every other pair. The
earlier commit is checked out into a temporary git worktree and imported from there. A short fit of each
renders its embedded set into the cache first, so neither pays for that. Prints each side's wall time, best
val/acc_top1, and the ratio.
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, best_checkpoint, interleaved_samples, run


def fit(code: Path, folder: Path, *flags: str) -> tuple[float, float]:
    """Wall seconds and best val/acc_top1 of a fit into ``folder`` with the code and base.yaml of ``code``."""
    command = [sys.executable, "-m", "jersey_cls", "fit", "--config", str(code / "configs" / "base.yaml"),
               "--trainer.default_root_dir", str(folder), "--trainer.enable_progress_bar", "false", *flags]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(code), "PYTHONSAFEPATH": "1"}  # not the working folder's code
    imported = subprocess.run(
        [sys.executable, "-c", "import jersey_cls, importlib.resources as r; print(jersey_cls.__file__); "
         "print(r.files('jersey_cls.configs') / 'base.yaml')"],
        env=environment, capture_output=True, text=True,
    )  # fmt: skip
    paths = imported.stdout.splitlines()
    if imported.returncode or not all(Path(path).resolve().is_relative_to(code.resolve()) for path in paths):
        sys.exit(f"bench: {code} is not the jersey_cls (and its packaged base.yaml) that gets imported: "
                 f"{paths}{imported.stderr[-1000:]}")  # fmt: skip
    seconds = run(command, env=environment)
    return seconds, best_checkpoint(folder)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the earlier commit (any git revision)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--flags", default="", help="jersey-cls fit flags for both sides, to compare like with like")
    args = parser.parse_args()
    flags = shlex.split(args.flags)
    with tempfile.TemporaryDirectory() as folder:
        before = Path(folder) / "before"
        try:
            added = subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(before), args.before],
                                   capture_output=True, text=True)  # fmt: skip
            if added.returncode:
                sys.exit(f"bench: cannot check out {args.before}: {added.stderr.strip()}")
            packaged = before / "jersey_cls" / "configs"  # the wheel ships configs/ as jersey_cls.configs
            if not packaged.exists():
                packaged.symlink_to(before / "configs", target_is_directory=True)
            old = f"before ({args.before})"
            sides = {old: before, "now": REPO}
            for code in sides.values():  # renders the embedded set into the cache
                fit(code, Path(folder) / f"warm-up-{code.name}", "--trainer.max_epochs", "1",
                    "--trainer.limit_train_batches", "2")  # fmt: skip

            def side(name: str):
                def sample() -> tuple[float, float]:
                    result = fit(sides[name], Path(tempfile.mkdtemp(dir=folder)), *flags)
                    print(name, result, flush=True)
                    return result

                return sample

            samples = interleaved_samples({name: side(name) for name in sides}, args.repeats, alternate=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before)], capture_output=True)
            subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], capture_output=True)
    wall = {name: statistics.median(s for s, _ in runs) for name, runs in samples.items()}
    accuracy = {name: [a for _, a in runs] for name, runs in samples.items()}
    print(json.dumps({"wall seconds": wall, "best val/acc_top1": accuracy}, indent=2))
    then, now = wall[old], wall["now"]
    print(f"\nthe default fit, medians of {args.repeats}: before {then:.0f} s, now {now:.0f} s: "
          f"{then / now:.3f}x as fast ({then - now:+.0f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
