"""JerseyTrainer: Lightning's Trainer plus the `export` subcommand."""

from pathlib import Path
from typing import Literal

import lightning.pytorch as pl
import torch

from jersey_cls.errors import JerseyInputError
from jersey_cls.export import export_onnx, validation_crops


class JerseyTrainer(pl.Trainer):
    def export(
        self,
        model: pl.LightningModule,
        datamodule: pl.LightningDataModule | None = None,
        ckpt_path: str | None = None,
        format: Literal["onnx"] = "onnx",
    ) -> dict:
        """Export a checkpoint to <default_root_dir>/export/: model.onnx, checked against PyTorch, and labels.json.

        Args:
            model: The model, built from the checkpoint's hyperparameters.
            datamodule: Supplies the validation crops that the export is checked on.
            ckpt_path: Checkpoint to export (its weights are the EMA weights when EMA was on).
            format: Export format. ONNX is the one supported.
        """
        if ckpt_path is None:
            raise JerseyInputError("export needs --ckpt_path CKPT, e.g. runs/jersey/checkpoints/last.ckpt")
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        model.load_state_dict(checkpoint["state_dict"])
        image_size = datamodule.hparams.image_size
        result = export_onnx(model, validation_crops(datamodule), Path(self.default_root_dir) / "export", image_size)
        print(
            f"jersey-cls: exported {ckpt_path} to {result['onnx_path']} ({result['onnx_bytes'] / 1e6:.1f} MB); "
            f"ONNX Runtime vs PyTorch on {result['parity_crops']} validation crops: max |logit diff| "
            f"{result['max_abs_logit_diff']:.1e}, same top-1 on {result['top1_agree']}/{result['parity_crops']}"
        )
        return result
