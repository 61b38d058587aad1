"""jersey-cls: train basketball jersey-number classifiers from crops."""

__version__ = "0.1.0"
