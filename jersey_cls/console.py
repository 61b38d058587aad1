"""What jersey-cls prints around Lightning's own output, set up for the duration of one command only."""

import contextlib
import logging
import sys
import warnings

from lightning.fabric.utilities.rank_zero import rank_zero_only

from jersey_cls.errors import JerseyWarning


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
        # Raised inside Lightning 2.6 under torch 2.14, once per run; nothing a user can act on.
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
        warnings.formatwarning = format_warning
        logger.addFilter(noise)
        try:
            yield
        finally:
            warnings.formatwarning = lightning_format
            logger.removeFilter(noise)
