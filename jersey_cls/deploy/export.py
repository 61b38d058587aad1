"""ExportOnnx: the best checkpoint as <run>/export/model.onnx when fit ends (and `jersey-cls export`'s settings),
checked against PyTorch; with int8, model.int8.onnx beside it, calibrated and checked on val crops."""

import json
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch

from jersey_cls.deploy.onnx import ExportParityError, export_onnx, quantize_int8, reading_rates, validation_crops
from jersey_cls.messages import JerseyInputError, JerseyWarning
from jersey_cls.model import JerseyClassifier
from jersey_cls.training.checkpoints import best_of, load_model

PARITY_CROPS = 64


class ExportOnnx(pl.Callback):
    def __init__(
        self, enabled: bool = True, int8: bool = False, calibration_crops: int = 512, int8_max_drop: float = 1.0
    ) -> None:
        """When fit ends, export the best checkpoint to ``<run>/export/model.onnx`` and ``labels.json``, checked
        against PyTorch on validation crops. `jersey-cls export` takes the same settings.

        Args:
            enabled: Export. Needs onnx and onnxruntime (`pip install 'jersey-cls[export]'`); without them fit
                warns and goes on.
            int8: Also write ``model.int8.onnx``: about a quarter of the size and several times the crops a
                second on a CPU, same inputs and outputs (docs/deploy.md).
            calibration_crops: Validation crops the int8 model's ranges are calibrated on and its accuracy is
                checked on.
            int8_max_drop: Points of val top-1 the int8 model may lose against fp32; more, and it is refused.
        """
        super().__init__()
        self.result: dict | None = None  # what the last export wrote, checked and measured
        if calibration_crops < 1:
            raise JerseyInputError(f"--onnx.calibration_crops {calibration_crops}: give a count of 1 or more")
        if int8_max_drop < 0:
            raise JerseyInputError(f"--onnx.int8_max_drop {int8_max_drop}: give points of top-1, 0 or more")
        self.enabled, self.int8 = enabled, int8
        self.calibration_crops, self.int8_max_drop = calibration_crops, int8_max_drop

    def export(self, model: JerseyClassifier, datamodule: pl.LightningDataModule, out: Path) -> dict:
        """``model`` as ONNX files in ``out`` (see the class); ``export.json`` there records what was checked and
        measured."""
        count = max(PARITY_CROPS, self.calibration_crops) if self.int8 else PARITY_CROPS
        try:
            crops, targets = validation_crops(datamodule, count)
        except JerseyInputError as error:
            raise self.without_val_crops(error) from None
        result = export_onnx(model, crops[:PARITY_CROPS], out)
        for stale in ("model.int8.onnx", "export.json"):  # of earlier weights: never beside the new model.onnx
            (out / stale).unlink(missing_ok=True)
        files, refused = {"model.onnx": Path(result["onnx_path"])}, None
        if self.int8:
            crops, targets = crops[: self.calibration_crops], targets[: self.calibration_crops]
            with torch.no_grad():
                answers = torch.cat([model(batch) for batch in crops.split(64)]).numpy()
            try:
                result |= quantize_int8(files["model.onnx"], crops.numpy(), targets.numpy(), answers,
                                        self.int8_max_drop)  # fmt: skip
                files["model.int8.onnx"] = Path(result["int8_path"])
            except ExportParityError as error:
                refused, result["int8_refused"] = error, str(error)
        result["crops_per_second"] = reading_rates(files, crops[:PARITY_CROPS].numpy())
        (out / "export.json").write_text(json.dumps(result, indent=2))
        self.result = result
        if refused is not None:
            raise refused
        return result

    def without_val_crops(self, error: JerseyInputError) -> JerseyInputError:
        """The error of an export whose val crops cannot be read, with what int8 needs them for."""
        if not self.int8:
            return error
        return JerseyInputError(
            f"{error}\nThe int8 model is calibrated on the run's val crops (--onnx.calibration_crops "
            f"{self.calibration_crops}), and would be uncalibrated without them: point --data.data_root at the "
            "run's data, or export without --onnx.int8."
        )

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        best = best_of(trainer)
        if not self.enabled or not trainer.is_global_zero or best is None:
            return
        try:
            self.export(load_model(best.best_model_path), trainer.datamodule, Path(trainer.default_root_dir) / "export")
        except (JerseyInputError, ExportParityError) as error:
            kept = " (model.onnx is written)" if self.result else ""
            warnings.warn(f"skipping the ONNX export{kept}: {error}", JerseyWarning, stacklevel=1)


def export_lines(result: dict) -> list[str]:
    """What an export wrote and measured, one line a file, for the console and the model card."""

    def rates(name: str) -> str:
        rate = result["crops_per_second"][name]
        threads = ", ".join(f"{count} thread{'s' * (int(count) > 1)} {rate[count]:.0f}" for count in sorted(rate))
        return f"crops a second on the machine that exported it: {threads}"

    lines = [
        f"model.onnx: {result['onnx_bytes'] / 1e6:.1f} MB; ONNX Runtime vs PyTorch on {result['parity_crops']} "
        f"validation crops: max |probability diff| {result['max_abs_diff']:.1e}, same top-1 on "
        f"{result['top1_agree']}/{result['parity_crops']}; {rates('model.onnx')}"
    ]
    if "int8_refused" in result:
        lines.append(f"model.int8.onnx: refused: {result['int8_refused']}")
    if "int8_path" in result:
        lines.append(
            f"model.int8.onnx: {result['int8_bytes'] / 1e6:.1f} MB ({result['int8_bytes'] / result['onnx_bytes']:.2f}"
            f"x); val top-1 on {result['check_crops']} crops {result['int8_acc']:.4f} (fp32 {result['fp32_acc']:.4f}),"
            f" same top-1 as fp32 (predict's answers) on {result['agreement']:.1%}; {rates('model.int8.onnx')}"
        )
    return lines
