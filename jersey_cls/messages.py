"""What jersey-cls tells the user: errors that name the flag or file and say how to fix it, warnings about their
data or setup, and one-line notes; printed as `jersey-cls: ...` for the duration of one command."""

import contextlib
import logging
import sys
import warnings

from lightning.fabric.utilities.rank_zero import rank_zero_only


class JerseyInputError(ValueError):
    """Bad user input (a path, a data file, a flag). The message names it and says how to fix it."""


class TrainingDiverged(RuntimeError):
    """The loss or the gradients stopped being finite; the message says where and what to try."""


class JerseyWarning(UserWarning):
    """Something about the user's data or setup that training goes on without (skipped files, no W&B).
    The command prints it as `jersey-cls: warning: ...`, with no source location."""


@rank_zero_only  # said once, by rank 0, under DDP
def say(message: str, file=None) -> None:
    print(message, file=file or sys.stdout, flush=True)


class LightningNoise(logging.Filter):
    """Drops Lightning's advert for its cloud logger, and its note that base.yaml's RichModelSummary replaces the
    default summary: two lines of noise in every run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(("💡 Tip:", "Trainer already configured with model summary"))


@contextlib.contextmanager
def jersey_console():
    """jersey-cls warnings print as ``jersey-cls: warning: ...`` (ours speak of the user's data or setup; a source
    location would point into Lightning's code) and Lightning's noise is dropped, until the way out."""
    lightning_format = warnings.formatwarning

    def format_warning(message, category, filename, lineno, line=None) -> str:
        if issubclass(category, JerseyWarning):
            return f"jersey-cls: warning: {message}\n"
        return lightning_format(message, category, filename, lineno, line)

    noise = LightningNoise()
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with warnings.catch_warnings():
        # Raised inside Lightning under torch 2.14, once per run; nothing a user can act on.
        # https://github.com/Lightning-AI/pytorch-lightning/issues/21326
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
        warnings.formatwarning = format_warning
        logger.addFilter(noise)
        try:
            yield
        finally:
            warnings.formatwarning = lightning_format
            logger.removeFilter(noise)
