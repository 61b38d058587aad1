"""Seeds that depend only on the run's seed and where training is (epoch, position or step), never on how
much of a random stream earlier work used in this process. A resumed run therefore draws exactly what an
uninterrupted one would have."""

import os
import random

import numpy as np
import torch


def run_seed() -> int:
    """The run's seed (``seed_everything``, which Lightning keeps in PL_GLOBAL_SEED for worker processes)."""
    return int(os.environ.get("PL_GLOBAL_SEED", torch.initial_seed()))


def derive_seed(seed: int, *keys: int) -> int:
    for key in keys:
        seed = (seed * 1_000_003 + key) % 2**63
    return seed


def reseed_global_rngs(seed: int) -> None:
    """Python, NumPy and torch (CPU and CUDA) global generators, as dropout and drop-path draw from them."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
