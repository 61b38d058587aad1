"""EMA of the weights, on Lightning's WeightAveraging: validation, checkpoints and export see the average."""

import torch
from jsonargparse.typing import ClosedUnitInterval

from jersey_cls.lightning_internals import StorageSwap, holds_average


class EMA(StorageSwap):
    def __init__(self, enabled: bool = True, decay: ClosedUnitInterval = 0.9999, warmup: bool = True) -> None:
        """Exponential moving average of the model weights (and BatchNorm statistics).

        Validation and the saved checkpoints' ``state_dict`` hold the averaged weights; ``last.ckpt`` also holds
        the raw weights and the average's update count, so a resume continues both.

        Args:
            enabled: Average the weights. ``false`` turns EMA off.
            decay: Final decay per optimizer step.
            warmup: Ramp the decay as min(decay, (1 + n) / (10 + n)) over the first n updates, so the average
                follows the model early on and short runs still gain from it.
        """

        def ema(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
            # Called once per (device, dtype) group with all its tensors, like torch's own EMA helper.
            n = float(num_averaged)
            step_decay = min(float(decay), (1 + n) / (10 + n)) if warmup else float(decay)
            if averaged[0].is_floating_point():
                torch._foreach_lerp_(averaged, current, 1 - step_decay)
            else:  # integer buffers such as BatchNorm's num_batches_tracked are counted, not averaged
                torch._foreach_copy_(averaged, current)

        super().__init__(use_buffers=True, multi_avg_fn=ema)
        self.enabled = enabled

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.enabled:
            super().setup(trainer, pl_module, stage)

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        return self.enabled and super().should_update(step_idx, epoch_idx)

    def on_train_end(self, trainer, pl_module) -> None:
        if holds_average(self):
            super().on_train_end(trainer, pl_module)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        if holds_average(self):  # with EMA off, Lightning would note at every save that there is no average
            super().on_save_checkpoint(trainer, pl_module, checkpoint)

    def on_load_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        # Outside fit there is no average to restore: the checkpoint's state_dict already holds the EMA weights.
        if holds_average(self):
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
