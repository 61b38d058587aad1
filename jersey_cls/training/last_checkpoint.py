"""LastCheckpoint: last.ckpt at every epoch end and every few minutes within one, so a kill loses little."""

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from jersey_cls import lightning_internals as internals
from jersey_cls.messages import JerseyInputError, TrainingDiverged


class LastCheckpoint(ModelCheckpoint):
    def __init__(
        self,
        dirpath: str | None = None,
        every_n_minutes: float | None = 10.0,
        every_n_train_steps: int | None = None,
        save_on_exception: bool = True,
    ) -> None:
        """Keeps ``<dirpath>/last.ckpt`` fresh; ``fit --ckpt_path last`` resumes from it, mid-epoch included.

        Lightning's ModelCheckpoint saves either per epoch or per time/steps; this one does both.

        Args:
            dirpath: Checkpoint folder. None: ``<run folder>/checkpoints``.
            every_n_minutes: Also save within an epoch once this much training time has passed. None: only at
                epoch ends (and on exceptions).
            every_n_train_steps: Also save every this many optimizer steps. None: not by steps.
            save_on_exception: Save when fit stops on SIGTERM (preemption), Ctrl-C or divergence.
        """
        problems = []
        if every_n_minutes is not None and every_n_minutes <= 0:
            problems.append(f"--last_checkpoint.every_n_minutes {every_n_minutes}: give minutes > 0, or null")
        if every_n_train_steps is not None and every_n_train_steps < 1:
            problems.append(f"--last_checkpoint.every_n_train_steps {every_n_train_steps}: give 1 or more, or null")
        if problems:
            raise JerseyInputError("\n".join(problems))
        super().__init__(
            dirpath=dirpath,
            filename="last",
            monitor=None,
            save_top_k=1,
            enable_version_counter=False,
            every_n_epochs=1,
            save_on_exception=save_on_exception,
        )
        internals.save_also_every(self, every_n_train_steps, every_n_minutes)
        self._sigterm_deferred = False

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        # SIGTERM and a first Ctrl-C stop between steps, and DivergenceGuard before a step touches the weights.
        # Other errors, and a second Ctrl-C, can strike mid-step or mid-validation, where a resume could not be
        # exact: last.ckpt keeps its previous save then.
        if isinstance(exception, (SIGTERMException, TrainingDiverged)):
            super().on_exception(trainer, pl_module, exception)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        internals.agree_on_stop(trainer)
        # The epoch-end save follows the last batch, with the epoch's validation results in it.
        if batch_idx + 1 < trainer.num_training_batches:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    # Lightning cannot resume a validation that SIGTERM stopped halfway: the resumed run fails for want of that
    # epoch's metrics (https://github.com/Lightning-AI/pytorch-lightning/issues/18595). So a SIGTERM during fit's
    # validation is acted on once validation and, at an epoch's end, the epoch-end checkpoints are done.
    def on_validation_batch_end(self, trainer, *args, **kwargs) -> None:
        if internals.stopping(trainer) and trainer.state.fn == "fit" and not trainer.sanity_checking:
            internals.set_stopping(trainer, False)
            self._sigterm_deferred = True

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        if not internals.at_last_train_batch(trainer):  # validation within an epoch
            self._act_on_deferred_sigterm(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self._act_on_deferred_sigterm(trainer)
        internals.agree_on_stop(trainer)  # a request that came during the epoch-end validation (DDP)

    def _act_on_deferred_sigterm(self, trainer) -> None:
        if self._sigterm_deferred:
            internals.set_stopping(trainer, True)
            self._sigterm_deferred = False
