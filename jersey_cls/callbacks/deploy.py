"""ExportOnFitEnd: when fit ends, export the best checkpoint to ONNX (checked) and write the model card."""

import shlex
import sys
import warnings
from pathlib import Path

import lightning.pytorch as pl

from jersey_cls.callbacks.ema import EMA
from jersey_cls.checkpoints import read_checkpoint
from jersey_cls.errors import JerseyInputError, JerseyWarning
from jersey_cls.export import export_onnx, validation_crops
from jersey_cls.model_card import count_flops, dataset_summary, write_model_card
from jersey_cls.trainer import load_model


class ExportOnFitEnd(pl.Callback):
    def __init__(self, onnx: bool = True) -> None:
        """Write ``<run>/export/model.onnx`` + ``labels.json`` and ``<run>/model_card.md`` from the best checkpoint.

        Args:
            onnx: Export to ONNX and check it against PyTorch (needs `pip install 'jersey-cls[export]'`).
        """
        super().__init__()
        self.onnx = onnx

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        log_dir = trainer.log_dir  # a broadcast under DDP: every rank must ask
        if not trainer.is_global_zero or trainer.checkpoint_callback is None:
            return
        run = Path(trainer.default_root_dir)
        best = trainer.checkpoint_callback
        if not (best.best_model_path or best.last_model_path):
            warnings.warn(
                "no model card or export: fit stopped before its first validation saved a model",
                JerseyWarning,
                stacklevel=1,
            )
            return
        path = best.best_model_path or best.last_model_path
        model = load_model(path)
        image_size = model.hparams.image_size
        export = None
        if self.onnx:
            try:
                export = export_onnx(model, validation_crops(trainer.datamodule), run / "export")
            except JerseyInputError as error:
                warnings.warn(f"skipping the ONNX export: {error}", JerseyWarning, stacklevel=1)
        config_file = Path(log_dir or run) / "config.yaml"
        card = write_model_card(
            run / "model_card.md",
            {
                "backbone": model.hparams.backbone,
                "pretrained": pl_module.hparams.pretrained,
                "parameters": sum(p.numel() for p in model.parameters()),
                "flops": count_flops(model.net, image_size),
                "image_size": image_size,
                "best_acc": float(best.best_model_score) if best.best_model_score is not None else float("nan"),
                "best_epoch": read_checkpoint(Path(path))["epoch"],
                "best_checkpoint": best.best_model_path,
                "ema": any(isinstance(cb, EMA) and cb.enabled for cb in trainer.callbacks),
                "export": export,
                "class_names": model.class_names,
                "dataset_summary": dataset_summary(run),
                "command": shlex.join(["jersey-cls", *sys.argv[1:]]),
                "config": config_file.read_text() if config_file.is_file() else "(not saved)",
            },
        )
        print(f"jersey-cls: model card {card}" + (f", ONNX {export['onnx_path']}" if export else ""))
