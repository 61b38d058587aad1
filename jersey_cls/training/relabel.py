"""Relabel: learning which frames of a tracklet show its number, inside one fit (one step of EM).

A tracklet's number labels every frame of it, and most frames do not show it. Until ``at`` of the fit every frame
takes its tracklet's number; then the model reads every train frame once, and a frame of a numbered tracklet
that it reads as illegible is learned as illegible from then on. A tracklet none of whose frames the model reads
as its number keeps its labels: there is no evidence yet of which frames show it. The digits then learn from
frames that show digits, which is what lets the digits head read numbers train lacks.
"""

import lightning.pytorch as pl
import torch
from jsonargparse.typing import ClosedUnitInterval

from jersey_cls.messages import say
from jersey_cls.numbers import ILLEGIBLE


class Relabel(pl.Callback):
    def __init__(self, at: ClosedUnitInterval | None = 0.5) -> None:
        """
        Args:
            at: When to relabel, as a share of --trainer.max_epochs: at the end of epoch round(at * max_epochs)
                - 1. None: never; every frame keeps its tracklet's label. Acts only on SoccerNet tracklets with
                --data.illegible true (not with --data.track_labels bags).
        """
        self.at = at
        self._reload_setting: int | None = None  # the user's reload_dataloaders_every_n_epochs, while overridden

    def _epoch(self, trainer: pl.Trainer) -> int | None:
        """The epoch at whose end the frames are relabelled; None when there is nothing to relabel or no epoch
        after it to train on the new labels."""
        data = trainer.datamodule
        applies = data is not None and data.labels_per_track and data.tracklets and not data.bags
        if self.at is None or not applies or ILLEGIBLE not in data.class_names or not (trainer.max_epochs or 0) > 1:
            return None
        return min(max(1, round(self.at * trainer.max_epochs)), trainer.max_epochs - 1) - 1

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._reload_setting is not None:  # the reload asked for below has been done
            trainer.reload_dataloaders_every_n_epochs, self._reload_setting = self._reload_setting, None

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        data, epoch = trainer.datamodule, self._epoch(trainer)
        # ">=": a run resumed from a checkpoint saved before the relabelling (a kill during the pass, validation
        # less often than every epoch) relabels at the end of its first epoch instead.
        if epoch is None or trainer.current_epoch < epoch or data.relabelled is not None:
            return
        relabelled = self._relabel(trainer, pl_module) if trainer.is_global_zero else None
        data.relabelled = trainer.strategy.broadcast(relabelled, src=0)  # every DDP rank trains on rank 0's labels
        self._reload_setting = trainer.reload_dataloaders_every_n_epochs
        trainer.reload_dataloaders_every_n_epochs = 1  # the next epoch trains on the new labels

    def _relabel(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> set[str]:
        data = trainer.datamodule
        samples, loader = data.train_frames()
        read = read_frames(pl_module, loader, len(samples))
        illegible = data.class_names.index(ILLEGIBLE)
        tracks = data.splits["train"].tracks
        found = {tracks[path] for (path, target), answer in zip(samples, read, strict=True) if answer == target}
        relabelled = {path for (path, target), answer in zip(samples, read, strict=True)
                      if target != illegible and answer == illegible and tracks[path] in found}  # fmt: skip
        numbered = sum(target != illegible for _, target in samples)
        say(f"jersey-cls: relabelled {len(relabelled)} of {numbered} frames of numbered train tracklets as "
            f"illegible, as the model reads them ({len(found)} tracklets read; --relabel.at {self.at})")  # fmt: skip
        return relabelled


@torch.no_grad()
def read_frames(pl_module: pl.LightningModule, loader, count: int) -> list[int]:
    """The class the model reads in each of ``count`` frames, in the loader's order (-1: unreadable image)."""
    answers = torch.full((count,), -1, dtype=torch.long)
    was_training = pl_module.training
    pl_module.eval()
    try:
        for batch in loader:
            if batch is not None:
                answers[batch["index"]] = pl_module(batch["image"].to(pl_module.device)).argmax(dim=1).cpu()
    finally:
        pl_module.train(was_training)
    return answers.tolist()
