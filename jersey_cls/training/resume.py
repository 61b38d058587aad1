"""What a checkpoint settles for the command given it: evaluation takes its model and data, a resume may not
change what its weights mean or what exactness depends on."""

from pathlib import Path

from jsonargparse import Namespace

from jersey_cls.messages import JerseyInputError

# A resume must keep these: they define what the weights mean. Other keys (max_epochs, lr, ...) may change.
MEANING = ("backbone", "head", "image_size")
# And these: the train order, the schedule, which weights train and how the augmentation draws depend on them, so
# an exact resume does too.
EXACTNESS = ("batch_size", "world_size", "accumulate_grad_batches", "ema", "augment_on", "input_shape", "bags",
             "bag_size")  # fmt: skip
# What evaluation does not take from a checkpoint: the weights are loaded from it, the classes linked from data.
NOT_ADOPTED = {"pretrained", "init_from", "class_names", "class_weights", "image_size", "input_shape", "compile"}


def adopt_run_folder(config: Namespace, path: Path, explicit: set[str]) -> None:
    """A command given a checkpoint works in its run: ``<run>`` of ``<run>/checkpoints/<name>.ckpt``, else the
    checkpoint's own folder; --trainer.default_root_dir on the command line still wins."""
    if "trainer.default_root_dir" not in explicit:
        folder = path.resolve().parent
        config.trainer.default_root_dir = str(folder.parent if folder.name == "checkpoints" else folder)


def adopt(config: Namespace, checkpoint: dict, path: Path, explicit: set[str], trains: bool = False) -> list[str]:
    """Make ``config`` (of validate, test, predict, export or audit) describe the checkpoint's model and data:
    backbone, head, classes, image size, data root and run folder; for a command that ``trains`` new models like
    it (audit), also its starting weights and its data recipe (augmentation, batch size, sampler, frame labels).
    A flag given on the command line still wins; when it changes what the checkpoint means, the returned notes
    say so."""
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

    starting = {"pretrained", "init_from"} if trains else set()
    for name, value in model.items():
        if name in config.model and (name not in NOT_ADOPTED or name in starting):
            take(f"model.{name}", value)
    config.data.class_names = list(model["class_names"])
    if model.get("input_shape") and "data.image_size" not in explicit:
        config.data.input_shape = list(model["input_shape"])
    take("data.image_size", model["image_size"])
    config.model.image_size = int(config.data.image_size)
    # The data the model was trained and judged on, read as it was (the same tracks held out as val).
    names = ["data_root", "illegible", "illegible_labels", "frames_per_track", "val_share", "val_seed"]
    for name in names + (["batch_size", "sampler", "track_labels", "bag_size"] if trains else []):
        if name in data:
            take(f"data.{name}", data[name])
    if trains and "augment" in data and not any(key.split(".")[:2] == ["data", "augment"] for key in explicit):
        config.data.augment = Namespace(**data["augment"])
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
             "ema": "--ema.enabled", "augment_on": "where augmentation runs (--data.augment_on, auto: the device on a "
             "CUDA GPU)", "input_shape": "the input's [height, width] (--data.image_size, --data.keep_aspect)",
             "bags": "tracklets learned in bags (--data.track_labels)", "bag_size": "--data.bag_size"}  # fmt: skip
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
