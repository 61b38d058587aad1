"""Every use of a private Lightning name, in one place. Checked against lightning 2.6.6.

Lightning 2.6 has no public hook for these; `tests/test_lightning_internals.py` fails loudly when one of them
changes. On a Lightning upgrade, check each:

- `_SignalConnector`, `Trainer._signal_connector`, `_sigterm_notifier_fn`, writing `received_sigterm`: a SIGTERM
  or Ctrl-C that every DDP rank acts on after the same step.
  https://github.com/Lightning-AI/pytorch-lightning/issues/20806
- `ModelCheckpoint._every_n_train_steps`, `._train_time_interval`: last.ckpt at every epoch end *and* every few
  minutes. https://github.com/Lightning-AI/pytorch-lightning/issues/11645
- `Trainer.fit_loop.epoch_progress`, `.epoch_loop.batch_progress`: where in which epoch a checkpoint was saved,
  for the mid-epoch resume. https://github.com/Lightning-AI/pytorch-lightning/issues/20240
- `Trainer.fit_loop.setup_data()`: the train loader's length (steps per epoch, for the warm-up) when max_epochs is
  -1, where `Trainer.estimated_stepping_batches` returns max_steps without loading it.
  https://github.com/Lightning-AI/pytorch-lightning/pull/14317
- `LightningCLI._parse_ckpt_path`: turned off; `jersey_cls.training.resume` decides what a checkpoint sets.
  https://github.com/Lightning-AI/pytorch-lightning/pull/21455
- `WeightAveraging._average_model`: whether the EMA callback holds an average (fit) or not (evaluation).
  https://github.com/Lightning-AI/pytorch-lightning/pull/20545
- `WeightAveraging._swap_models`, overridden by `StorageSwap` (the swap without copies, which the EMA uses), and
  `ModelCheckpoint._save_checkpoint`, wrapped by `SaveContext` (best checkpoints are saved with the average in
  the model). https://github.com/Lightning-AI/pytorch-lightning/pull/20545
"""

import math
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import timedelta

import torch
from lightning.pytorch.callbacks import ModelCheckpoint, WeightAveraging
from lightning.pytorch.trainer.connectors.signal_connector import _SignalConnector


class StopRequests(_SignalConnector):
    """SIGTERM (and a first Ctrl-C) as a request to stop after the current step, safe under DDP.

    Lightning 2.6's handler broadcasts from inside the signal handler, at whatever point each rank is in, and
    each rank then stops on its own flag: ranks signalled at different moments wait on each other forever. Here
    the handler only records the request; with several ranks, ``agree`` makes all of them adopt it together at
    points every rank passes in step (LastCheckpoint calls it at each train-batch end)."""

    requested = False

    def register_signal_handlers(self) -> None:
        self.requested = False
        super().register_signal_handlers()

    def _sigterm_notifier_fn(self, signum, frame) -> None:
        if not self.requested and self.trainer.strategy.launcher is not None:
            self.trainer.strategy.launcher.kill(signum)  # the processes this one launched get it too
        self.request_stop()

    def request_stop(self) -> None:
        self.requested = True
        if self.trainer.world_size == 1:
            self.received_sigterm = True

    def agree(self) -> None:
        """Every rank calls this at the same point: a request on any rank becomes a stop on all of them."""
        if self.trainer.world_size > 1 and torch.distributed.is_initialized():
            flag = torch.tensor([float(self.requested)], device=self.trainer.strategy.root_device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            if flag.item():
                self.requested = self.received_sigterm = True


def install_stop_requests(trainer) -> None:
    trainer._signal_connector = StopRequests(trainer)


def request_stop(trainer) -> None:
    """Stop after the current step, as on SIGTERM: last.ckpt is saved and the run can resume exactly."""
    trainer._signal_connector.request_stop()


def agree_on_stop(trainer) -> None:
    """Under DDP, pending stop requests take effect now, on all ranks at once."""
    connector = trainer._signal_connector
    if isinstance(connector, StopRequests):
        connector.agree()


def stopping(trainer) -> bool:
    """A stop is pending: Lightning raises SIGTERMException at its next check."""
    return trainer.received_sigterm


def set_stopping(trainer, value: bool) -> None:
    """Hold back (False) or let go (True) a stop Lightning would raise SIGTERMException for at the next check."""
    trainer._signal_connector.received_sigterm = value


def save_also_every(checkpoint: ModelCheckpoint, train_steps: int | None, minutes: float | None) -> None:
    """Make an every-epoch ModelCheckpoint also save every ``train_steps`` steps and every ``minutes`` minutes;
    its constructor allows only one of epochs, steps and time."""
    checkpoint._every_n_train_steps = train_steps or 0
    checkpoint._train_time_interval = timedelta(minutes=minutes) if minutes else None


def train_progress(trainer) -> tuple[int, int]:
    """(epochs finished, batches of the current epoch that finished their optimizer step), as a checkpoint
    saved now would resume: between epochs Lightning starts the next one afresh; within one it resumes after
    the last batch that finished its step (saved at train-batch end or on SIGTERM)."""
    epochs = trainer.fit_loop.epoch_progress.current
    batches = trainer.fit_loop.epoch_loop.batch_progress.current
    if epochs.processed == epochs.started:
        return epochs.processed, 0
    return epochs.processed, batches.processed if batches.processed == batches.started else batches.completed


def steps_per_epoch(trainer) -> int:
    """Optimizer steps in one training epoch, the train loader set up first if need be."""
    if trainer.train_dataloader is None:
        trainer.fit_loop.setup_data()
    batches = trainer.num_training_batches  # inf when nothing trains (limit_train_batches 0)
    return max(1, math.ceil(batches / trainer.accumulate_grad_batches)) if math.isfinite(batches) else 1


def at_last_train_batch(trainer) -> bool:
    return trainer.fit_loop.epoch_loop.batch_progress.is_last_batch


class NoCheckpointHyperparameters:
    """Mixed into the LightningCLI subclass: Lightning 2.6 would overwrite the parsed model config with the
    checkpoint's hyperparameters, silently ignoring `--model.backbone` on a resume. jersey_cls.training.resume
    decides instead what a checkpoint sets."""

    def _parse_ckpt_path(self) -> None:
        pass


def holds_average(weight_averaging: WeightAveraging) -> bool:
    return weight_averaging._average_model is not None


class StorageSwap(WeightAveraging):
    """WeightAveraging whose swap of the average into the model, around validation, exchanges the tensors'
    storage instead of copying every tensor three times; the parameter objects the optimizer holds stay."""

    def _swap_models(self, pl_module) -> None:
        module = self._average_model.module
        average = [*module.parameters(), *module.buffers()]
        current = [*pl_module.parameters(), *pl_module.buffers()]
        alike = len(average) == len(current) and all(
            (a.shape, a.dtype, a.device) == (c.shape, c.dtype, c.device) for a, c in zip(average, current, strict=True)
        )
        if not alike:  # not the copy the average started from: Lightning's copying swap
            super()._swap_models(pl_module)
            return
        for a, c in zip(average, current, strict=True):
            a.data, c.data = c.data, a.data

    @contextmanager
    def averaged(self, pl_module) -> Iterator[None]:
        """The model holds the averaged weights inside the block (as during validation), if there is an average."""
        if not holds_average(self):
            yield
            return
        self._swap_models(pl_module)
        try:
            yield
        finally:
            self._swap_models(pl_module)


class SaveContext(ModelCheckpoint):
    """ModelCheckpoint whose every save runs inside ``saving(trainer)``, a context a subclass chooses."""

    def saving(self, trainer) -> AbstractContextManager:
        return nullcontext()

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        with self.saving(trainer):
            super()._save_checkpoint(trainer, filepath)
