"""EvaluationPass: a callback that gathers what a validation or test pass answered, crop by crop, and reports it
when the pass ends. Subclasses say what to keep (start, collect) and what to make of it (finish)."""

import lightning.pytorch as pl
import torch


class EvaluationPass(pl.Callback):
    def start(self, pl_module: pl.LightningModule) -> None:
        """A pass begins: forget the last one."""

    def collect(self, trainer: pl.Trainer, scores: torch.Tensor | None, batch) -> None:
        """One batch: the model's scores per class (None for a batch of unreadable crops) and the batch."""

    def finish(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """The pass ended; ``stage`` is "val" or "test"."""

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self.start(pl_module)

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self.start(pl_module)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.collect(trainer, outputs, batch)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.collect(trainer, outputs, batch)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        self.finish(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self.finish(trainer, pl_module, "test")
