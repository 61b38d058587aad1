"""EpochSampler: a train order that depends only on the run's seed and the epoch, and resumes mid-epoch."""

import torch
from torch.utils.data import Sampler

from jersey_cls.seeds import derive_seed


class EpochSampler(Sampler[tuple[int, int, int]]):
    """Yields (epoch, position, sample index): a permutation, or a class-balanced draw with replacement when
    ``weights`` are given. Lightning calls ``set_epoch`` at the start of every epoch.

    Under DDP each rank takes every ``world_size``-th position of the same order, all ranks the same count.
    ``skip`` leaves out this rank's first samples of epoch ``epoch``: a run resumed mid-epoch continues the same
    order where it stopped. The length stays the whole epoch's, as Lightning counts the skipped batches as done.
    """

    def __init__(
        self,
        size: int,
        seed: int,
        weights: list[float] | None = None,
        epoch: int = 0,
        skip: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.size = size
        self.seed = seed
        self.weights = torch.tensor(weights, dtype=torch.double) if weights is not None else None
        self.epoch = epoch
        self.resume_epoch, self.skip = epoch, skip
        self.rank, self.world_size = rank, world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size // self.world_size

    def __iter__(self):
        generator = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
        if self.weights is None:
            order = torch.randperm(self.size, generator=generator)
        else:
            order = torch.multinomial(self.weights, self.size, replacement=True, generator=generator)
        order = order.tolist()
        positions = range(self.rank, len(self) * self.world_size, self.world_size)
        start = self.skip if self.epoch == self.resume_epoch else 0
        return iter([(self.epoch, position, order[position]) for position in positions[start:]])
