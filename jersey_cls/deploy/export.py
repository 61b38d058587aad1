"""ExportOnnx: when fit ends, the best checkpoint as <run>/export/model.onnx, checked against PyTorch."""

import warnings
from pathlib import Path

import lightning.pytorch as pl

from jersey_cls.deploy.onnx import ExportParityError, export_onnx, validation_crops
from jersey_cls.messages import JerseyInputError, JerseyWarning
from jersey_cls.training.checkpoints import best_of, load_model


class ExportOnnx(pl.Callback):
    def __init__(self, enabled: bool = True) -> None:
        """When fit ends, export the best checkpoint to ``<run>/export/model.onnx`` and ``labels.json``, checked
        against PyTorch on validation crops.

        Args:
            enabled: Export. Needs onnx and onnxruntime (`pip install 'jersey-cls[export]'`); without them fit
                warns and goes on.
        """
        super().__init__()
        self.enabled = enabled
        self.result: dict | None = None

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        best = best_of(trainer)
        if not self.enabled or not trainer.is_global_zero or best is None:
            return
        try:
            model = load_model(best.best_model_path)
            out = Path(trainer.default_root_dir) / "export"
            self.result = export_onnx(model, validation_crops(trainer.datamodule), out)
        except (JerseyInputError, ExportParityError) as error:
            warnings.warn(f"skipping the ONNX export: {error}", JerseyWarning, stacklevel=1)
