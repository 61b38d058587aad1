"""JerseyTrainer: Lightning's Trainer plus the `export` subcommand and DDP-safe stop requests."""

from pathlib import Path
from typing import Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.trainer.connectors.signal_connector import _SignalConnector

from jersey_cls.errors import JerseyInputError
from jersey_cls.export import export_onnx, validation_crops


class StopRequests(_SignalConnector):
    """SIGTERM (and a first Ctrl-C) as a request to stop after the current step, safe under DDP.

    Lightning 2.6's handler broadcasts from inside the signal handler, at whatever point each rank is in, and
    each rank then stops on its own flag: ranks signalled at different moments wait on each other forever. Here
    the handler only records the request; with several ranks, LastCheckpoint makes all of them adopt it
    together (``agree``) at points every rank passes in step."""

    requested = False

    def register_signal_handlers(self) -> None:
        self.requested = False
        super().register_signal_handlers()

    def _sigterm_notifier_fn(self, signum, frame) -> None:
        if not self.requested and self.trainer.strategy.launcher is not None:
            self.trainer.strategy.launcher.kill(signum)  # the processes this one launched get it too
        self.request_stop()

    def request_stop(self) -> None:
        self.requested = True
        if self.trainer.world_size == 1:
            self.received_sigterm = True

    def agree(self) -> None:
        """Every rank calls this at the same point: a request on any rank becomes a stop on all of them."""
        if self.trainer.world_size > 1 and torch.distributed.is_initialized():
            flag = torch.tensor([float(self.requested)], device=self.trainer.strategy.root_device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            if flag.item():
                self.requested = self.received_sigterm = True


class JerseyTrainer(pl.Trainer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._signal_connector = StopRequests(self)

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
        result = export_onnx(model, validation_crops(datamodule), Path(self.default_root_dir) / "export")
        print(
            f"jersey-cls: exported {ckpt_path} to {result['onnx_path']} ({result['onnx_bytes'] / 1e6:.1f} MB); "
            f"ONNX Runtime vs PyTorch on {result['parity_crops']} validation crops: max |probability diff| "
            f"{result['max_abs_diff']:.1e}, same top-1 on {result['top1_agree']}/{result['parity_crops']}"
        )
        return result
