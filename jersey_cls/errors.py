class JerseyInputError(ValueError):
    """Bad user input (a path, a data file, a flag). The message names it and says how to fix it."""


class TrainingDiverged(RuntimeError):
    """The loss or the gradients stopped being finite; the message says where and what to try."""


class JerseyWarning(UserWarning):
    """Something about the user's data or setup that training goes on without (skipped files, no W&B).
    The command prints it as `jersey-cls: warning: ...`, with no source location."""
