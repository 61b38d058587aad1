"""What a checkpoint means: which file `best` and `last` name, what evaluation takes from it, what a resume may
not change."""

from pathlib import Path

import torch
from jsonargparse import Namespace

from jersey_cls.errors import JerseyInputError

EVALUATION = ("validate", "test", "predict", "export")
# A resume must keep these: they define what the weights mean. Other keys (max_epochs, lr, ...) may change.
MEANING = ("backbone", "head", "image_size")
# And these: the train order, the schedule and which weights train on depend on them, so an exact resume does too.
EXACTNESS = ("batch_size", "world_size", "accumulate_grad_batches", "ema")
# What evaluation does not take from a checkpoint: the weights are loaded from it, the classes linked from data.
NOT_ADOPTED = {"pretrained", "init_from", "class_names", "class_weights", "image_size", "compile"}
# Where the weights a run started from came from; a checkpoint's own weights replace them.
START = ("pretrained", "init_from")


def read_checkpoint(path: Path, flag: str = "--ckpt_path") -> dict:
    """A jersey-cls checkpoint, loaded the safe way (weights_only); anything else is a clear error."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # torch raises several kinds for non-checkpoints and unsafe pickles
        raise JerseyInputError(
            f"{flag} {path}: cannot be loaded as a PyTorch checkpoint ({type(error).__name__}). "
            "Give a .ckpt written by `jersey-cls fit`, or best or last."
        ) from None
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, dict) or not {"class_names", "backbone"} <= hparams.keys():
        raise JerseyInputError(
            f"{flag} {path}: not a jersey-cls checkpoint (it has no class_names/backbone hyperparameters). "
            "Give a .ckpt written by `jersey-cls fit`, or best or last."
        )
    if "image_size" not in hparams:  # written before the model kept its input size
        hparams["image_size"] = checkpoint.get("datamodule_hyper_parameters", {}).get("image_size", 224)
    checkpoint["state_dict"].setdefault("temperature", torch.ones(()))  # written before calibration
    return checkpoint


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


def adopt_run_folder(config: Namespace, path: Path, explicit: set[str]) -> None:
    """A command given a checkpoint works in its run: ``<run>`` of ``<run>/checkpoints/<name>.ckpt``, else the
    checkpoint's own folder; --trainer.default_root_dir on the command line still wins."""
    if "trainer.default_root_dir" not in explicit:
        folder = path.resolve().parent
        config.trainer.default_root_dir = str(folder.parent if folder.name == "checkpoints" else folder)


def adopt(config: Namespace, checkpoint: dict, path: Path, explicit: set[str]) -> list[str]:
    """Make ``config`` (of validate, test, predict or export) describe the checkpoint's model and data: backbone,
    head, classes, image size, data root and run folder. A flag given on the command line still wins; when it
    changes what the checkpoint means, the returned notes say so."""
    model = checkpoint["hyper_parameters"]
    data = checkpoint.get("datamodule_hyper_parameters", {})
    notes = []

    def take(key: str, value) -> None:
        section, name = key.split(".")
        if key in explicit and config[section][name] != value:
            if name in MEANING and name != "image_size":  # other weights: they would not load
                raise JerseyInputError(
                    f"--{key} {config[section][name]}: the checkpoint {path} holds a {value!r} model. Drop the flag."
                )
            notes.append(f"--{key} {config[section][name]} overrides the checkpoint's {value!r}")
        elif key not in explicit:
            config[section][name] = value

    for name, value in model.items():
        if name in config.model and name not in NOT_ADOPTED:
            take(f"model.{name}", value)
    config.model.pretrained, config.model.init_from = False, None  # the weights come from the checkpoint
    config.data.class_names = list(model["class_names"])
    take("data.image_size", model["image_size"])
    config.model.image_size = int(config.data.image_size)
    for name in ("data_root", "illegible", "illegible_labels"):  # the data the model was trained and judged on
        if name in data:
            take(f"data.{name}", data[name])
    return notes


def check_resumable(path: Path, checkpoint: dict) -> None:
    if "optimizer_states" not in checkpoint:
        raise JerseyInputError(
            f"--ckpt_path {path}: holds the weights only (a best checkpoint), not the training state a resume "
            f"continues. Resume with --ckpt_path last, or start a new run from these weights with --model.init_from "
            f"{path} --trainer.default_root_dir NEW_RUN."
        )


def resume_refusals(checkpoint: dict, config: Namespace) -> list[str]:
    """What ``config`` would change about the checkpoint's meaning, one line each."""
    model = checkpoint["hyper_parameters"]
    ours = {"backbone": config.model.backbone, "head": config.model.head, "image_size": config.data.image_size}
    key = {"image_size": "data.image_size"}
    return [
        f"  --{key.get(name, f'model.{name}')}: checkpoint {model[name]!r}, now {ours[name]!r}"
        for name in MEANING
        if model[name] != ours[name]
    ]


def exactness_refusals(checkpoint: dict, now: dict, class_names: list[str]) -> list[str]:
    """What would make the resumed run differ from an uninterrupted one: the class list, and what the train
    order and the schedule depend on, and whether the EMA is on (``now``: those keys of EXACTNESS)."""
    refusals = []
    old = list(checkpoint["hyper_parameters"]["class_names"])
    if old != class_names:
        detail = (
            "same labels, different order"
            if set(old) == set(class_names)
            else (
                f"only in checkpoint: {sorted(set(old) - set(class_names))}, "
                f"only in data: {sorted(set(class_names) - set(old))}"
            )
        )
        refusals.append(f"  class list: checkpoint has {len(old)} classes, the data has {len(class_names)}; {detail}")
    saved = {**checkpoint.get("JerseyDataModule", {}), "ema": "current_model_state" in checkpoint}
    flags = {"batch_size": "--data.batch_size", "world_size": "devices x nodes (--trainer.devices, "
             "--trainer.num_nodes)", "accumulate_grad_batches": "--trainer.accumulate_grad_batches",
             "ema": "--ema.enabled"}  # fmt: skip
    for name in EXACTNESS:
        if name in saved and saved[name] != now[name]:
            refusals.append(f"  {flags[name]}: checkpoint {saved[name]}, now {now[name]}")
    return refusals


def refuse(path, refusals: list[str]) -> None:
    if refusals:
        raise JerseyInputError(
            f"--ckpt_path {path}: refusing to resume, because the run would not continue what the checkpoint "
            "holds:\n" + "\n".join(refusals) + "\nResume with the checkpoint's values, or start a new run "
            "elsewhere with --trainer.default_root_dir."
        )
