"""DivergenceGuard: stop at the first non-finite loss or gradient, before it reaches the weights."""

import math

import lightning.pytorch as pl
import torch

from jersey_cls.messages import TrainingDiverged


def all_finite(grads: list[torch.Tensor]) -> bool:
    # The fused norm is one pass, far cheaper than isfinite per tensor; as a huge but finite gradient can overflow
    # it, a non-finite norm is confirmed element by element.
    if not grads or torch.nn.utils.get_total_norm(grads, foreach=True).isfinite():
        return True
    return bool(torch.stack([g.isfinite().all() for g in grads]).all())


class DivergenceGuard(pl.Callback):
    def __init__(self, max_amp_overflows: int = 25) -> None:
        """Stop training with a diagnosis when it diverges.

        Checked after backward and before the optimizer step, so the weights (and any last.ckpt written on
        the way out) still hold the last finite step.

        Args:
            max_amp_overflows: Consecutive fp16 overflow steps (skipped by the gradient scaler) tolerated before
                stopping; a few are normal while the scaler finds its scale.
        """
        super().__init__()
        self.max_amp_overflows = max_amp_overflows
        self._overflows = 0
        self._batch_paths: list[str] = []
        self._loss: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        samples = getattr(trainer.train_dataloader.dataset, "samples", None)
        if batch is not None and samples is not None:
            self._batch_paths = [samples[i][0] for i in batch["index"].tolist()]

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        self._loss = float(loss.detach())

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        finite_grads = all_finite(grads)
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        if scaler is not None and self._loss is not None and math.isfinite(self._loss):
            # Under fp16 an overflow makes the scaler skip the step and lower its scale: fine, unless it persists.
            self._overflows = 0 if finite_grads else self._overflows + 1
            if self._overflows > self.max_amp_overflows:
                self._stop(trainer, optimizer, f"{self._overflows} consecutive fp16 gradient overflows")
            return
        if self._loss is not None and not math.isfinite(self._loss):
            self._stop(trainer, optimizer, f"the loss is {self._loss}")
        if not finite_grads:
            self._stop(trainer, optimizer, "a gradient is not finite")

    def _stop(self, trainer, optimizer, what: str) -> None:
        paths = "\n".join(f"    {path}" for path in self._batch_paths[:16]) or "    (not known)"
        more = f"\n    ... and {len(self._batch_paths) - 16} more" if len(self._batch_paths) > 16 else ""
        raise TrainingDiverged(
            f"training diverged at epoch {trainer.current_epoch}, step {trainer.global_step}: {what}.\n"
            f"  learning rate: {optimizer.param_groups[0]['lr']:.3g}\n"
            f"  batch files:\n{paths}{more}\n"
            "  The weights were not updated with it; last.ckpt holds the previous step. Try: a lower --model.lr; "
            "gradient clipping (--trainer.gradient_clip_val 1.0); --trainer.precision 32 to rule out fp16 "
            "overflow; and check the listed files."
        )
