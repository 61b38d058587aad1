"""jersey-cls: train basketball jersey-number classifiers from crops."""

import os
from pathlib import Path

__version__ = "0.1.0"


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/jersey-cls, else ~/.cache/jersey-cls."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jersey-cls"
