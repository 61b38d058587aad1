"""timm backbones by name, with errors that say what to do."""

import difflib

import timm
from torch import nn

from jersey_cls.errors import JerseyInputError


def create_backbone(backbone: str, pretrained: bool, num_classes: int, drop_rate: float = 0.0) -> nn.Module:
    if not timm.is_model(backbone):
        close = difflib.get_close_matches(backbone, timm.list_models(), n=5, cutoff=0.6)
        hint = f" Close timm names: {', '.join(close)}." if close else " See timm.list_models() for the names."
        raise JerseyInputError(f"--model.backbone {backbone!r} is not a timm model.{hint}")
    try:
        extra = {"drop_rate": drop_rate} if drop_rate else {}  # not every timm model takes it
        return timm.create_model(backbone, pretrained=pretrained, num_classes=num_classes, **extra)
    except (OSError, RuntimeError) as error:
        if not pretrained:
            raise
        raise JerseyInputError(
            f"--model.pretrained true: could not obtain ImageNet weights for {backbone!r} ({type(error).__name__}). "
            "Connect to the network once so timm caches them (under $HF_HOME), copy that cache to this machine, "
            "or train from scratch with --model.pretrained false."
        ) from error
