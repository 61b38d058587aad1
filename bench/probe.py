"""BenchProbe: a callback that `bench/speed_run.py` appends to `jersey-cls fit` to time training steps and watch
memory.

Only training steps after the first ``warmup_steps`` are timed (start-up, the sanity check and validation are
not), the same span the hand-written loop in `baseline.py` times. Writes JSON to $JERSEY_BENCH_OUT.
"""

import contextlib
import json
import os
import resource
import time
from pathlib import Path

import lightning.pytorch as pl


def rss_mb() -> float:
    """Resident memory of this process now, from /proc (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def workers_pss_mb() -> float:
    """Proportional set size of the data workers: pages shared with the main process (forked, copy-on-write)
    are split among the sharers, so the sum is not inflated as a sum of RSS would be."""
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    total_kb = 0
    for pid in children.read_text().split() if children.exists() else []:
        with contextlib.suppress(OSError):  # a worker may exit while we read
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            total_kb += int(next(line.split()[1] for line in rollup.splitlines() if line.startswith("Pss:")))
    return total_kb / 1024


class BenchProbe(pl.Callback):
    def __init__(self, warmup_steps: int = 5) -> None:
        """Args:
        warmup_steps: Training steps left out of the timing (allocator, worker start-up, first-step costs).
        """
        self.warmup_steps = warmup_steps
        self.images = 0
        self.started = None
        self.finished = None
        self.epoch_rss_mb = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self.started is not None:
            self.images += len(batch["target"])
            self.finished = now
        elif trainer.global_step == self.warmup_steps:  # the clock starts after the last warm-up step
            self.started = now

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.epoch_rss_mb.append({"main": rss_mb(), "workers": workers_pss_mb()})

    def on_fit_end(self, trainer, pl_module) -> None:
        result = {
            "images": self.images,
            "seconds": (self.finished or 0) - (self.started or 0),
            "epoch_rss_mb": self.epoch_rss_mb,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        Path(os.environ["JERSEY_BENCH_OUT"]).write_text(json.dumps(result))
