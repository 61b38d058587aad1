"""The weights a new run starts from: random, timm's ImageNet weights, a weights file, or last season's model.
Loaded when fit starts a run, never on a resume, whose weights all come from its checkpoint."""

from pathlib import Path

from jersey_cls.messages import JerseyInputError
from jersey_cls.model import JerseyClassifier
from jersey_cls.model.backbone import carry_over, load_imagenet_weights, load_weights_file
from jersey_cls.training.checkpoints import read_checkpoint


def load_start_weights(model: JerseyClassifier) -> str:
    """Load into ``model`` the weights its ``pretrained`` and ``init_from`` name; returns what they are, for the
    model card."""
    hp, num_outputs = model.hparams, model.head.num_outputs
    if hp.init_from is None:
        if hp.pretrained:
            load_imagenet_weights(model.net, hp.backbone, num_outputs)
            return f"timm's ImageNet weights for {hp.backbone}"
        return "random weights (from scratch)"
    path = Path(hp.init_from).expanduser()
    if not path.is_file():
        raise JerseyInputError(
            f"--model.init_from {hp.init_from}: no such file. Give a jersey-cls .ckpt or a weights file."
        )
    if path.suffix != ".ckpt":
        load_weights_file(model.net, path, hp.backbone, num_outputs)
        return f"the weights file {path}"
    old = read_checkpoint(path, "--model.init_from")
    old_model = old["hyper_parameters"]
    if old_model["backbone"] != hp.backbone:
        raise JerseyInputError(
            f"--model.init_from {hp.init_from}: a {old_model['backbone']} checkpoint, and this run's --model.backbone "
            f"is {hp.backbone}. Use the same backbone, or give a weights file of {hp.backbone}."
        )
    extra_rows = model.head.extra_rows if old_model.get("head") == hp.head else 0  # the same head's own outputs
    kept, new, dropped = carry_over(
        model.net, old["state_dict"], old_model["class_names"], model.class_names, extra_rows
    )
    return f"{path}: {len(kept)} numbers carried over, {len(new)} new, {len(dropped)} dropped"
