"""Checkpoints as files: reading one (the only place that does), the model it holds, and which file `best` and
`last` name."""

import inspect
import pickle
import zipfile
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from jersey_cls.messages import JerseyInputError
from jersey_cls.model import JerseyClassifier

EVALUATION = ("validate", "test", "predict", "export", "audit")


def read_checkpoint(path: Path, flag: str = "--ckpt_path") -> dict:
    """A jersey-cls checkpoint, loaded the safe way (weights_only); anything else is a clear error."""
    give = "Give a .ckpt written by `jersey-cls fit`" + (", or best or last." if flag == "--ckpt_path" else ".")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # torch raises several kinds for non-checkpoints and unsafe pickles
        raise JerseyInputError(f"{flag} {path}: {why_unloadable(Path(path), error)}. {give}") from None
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, dict) or not {"class_names", "backbone"} <= hparams.keys():
        raise JerseyInputError(
            f"{flag} {path}: not a jersey-cls checkpoint (it has no class_names/backbone hyperparameters). {give}"
        )
    return checkpoint


def why_unloadable(path: Path, error: Exception) -> str:
    """Why torch.load refused a file, in words."""
    if not path.is_file():
        return "no such file"
    size = path.stat().st_size
    if size == 0:
        return "the file is empty (0 bytes): a save or copy that never wrote it"
    if isinstance(error, pickle.UnpicklingError) and "Unsupported global" in str(error):
        return ("it holds Python objects beyond tensors and plain values, which are never loaded (they could run "
                "code): it was not written by jersey-cls, or was changed since")  # fmt: skip
    if not zipfile.is_zipfile(path):
        return (f"cut short or not a PyTorch checkpoint ({size:,} bytes, with no zip directory at the end, which "
                "every checkpoint has): a copy or download that stopped early, or another kind of file")  # fmt: skip
    first_line = (str(error).splitlines() or [""])[0][:200]
    return f"cannot be loaded as a PyTorch checkpoint ({type(error).__name__}: {first_line})"


def load_model(path: str | Path) -> JerseyClassifier:
    """The model a checkpoint holds (the EMA weights, when EMA was on), on the CPU, in eval mode."""
    checkpoint = read_checkpoint(Path(path))
    arguments = inspect.signature(JerseyClassifier).parameters  # not the keys LightningCLI adds of its own
    model = JerseyClassifier(**{k: v for k, v in checkpoint["hyper_parameters"].items() if k in arguments})
    model.load_state_dict(checkpoint["state_dict"])
    model.on_load_checkpoint(checkpoint)  # what the checkpoint holds beside the weights: the track threshold, ...
    return model.eval()


def best_of(trainer: pl.Trainer) -> ModelCheckpoint | None:
    """The checkpoint callback that ranks checkpoints by a metric, once it has saved its best; None before."""
    for callback in trainer.checkpoint_callbacks:
        if callback.monitor and callback.best_model_path and Path(callback.best_model_path).is_file():
            return callback
    return None


def checkpoints_in(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.ckpt"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []


def best_checkpoint(folder: Path) -> Path | None:
    """The best checkpoint as the run's newest full checkpoint (last.ckpt) records it (best_model_path)."""
    for candidate in reversed(checkpoints_in(folder)):
        try:
            callbacks = read_checkpoint(candidate).get("callbacks", {})
        except JerseyInputError:
            continue  # not one of ours
        for state in callbacks.values():
            if isinstance(state, dict) and state.get("monitor") and state.get("best_model_path"):
                best = folder / Path(state["best_model_path"]).name  # the run folder may have moved
                if best.is_file():
                    return best
    return None


def resolve(ckpt_path: str | None, run: Path, subcommand: str) -> Path | None:
    """The file ``ckpt_path`` names: ``best`` or ``last`` inside ``<run>/checkpoints``, or a path. None for a
    fit without one, or asked to resume from ``last`` when there is none yet: it then starts the run."""
    folder = run / "checkpoints"
    if ckpt_path is None:
        if subcommand in EVALUATION:  # it would score random weights
            raise JerseyInputError(f"{subcommand} needs --ckpt_path: a checkpoint file, best or last. {listing(run)}")
        return None
    if ckpt_path == "last":
        found = [p for p in checkpoints_in(folder) if p.name.startswith("last")]
        if found or subcommand == "fit":
            return found[-1] if found else None
    elif ckpt_path == "best":
        if subcommand == "fit":
            raise JerseyInputError(
                "--ckpt_path best: fit resumes from --ckpt_path last. To start a new run from a best checkpoint, "
                "give its file to --model.init_from and a new --trainer.default_root_dir."
            )
        if (found := best_checkpoint(folder)) is not None:
            return found
        files = checkpoints_in(folder)
        if files and not any(p.name.startswith("last") for p in files):  # best files hold weights, not the record
            raise JerseyInputError(
                f"--ckpt_path best: {folder} has no last.ckpt, which records which checkpoint is best. Give the "
                f"file: {', '.join(p.name for p in files)}."
            )
    elif Path(ckpt_path).is_file():
        return Path(ckpt_path)
    else:
        raise JerseyInputError(f"--ckpt_path {ckpt_path}: no such checkpoint file. {listing(run)}")
    raise JerseyInputError(f"--ckpt_path {ckpt_path}: {run} has no {ckpt_path} checkpoint. {listing(run)}")


def listing(run: Path) -> str:
    found = checkpoints_in(run / "checkpoints")
    if not found:
        return (
            f"{run}/checkpoints/ holds no checkpoint: train one with `jersey-cls fit`, or point "
            "--trainer.default_root_dir at the run folder."
        )
    return f"{run}/checkpoints/ holds: " + ", ".join(p.name for p in found) + " (or say best or last)."
