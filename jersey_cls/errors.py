class JerseyInputError(ValueError):
    """Bad user input (a path, a data file, a flag). The message names it and says how to fix it."""
