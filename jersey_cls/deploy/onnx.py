"""ONNX export of the model's own forward pass, checked against PyTorch on real crops, plus labels.json; and its
int8 copy, calibrated and checked on the run's val crops."""

import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from jersey_cls.messages import JerseyInputError
from jersey_cls.model import JerseyClassifier

MAX_ABS_DIFF = 1e-4


class ExportParityError(RuntimeError):
    """The exported model does not compute what the PyTorch model computes (closely enough)."""


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


def validation_crops(datamodule, count: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``count`` real uint8 crops from the validation split, preprocessed as in evaluation, and their
    targets (class indices)."""
    crops, targets = [], []
    for batch in datamodule.val_dataloader():
        if batch is not None:
            crops.append(batch["image"])
            targets.append(batch["target"])
        if sum(len(c) for c in crops) >= count:
            break
    if not crops:
        raise JerseyInputError("no readable validation crops to check the export against; check the val split.")
    return torch.cat(crops)[:count], torch.cat(targets)[:count]


def quantize_int8(fp32_path: Path, crops: np.ndarray, targets: np.ndarray, answers: np.ndarray,
                  max_drop: float) -> dict:  # fmt: skip
    """Write ``model.int8.onnx`` beside ``fp32_path``: ONNX Runtime's static quantization (QDQ, int8 weights per
    output channel, uint8 activations) of the convolutions and matrix products, their ranges calibrated on
    ``crops`` (uint8, as the model takes them). Inputs, outputs and what is inside (normalisation, the digits
    head's reading) stay the fp32 file's.

    Checked on ``crops`` against ``answers`` (the PyTorch model's probabilities: what predict answers, and what
    model.onnx answers within 1e-4) and ``targets``: top-1 of both, and how often their top-1 agree.

    Raises:
        ExportParityError: when int8's top-1 is more than ``max_drop`` points under fp32's; the file is then
            renamed model.int8.rejected.onnx.
    """
    onnxruntime = _onnxruntime()
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Crops(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(np.array_split(crops, max(1, len(crops) // 32)))

        def get_next(self) -> dict | None:
            batch = next(self.batches, None)
            return None if batch is None else {"images": batch}

    int8_path = fp32_path.with_name("model.int8.onnx")
    prepared, staging = fp32_path.with_name("model.prepared.onnx"), fp32_path.with_name("model.int8.staging.onnx")
    try:
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(staging), Crops(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv", "Gemm", "MatMul"])  # fmt: skip
        session = onnxruntime.InferenceSession(str(staging), providers=["CPUExecutionProvider"])
        int8 = np.concatenate([session.run(["probabilities"], {"images": batch})[0]
                               for batch in np.array_split(crops, max(1, len(crops) // 64))])  # fmt: skip
    except Exception as error:  # onnxruntime raises its own kinds; the run and model.onnx stand
        staging.unlink(missing_ok=True)
        raise ExportParityError(
            f"{int8_path}: ONNX Runtime could not quantize or run the int8 model ({type(error).__name__}: "
            f"{error}). No model.int8.onnx was written; model.onnx stands. Report the backbone and the onnxruntime "
            "version."
        ) from None
    finally:
        prepared.unlink(missing_ok=True)
    fp32_acc, int8_acc = float((answers.argmax(1) == targets).mean()), float((int8.argmax(1) == targets).mean())
    result = {
        "int8_path": str(int8_path),
        "int8_bytes": staging.stat().st_size,
        "check_crops": len(crops),
        "fp32_acc": fp32_acc,
        "int8_acc": int8_acc,
        "agreement": float((int8.argmax(1) == answers.argmax(1)).mean()),
    }
    if (fp32_acc - int8_acc) * 100 > max_drop:
        rejected = int8_path.with_name("model.int8.rejected.onnx")
        staging.replace(rejected)
        raise ExportParityError(
            f"{rejected}: the int8 model reads {len(crops)} validation crops {100 * (fp32_acc - int8_acc):.1f} "
            f"points worse than fp32 (top-1 {int8_acc:.4f} against {fp32_acc:.4f}; same top-1 as fp32 on "
            f"{result['agreement']:.1%}), more than --onnx.int8_max_drop {max_drop}. No model.int8.onnx was "
            "written; model.onnx stands. Calibrate on more crops (--onnx.calibration_crops) or deploy model.onnx."
        )
    staging.replace(int8_path)
    int8_path.with_name("model.int8.rejected.onnx").unlink(missing_ok=True)
    return result


def crops_per_second(path: Path, crops: np.ndarray, threads: int, seconds: float = 1.0) -> float:
    """How many of ``crops`` the ONNX file at ``path`` reads a second, in batches of 32, on ``threads`` threads."""
    onnxruntime = _onnxruntime()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    batch = crops[np.arange(32) % len(crops)]
    session.run(["probabilities"], {"images": batch})  # the first run allocates
    read, started = 0, time.perf_counter()
    while read < 3 * len(batch) or time.perf_counter() - started < seconds:
        session.run(["probabilities"], {"images": batch})
        read += len(batch)
    return read / (time.perf_counter() - started)


def reading_rates(paths: dict[str, Path], crops: np.ndarray) -> dict[str, dict[int, float]]:
    """Crops a second of each file, on one thread and on every core of this machine."""
    cores = os.cpu_count() or 1
    return {name: {threads: crops_per_second(path, crops, threads) for threads in sorted({1, cores})}
            for name, path in paths.items()}  # fmt: skip


class OnnxReader:
    """An exported file as what `jersey-cls predict --onnx_file` answers with: uint8 crops in, probabilities out,
    through ONNX Runtime. The file must be the checkpoint's export: labels.json beside it names the same classes
    and input."""

    def __init__(self, path: Path, class_names: list[str], input_shape: list[int]) -> None:
        onnxruntime = _onnxruntime()
        labels_path = path.with_name("labels.json")
        fix = "give a model.onnx or model.int8.onnx that `jersey-cls export` wrote from this --ckpt_path"
        try:
            labels = json.loads(labels_path.read_text())
            names, shape = labels["class_names"], labels["input_shape"]
            if not (isinstance(names, list) and isinstance(shape, list)):
                raise TypeError("class_names and input_shape must be lists")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise JerseyInputError(f"--onnx_file {path}: cannot read {labels_path} ({error}): {fix}") from None
        if names != list(class_names) or shape != list(input_shape):
            raise JerseyInputError(
                f"--onnx_file {path}: {labels_path} names {len(names)} classes and input {shape}, the checkpoint "
                f"{len(class_names)} classes and input {list(input_shape)}: {fix}"
            )
        options = onnxruntime.SessionOptions()
        # Between batches its threads would spin, on the cores the loader's workers decode the next batch with.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own kinds for a missing, truncated or foreign file
            raise JerseyInputError(f"--onnx_file {path}: ONNX Runtime cannot load it ({error}): {fix}") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        expected = ([("images", "tensor(uint8)", [3, *input_shape])], [("probabilities", len(class_names))])
        found = ([(i.name, i.type, list(i.shape[1:])) for i in inputs], [(o.name, o.shape[-1]) for o in outputs])
        if found != expected:
            raise JerseyInputError(
                f"--onnx_file {path}: its graph takes {found[0]} and gives {found[1]}, not uint8 images of "
                f"{[3, *input_shape]} in and {len(class_names)} probabilities out: {fix}"
            )
        self.path = path

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(["probabilities"], {"images": images.cpu().numpy()})[0])
