"""ONNX export that checks itself against PyTorch on real crops, plus labels.json with the preprocessing."""

import json
from pathlib import Path

import torch

from jersey_cls.errors import JerseyInputError
from jersey_cls.model import JerseyClassifier

MAX_ABS_LOGIT_DIFF = 1e-4


class ExportParityError(RuntimeError):
    """The exported model does not compute what the PyTorch model computes."""


def _onnx_modules():
    try:
        import onnx  # noqa: F401 - torch.onnx needs it
        import onnxruntime
    except ImportError as error:
        raise JerseyInputError(
            f"ONNX export needs onnx and onnxruntime ({error}). Install them with: pip install 'jersey-cls[export]'"
        ) from error
    return onnxruntime


def export_onnx(model: JerseyClassifier, crops: torch.Tensor, out_dir: Path, image_size: int) -> dict:
    """Write ``model.onnx`` and ``labels.json`` into ``out_dir`` and check ONNX Runtime against PyTorch.

    The ONNX graph takes normalised float32 RGB, NCHW, with a dynamic batch axis, and outputs ``logits``;
    labels.json says how to get there from an image. ``crops`` are uint8 (N, 3, H, W) crops from the
    validation set, preprocessed as in evaluation.

    Raises:
        ExportParityError: when any logit differs by more than 1e-4 or any top-1 differs.
    """
    onnxruntime = _onnx_modules()
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "model.onnx"
    net = model.net.eval().float().cpu()
    mean, std = model.mean.cpu() / 255, model.std.cpu() / 255
    inputs = (crops.float().cpu() / 255 - mean) / std
    with torch.no_grad():
        torch.onnx.export(
            net,
            (inputs[:2],),
            str(onnx_path),
            input_names=["images"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
            dynamo=True,
            external_data=False,
            verbose=False,
        )
        torch_logits = net(inputs).numpy()
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(["logits"], {"images": inputs.numpy()})[0]
    max_abs_diff = float(abs(onnx_logits - torch_logits).max())
    top1_agree = int((onnx_logits.argmax(1) == torch_logits.argmax(1)).sum())
    if max_abs_diff > MAX_ABS_LOGIT_DIFF or top1_agree != len(inputs):
        raise ExportParityError(
            f"{onnx_path}: ONNX Runtime disagrees with PyTorch on {len(inputs)} validation crops: max |logit diff| "
            f"{max_abs_diff:.2e} (limit {MAX_ABS_LOGIT_DIFF:.0e}), same top-1 on {top1_agree}/{len(inputs)}. "
            "Do not deploy this file; report the backbone and torch/onnxruntime versions."
        )
    labels = {
        "class_names": list(model.class_names),
        "image_size": image_size,
        "mean": [round(float(v), 6) for v in mean.flatten()],
        "std": [round(float(v), 6) for v in std.flatten()],
        "channel_order": "RGB",
        "layout": "NCHW",
        "resize": "bilinear (PIL Image.BILINEAR) to image_size x image_size, ignoring aspect ratio",
        "input": "images: float32 NCHW, RGB resized as above, scaled to 0-1, then (x - mean) / std per channel",
        "output": "logits: float32 (batch, len(class_names)); softmax for probabilities",
        "backbone": model.hparams.backbone,
    }
    (out_dir / "labels.json").write_text(json.dumps(labels, indent=2))
    return {
        "onnx_path": str(onnx_path),
        "onnx_bytes": onnx_path.stat().st_size,
        "parity_crops": len(inputs),
        "max_abs_logit_diff": max_abs_diff,
        "top1_agree": top1_agree,
    }


def validation_crops(datamodule, count: int = 64) -> torch.Tensor:
    """Up to ``count`` real uint8 crops from the validation split, preprocessed as in evaluation."""
    crops = []
    for batch in datamodule.val_dataloader():
        if batch is not None:
            crops.append(batch["image"])
        if sum(len(c) for c in crops) >= count:
            break
    if not crops:
        raise JerseyInputError("no readable validation crops to check the export against; check the val split.")
    return torch.cat(crops)[:count]
