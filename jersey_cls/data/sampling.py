"""EpochSampler and BagSampler: train orders that depend only on the run's seed and the epoch, and resume
mid-epoch."""

import torch
from torch.utils.data import Sampler

from jersey_cls.seeds import derive_seed


class Resumable(Sampler[tuple[int, int, int]]):
    """What both orders share: the seed, the epoch Lightning sets, this DDP rank's share, and where a resumed
    epoch starts."""

    def __init__(self, seed: int, epoch: int, skip: int, rank: int, world_size: int) -> None:
        self.seed = seed
        self.epoch = epoch
        self.resume_epoch, self.skip = epoch, skip
        self.rank, self.world_size = rank, world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resumed(self, items: list[tuple[int, int, int]]):
        """``items`` of this epoch, without the first ``skip`` when it is the epoch a resume started in."""
        return iter(items[self.skip if self.epoch == self.resume_epoch else 0 :])


class EpochSampler(Resumable):
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
        super().__init__(seed, epoch, skip, rank, world_size)
        self.size = size
        self.weights = torch.tensor(weights, dtype=torch.double) if weights is not None else None

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
        return self.resumed([(self.epoch, position, order[position]) for position in positions])


class BagSampler(Resumable):
    """Yields (epoch, position, sample index) in bags of ``bag_size`` frames of one player track, for learning
    from labels given per track. Every epoch each track gives ``frames`` of its crops, the next ones of shuffled
    rounds through all of them, so every frame is training data over the epochs and every track weighs the same
    however long it is; the bags are shuffled. Bag ``b`` of the epoch fills positions
    ``b * bag_size`` to ``(b + 1) * bag_size - 1``.

    Under DDP each rank takes every ``world_size``-th bag, all ranks the same count. ``skip`` leaves out this
    rank's first crops of epoch ``epoch``, as EpochSampler's does.
    """

    def __init__(
        self,
        tracks: list[list[int]],
        frames: int,
        bag_size: int,
        seed: int,
        epoch: int = 0,
        skip: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__(seed, epoch, skip, rank, world_size)
        self.tracks = tracks
        self.bags_per_track = max(1, frames // bag_size)
        self.bag_size = bag_size

    def __len__(self) -> int:
        return len(self.tracks) * self.bags_per_track // self.world_size * self.bag_size

    def _frames(self, track: int, members: list[int]) -> list[int]:
        """This epoch's frames of a track: the next stretch of an endless sequence of its frames in shuffled
        rounds, each round every frame once, so that over the epochs every frame is drawn as often as the next."""
        wanted = self.bags_per_track * self.bag_size
        start = self.epoch * wanted
        drawn = []
        for round_ in range(start // len(members), (start + wanted - 1) // len(members) + 1):
            generator = torch.Generator().manual_seed(derive_seed(self.seed, track, round_))
            drawn += [members[i] for i in torch.randperm(len(members), generator=generator).tolist()]
        offset = start - start // len(members) * len(members)
        return drawn[offset : offset + wanted]

    def __iter__(self):
        bags = []
        for track, members in enumerate(self.tracks):
            drawn = self._frames(track, members)
            bags += [drawn[b * self.bag_size : (b + 1) * self.bag_size] for b in range(self.bags_per_track)]
        generator = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
        shuffled = [bags[i] for i in torch.randperm(len(bags), generator=generator).tolist()]
        used = len(self) // self.bag_size * self.world_size
        crops = [(self.epoch, k * self.bag_size + j, index)
                 for k in range(self.rank, used, self.world_size) for j, index in enumerate(shuffled[k])]  # fmt: skip
        return self.resumed(crops)
