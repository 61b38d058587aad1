"""Hyperparameters that a checkpoint can hold and PyTorch's safe loader (weights_only) can read back."""


def plain_numbers(hparams: dict) -> None:
    """Turn jsonargparse's restricted number types (PositiveInt, ClosedUnitInterval: int and float subclasses)
    into plain int and float, in place; weights_only loading refuses any other class."""
    for key, value in hparams.items():
        if isinstance(value, int) and not isinstance(value, bool) and type(value) is not int:
            hparams[key] = int(value)
        elif isinstance(value, float) and type(value) is not float:
            hparams[key] = float(value)
