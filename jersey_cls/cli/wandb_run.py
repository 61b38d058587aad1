"""W&B run continuity: a resumed fit (or an evaluation of its checkpoint) logs to the same W&B run, and a W&B
that cannot start leaves training running with local logs."""

import secrets
import string
import warnings
from pathlib import Path

from jsonargparse import Namespace
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.loggers import WandbLogger

from jersey_cls.messages import JerseyWarning
from jersey_cls.training.run_folder import configured, is_configured

RUN_ID_FILE = Path("wandb") / "run_id"


def _is_wandb(logger: Namespace) -> bool:
    return is_configured(logger, WandbLogger)


def drop_wandb_if_missing(config: Namespace) -> None:
    """A configured WandbLogger without an importable wandb warns once and leaves local logging running."""
    loggers = configured(config.trainer.logger)
    if not any(_is_wandb(logger) for logger in loggers):
        return
    try:
        import wandb  # noqa: F401
    except ImportError as error:
        warnings.warn(
            f"W&B is configured but cannot be imported ({error}). Training goes on with local logs only. "
            "Fix: pip install wandb (it is pinned in requirements.lock).",
            JerseyWarning,
            stacklevel=1,
        )
        config.trainer.logger = [logger for logger in loggers if not _is_wandb(logger)]


def keep_wandb_run(config: Namespace, resuming: bool) -> None:
    """Give every WandbLogger in ``config`` the run id kept in the run folder, so a resume continues that W&B run.

    Lightning does not store the W&B id in checkpoints; without this, each resume would start a new W&B run.
    """
    if rank_zero_only.rank != 0:  # W&B logs from rank 0 only; other ranks must not rewrite the id file
        return
    for logger in configured(config.trainer.logger):
        if not _is_wandb(logger) or logger.init_args.get("id") or logger.init_args.get("version"):
            continue  # not W&B, or an id chosen by the user, which wins
        id_file = Path(config.trainer.default_root_dir) / RUN_ID_FILE
        if resuming and id_file.is_file():
            run_id = id_file.read_text().strip()
        else:
            run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
            id_file.parent.mkdir(parents=True, exist_ok=True)
            id_file.write_text(run_id + "\n")
        logger.init_args.id = run_id


def start_wandb_or_continue_without(trainer) -> None:
    """Start W&B runs now; when W&B cannot start (offline without WANDB_MODE, no login), warn once and go on."""
    kept = []
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            try:
                logger.experiment  # noqa: B018 - creating the run is the point
            except Exception as error:  # W&B raises many kinds (UsageError, CommError, OSError, ...)
                warnings.warn(
                    f"W&B could not start ({type(error).__name__}: {error}). Training goes on with local logs only. "
                    "Fix: `wandb login` or set WANDB_API_KEY; or set WANDB_MODE=offline and `wandb sync` later.",
                    JerseyWarning,
                    stacklevel=1,
                )
                continue
        kept.append(logger)
    trainer.loggers = kept
