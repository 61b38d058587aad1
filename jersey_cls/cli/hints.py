"""Hints for a command line that did not parse: the flag or subcommand probably meant, and where a class that
an older config names lives now."""

import contextlib
import difflib
import io
import re

# Class paths of configs saved before the package was laid out by concern, and where each class lives now.
MOVED = {
    "jersey_cls.checkpoint_io.AtomicCheckpointIO": "jersey_cls.training.AtomicCheckpointIO",
    "jersey_cls.run_folder.CSVLogs": "jersey_cls.training.CSVLogs",
    **{f"jersey_cls.callbacks.{name}": f"jersey_cls.training.{name}" for name in (
        "BestCheckpoints", "LastCheckpoint", "EMA", "DivergenceGuard", "DatasetSummary")},
    **{f"jersey_cls.callbacks.{name}": f"jersey_cls.evaluation.{name}" for name in (
        "EvaluationReport", "TrackAccuracy", "Calibrate", "TrainingCurves")},
    **{f"jersey_cls.callbacks.{name}": f"jersey_cls.deploy.{name}" for name in (
        "ModelCard", "ExportOnnx", "PredictionWriter")},
    "jersey_cls.callbacks.ExportOnFitEnd": "two callbacks, jersey_cls.evaluation.Calibrate and "
                                           "jersey_cls.deploy.ModelCard, and the section `onnx: {enabled: true}`",
}  # fmt: skip
# Options of configs saved before the augmentation became one section.
RENAMED = {
    "data.augment": "data.augment.strength",
    **{f"data.{name}": f"data.augment.{name}" for name in ("jpeg_quality", "jpeg_p", "noise_sigma", "noise_p",
                                                          "erasing_p")},
}  # fmt: skip


def moved(message: str) -> str:
    """Where the classes and options an unparsable config names have moved to."""
    lines = [f"\n{old} is now {new}: update your config." for old, new in MOVED.items()
             if re.search(rf"{re.escape(old)}\b", message)]  # fmt: skip
    if any(re.search(rf"[\'\"]{re.escape(old)}[\'\"]", message) for old in RENAMED):
        renames = ", ".join(f"{old} -> {new}" for old, new in RENAMED.items())
        lines.append(f"\nThe augmentation options are one section now: {renames}. Rename them in your config.")
    return "".join(lines)


def did_you_mean(parser, args: list[str], message: str, subcommands: list[str]) -> str:
    """The flag closest to an unrecognised one, from the subcommand's own --help."""
    subcommand = next((arg for arg in args if arg in subcommands), None)
    if subcommand is None:  # a misspelt subcommand
        words = [arg for arg in args if not arg.startswith("-")][:1]
        close = difflib.get_close_matches(words[0], subcommands, n=1) if words else []
        return f"\ndid you mean {close[0]}? ({', '.join(subcommands)})" if close else ""
    unknown = re.findall(r"--[\w.+-]+", message)
    if not unknown:
        return ""
    help_text = io.StringIO()
    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(help_text):
        parser.parse_args([subcommand, "--help"])
    flags = set(re.findall(r"--[\w.]+", help_text.getvalue()))
    close = difflib.get_close_matches(unknown[0].split("=")[0], flags, n=1, cutoff=0.6)
    return f"\ndid you mean {close[0]}? (jersey-cls {subcommand} --help lists every flag)" if close else ""
