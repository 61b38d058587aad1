"""ONNX export of the model's own forward pass, checked against PyTorch on real crops, plus labels.json."""

import json
from pathlib import Path

import torch

from jersey_cls.messages import JerseyInputError
from jersey_cls.model import JerseyClassifier

MAX_ABS_DIFF = 1e-4


class ExportParityError(RuntimeError):
    """The exported model does not compute what the PyTorch model computes."""


def _onnxruntime():
    try:
        import onnx  # noqa: F401 - torch.onnx needs it
        import onnxruntime
    except ImportError as error:
        raise JerseyInputError(
            f"ONNX export needs onnx and onnxruntime ({error}). Install them with: pip install 'jersey-cls[export]'"
        ) from error
    return onnxruntime


def export_onnx(model: JerseyClassifier, crops: torch.Tensor, out_dir: Path) -> dict:
    """Write ``model.onnx`` and ``labels.json`` into ``out_dir`` and check ONNX Runtime against ``model(crops)``.

    The graph is ``JerseyClassifier.forward``, the code path `predict` answers with: uint8 RGB crops (N, 3,
    height, width) of the model's input_shape in, probabilities over ``class_names`` out, normalisation and (for
    the digits head) the (tens, units) scoring inside. ``crops`` are real uint8 validation crops, preprocessed as
    in evaluation.

    Raises:
        ExportParityError: when a probability differs by more than 1e-4 or any top-1 differs; the file is then
            renamed model.rejected.onnx.
    """
    onnxruntime = _onnxruntime()
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path, staging = out_dir / "model.onnx", out_dir / "model.staging.onnx"  # an earlier good export stays
    model = model.eval().float().cpu()
    crops = crops.cpu()
    with torch.no_grad():
        model.to_onnx(
            staging,
            (crops[:1].repeat(2, 1, 1, 1),),  # batch 2: torch.export takes a size-1 axis for a constant
            input_names=["images"],
            output_names=["probabilities"],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
            dynamo=True,
            external_data=False,
            verbose=False,
        )
        expected = model(crops).numpy()
    session = onnxruntime.InferenceSession(str(staging), providers=["CPUExecutionProvider"])
    exported = session.run(["probabilities"], {"images": crops.numpy()})[0]
    max_abs_diff = float(abs(exported - expected).max())
    top1_agree = int((exported.argmax(1) == expected.argmax(1)).sum())
    if max_abs_diff > MAX_ABS_DIFF or top1_agree != len(crops):
        rejected = onnx_path.with_name("model.rejected.onnx")  # kept for a bug report, under a name no one deploys
        staging.replace(rejected)
        raise ExportParityError(
            f"{rejected}: ONNX Runtime disagrees with PyTorch on {len(crops)} validation crops: max |probability "
            f"diff| {max_abs_diff:.2e} (limit {MAX_ABS_DIFF:.0e}), same top-1 on {top1_agree}/{len(crops)}. "
            "No model.onnx was written. Report the backbone and the torch and onnxruntime versions."
        )
    staging.replace(onnx_path)
    onnx_path.with_name("model.rejected.onnx").unlink(missing_ok=True)
    height, width = model.input_shape
    labels = {
        "class_names": list(model.class_names),
        "input_shape": [height, width],
        "input": f"images: uint8 (batch, 3, {height}, {width}), RGB, each crop resized to {width}x{height} (width x "
        "height) with PIL's bilinear filter (Image.BILINEAR), ignoring aspect ratio; normalisation is inside the "
        "model",
        "output": "probabilities: float32 (batch, len(class_names)), in class_names order; rows sum to 1",
        "backbone": model.hparams.backbone,
        "head": model.hparams.head,
        "track_threshold": model.track_threshold,
        "tracks": "one answer per player track: each number's evidence is its probability summed over the track's "
        "crops; the answer is the number with the most; with an illegible class, a track whose answer's evidence "
        "is under track_threshold is illegible (-1)",
    }
    (out_dir / "labels.json").write_text(json.dumps(labels, indent=2))
    return {
        "onnx_path": str(onnx_path),
        "onnx_bytes": onnx_path.stat().st_size,
        "parity_crops": len(crops),
        "max_abs_diff": max_abs_diff,
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
