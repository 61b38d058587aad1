"""timm backbones by name, and the weights a run starts from, with errors that say what to do."""

import difflib
from pathlib import Path

import timm
from timm.models import load_pretrained
from torch import nn

from jersey_cls.messages import JerseyInputError


def create_backbone(backbone: str, num_outputs: int, drop_rate: float = 0.0) -> nn.Module:
    """The architecture alone, randomly initialised: weights come from `start_weights` or a checkpoint."""
    if not backbone.startswith("hf-hub:") and not timm.is_model(backbone):
        close = difflib.get_close_matches(backbone, timm.list_models(), n=5, cutoff=0.6)
        hint = f" Close timm names: {', '.join(close)}." if close else " See timm.list_models() for the names."
        raise JerseyInputError(f"--model.backbone {backbone!r} is not a timm model.{hint}")
    extra = {"drop_rate": drop_rate} if drop_rate else {}  # not every timm model takes it
    try:
        return timm.create_model(backbone, pretrained=False, num_classes=num_outputs, **extra)
    except RuntimeError as error:
        if "Invalid pretrained tag" not in str(error):
            raise
        tags = timm.list_pretrained(backbone.split(".")[0] + ".*")
        raise JerseyInputError(
            f"--model.backbone {backbone}: timm has no such pretrained tag. Its tags: {', '.join(tags) or 'none'}."
        ) from None
    except OSError as error:  # an hf-hub: name needs its config from the Hub, or from its cache
        raise JerseyInputError(
            f"--model.backbone {backbone}: its config could not be fetched from the Hugging Face Hub "
            f"({type(error).__name__}). Connect once so it is cached under $HF_HOME, or use a timm name."
        ) from None


def load_imagenet_weights(net: nn.Module, backbone: str, num_outputs: int) -> None:
    """timm's pretrained weights for ``backbone``, its classifier left as it is (it has other outputs)."""
    try:
        load_pretrained(net, num_classes=num_outputs)
    except RuntimeError as error:
        if "No pretrained weights exist" in str(error) or "Invalid pretrained tag" in str(error):
            raise JerseyInputError(
                f"--model.pretrained true: timm has no pretrained weights for {backbone!r}. Pick another backbone "
                "(timm.list_pretrained() lists them), or train from scratch with --model.pretrained false."
            ) from None
        raise
    except OSError as error:  # no network, no cached copy (huggingface_hub and urllib raise OSError kinds)
        raise JerseyInputError(
            f"--model.pretrained true: could not download ImageNet weights for {backbone!r} and none are cached "
            f"({type(error).__name__}). Connect once so timm caches them (under $HF_HOME); or download the "
            "weights file elsewhere and give it with --model.init_from FILE --model.pretrained false; or train "
            "from scratch with --model.pretrained false."
        ) from None


def load_weights_file(net: nn.Module, path: Path, backbone: str, num_outputs: int) -> None:
    """A timm or torchvision weights file (safetensors or a PyTorch state dict), through timm's own loading;
    the file's classifier is dropped when its outputs differ, as with timm's pretrained weights."""
    config = {**net.pretrained_cfg, "file": str(path)}
    try:
        load_pretrained(net, pretrained_cfg=config, num_classes=num_outputs)
    except RuntimeError as error:
        if "state_dict" not in str(error):  # not load_state_dict's "Error(s) in loading state_dict"
            raise JerseyInputError(
                f"--model.init_from {path}: cannot be read as a weights file ({str(error).splitlines()[0]}). "
                "Give a .safetensors, .pth or .bin state dict, or a jersey-cls .ckpt."
            ) from None
        lines = [line.strip() for line in str(error).splitlines() if line.strip()][:4]
        raise JerseyInputError(
            f"--model.init_from {path}: its weights do not fit --model.backbone {backbone}:\n  "
            + "\n  ".join(lines)
            + f"\nGive weights of a {backbone}, or the backbone they belong to."
        ) from None
    except Exception as error:  # safetensors, pickle and zip raise their own kinds for a damaged file
        raise JerseyInputError(
            f"--model.init_from {path}: cannot be read as a weights file ({type(error).__name__}: {error}). "
            "Give a .safetensors, .pth or .bin state dict, or a jersey-cls .ckpt."
        ) from None


def carry_over(net: nn.Module, old_state: dict, old_classes: list[str], new_classes: list[str], extra_rows: int):
    """Load a jersey-cls model's weights into ``net``: the backbone whole, the classifier row by row by label
    (numbers in both lists keep their row, new numbers start fresh, dropped ones go), and the last
    ``extra_rows`` rows (the head's own outputs, such as the tens and units) whole. Returns (kept, new, dropped)
    labels."""
    classifier = net.pretrained_cfg["classifier"]
    state = net.state_dict()
    old = {key.removeprefix("net."): value for key, value in old_state.items() if key.startswith("net.")}
    old_index = {name: i for i, name in enumerate(old_classes)}
    for key, value in state.items():
        if not key.startswith(f"{classifier}."):
            state[key] = old[key]
            continue
        fresh = value.clone()
        for i, name in enumerate(new_classes):
            if name in old_index:
                fresh[i] = old[key][old_index[name]]
        if extra_rows:
            fresh[-extra_rows:] = old[key][-extra_rows:]
        state[key] = fresh
    net.load_state_dict(state)
    kept = [name for name in new_classes if name in old_index]
    return kept, [n for n in new_classes if n not in old_index], [n for n in old_classes if n not in set(new_classes)]
