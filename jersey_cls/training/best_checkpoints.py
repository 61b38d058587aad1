"""BestCheckpoints: the best k checkpoints by a metric, holding the weights that earned the score."""

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from lightning.pytorch.callbacks import EarlyStopping

from jersey_cls.lightning_internals import SaveContext
from jersey_cls.messages import say
from jersey_cls.training.ema import EMA

AUTO = "auto"


def ranking_metric(trainer) -> str:
    """What ranks a run's checkpoints under ``monitor: auto``: the benchmark's track accuracy when the val split's
    crops belong to player tracks (SoccerNet tracklets, JSONL rows with a track_id), as ``val/track_score``, which
    breaks its ties (evaluation.track_accuracy); else crop accuracy."""
    val = getattr(trainer.datamodule, "splits", {}).get("val")
    return "val/track_score" if val is not None and val.tracks else "val/acc_top1"


class TrackEarlyStopping(EarlyStopping):
    """Lightning's EarlyStopping, with ``monitor: auto`` (ranking_metric), and patience that waits while a run of
    player tracks answers every validation track illegible: it has not begun to read numbers yet, and its flat
    score so far says nothing about the epochs to come."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.monitor == AUTO:
            self.monitor = ranking_metric(trainer)
        super().setup(trainer, pl_module, stage)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.callback_metrics.get("val/tracks_read", 1) == 0:
            return
        super().on_validation_end(trainer, pl_module)


class BestCheckpoints(SaveContext):
    def __init__(
        self,
        dirpath: str | None = None,
        filename: str | None = None,
        monitor: str = AUTO,
        mode: str = "max",
        save_top_k: int = 3,
    ) -> None:
        """Lightning's ModelCheckpoint for deployment and evaluation: each file holds the weights validation
        scored (the EMA of the weights when it is on), the hyperparameters and the data's settings, and not the
        optimizer state: a quarter of a full checkpoint, and a quarter of the time to write. Training resumes from
        ``last.ckpt``; a new run starts from a best checkpoint with ``--model.init_from``.

        A checkpoint is saved right after validation, not at the end of the train epoch: a max_steps stop
        mid-epoch has no fresh metric. A run killed after this save and before last.ckpt's repeats the epoch on
        resume, exactly, and saves the same file again, which then replaces the first rather than leaving an
        untracked -v1 twin. On a resume from a run folder that moved (or a command run from elsewhere), Lightning
        would drop the list of best checkpoints and keep a best_model_path that no longer exists; here the saved
        paths are taken to the same files in the current folder.

        Args:
            dirpath: Checkpoint folder. None: ``<run folder>/checkpoints``.
            filename: File name pattern, as ModelCheckpoint's (``{epoch}``, ``{val/acc_top1:.4f}``, ...). None:
                ``best-epoch=NNN-acc=0.XXXX``, or ``best-epoch=NNN-track_acc=0.XXXX`` when ranked by tracks.
            monitor: Metric that ranks the checkpoints. "auto": ``val/track_score`` when the val split's crops
                belong to player tracks (the benchmark's track accuracy, ties broken), else ``val/acc_top1``; fit
                says which.
            mode: ``max`` or ``min``: whether a higher or a lower ``monitor`` is better.
            save_top_k: How many best checkpoints to keep.
        """
        super().__init__(
            dirpath, filename, monitor, mode=mode, save_top_k=save_top_k, save_weights_only=True,
            auto_insert_metric_name=False, save_on_train_epoch_end=False, enable_version_counter=False,
        )  # fmt: skip

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.monitor == AUTO:
            self.monitor = ranking_metric(trainer)
            if self.monitor == "val/track_score" and trainer.is_global_zero and stage == "fit":
                say("jersey-cls: the val split holds player tracks: the best checkpoints and early stopping rank by "
                    "val/track_acc, the benchmark's score, ties broken by how surely the right answers were read "
                    "(val/track_score), not by crop accuracy (monitor: auto)")  # fmt: skip
        if self.filename is None:
            shown = "val/track_acc" if self.monitor == "val/track_score" else self.monitor
            short = {"val/track_acc": "track_acc", "val/acc_top1": "acc"}.get(shown, "score")
            self.filename = f"best-epoch={{epoch:03d}}-{short}={{{shown}:.4f}}"
        super().setup(trainer, pl_module, stage)

    def saving(self, trainer) -> AbstractContextManager:
        # A weights-only save skips the callbacks' on_save_checkpoint, where the EMA callback would put the average
        # into the file; the model holds the average for the save instead, as it does during validation.
        ema = next((c for c in trainer.callbacks if isinstance(c, EMA)), None)
        return ema.averaged(trainer.lightning_module) if ema else nullcontext()

    def load_state_dict(self, state_dict: dict) -> None:
        saved = state_dict.get("dirpath")
        if saved and self.dirpath and saved != self.dirpath:

            def here(path):
                return str(Path(self.dirpath) / Path(path).name) if path else path

            state_dict = {
                **state_dict,
                "dirpath": self.dirpath,
                "best_model_path": here(state_dict.get("best_model_path")),
                "kth_best_model_path": here(state_dict.get("kth_best_model_path")),
                "last_model_path": here(state_dict.get("last_model_path")),
                "best_k_models": {here(path): score for path, score in state_dict.get("best_k_models", {}).items()},
            }
        super().load_state_dict(state_dict)
