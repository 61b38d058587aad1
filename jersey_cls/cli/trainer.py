"""JerseyTrainer: Lightning's Trainer plus the `export` and `audit` subcommands and DDP-safe stop requests."""

from pathlib import Path

import lightning.pytorch as pl

from jersey_cls import lightning_internals as internals
from jersey_cls.deploy.export import ExportOnnx, export_lines
from jersey_cls.deploy.onnx import OnnxReader
from jersey_cls.evaluation.audit import run_audit
from jersey_cls.messages import JerseyInputError, say
from jersey_cls.model import JerseyClassifier
from jersey_cls.training.checkpoints import read_checkpoint
from jersey_cls.training.run_folder import export_folder


class JerseyTrainer(pl.Trainer):
    def __init__(self, *args, **kwargs) -> None:
        # JerseyDataModule gives each rank its share of every epoch itself, in an order a resume can continue;
        # Lightning's distributed sampler would shard those shares again.
        kwargs["use_distributed_sampler"] = False
        super().__init__(*args, **kwargs)
        internals.install_stop_requests(self)

    def on_one_device(self, command: str) -> None:
        """Refuses ``command`` under DDP: every rank would read every input and write the same files."""
        if self.world_size > 1:
            raise JerseyInputError(f"{command} runs on one device: add --trainer.devices 1 (and no ddp.yaml)")

    def export(
        self, model: JerseyClassifier, datamodule: pl.LightningDataModule | None = None, ckpt_path: str | None = None
    ) -> dict:
        """Export a checkpoint to <default_root_dir>/exports/<checkpoint name>/: model.onnx, checked against
        PyTorch on validation crops of the checkpoint's data, labels.json, and with --onnx.int8 true
        model.int8.onnx, calibrated and checked on them.

        Args:
            model: The model, built from the checkpoint's hyperparameters.
            datamodule: Supplies the validation crops that the export is checked on.
            ckpt_path: Checkpoint to export: a path, best or last.
        """
        if ckpt_path is None:
            raise JerseyInputError("export needs --ckpt_path: a checkpoint file, best or last")
        self.on_one_device("export")
        checkpoint = read_checkpoint(Path(ckpt_path))
        model.load_state_dict(checkpoint["state_dict"])
        model.on_load_checkpoint(checkpoint)
        settings = next((c for c in self.callbacks if isinstance(c, ExportOnnx)), None) or ExportOnnx()
        try:
            datamodule.prepare_data()
            datamodule.setup("validate")
        except JerseyInputError as error:
            raise settings.without_val_crops(error) from None
        out = export_folder(Path(self.default_root_dir), Path(ckpt_path))
        try:
            return settings.export(model, datamodule, out)
        finally:
            if settings.result is not None:  # model.onnx, also when the int8 file is refused
                say(f"jersey-cls: exported {ckpt_path} to {out}")
                for line in export_lines(settings.result):
                    say(f"  {line}")

    def predict(
        self,
        model: JerseyClassifier | None = None,
        dataloaders=None,
        datamodule: pl.LightningDataModule | None = None,
        return_predictions: bool | None = None,
        ckpt_path: str | None = None,
        onnx_file: Path | None = None,
    ):
        """Read crops and player tracks (Lightning's predict, written by --predictions).

        Args:
            model: The model, built from the checkpoint's hyperparameters.
            datamodule: The crops to read: --data.predict_path.
            ckpt_path: The trained model: a path, best or last.
            onnx_file: Answer with this export of the checkpoint (model.onnx or model.int8.onnx), through ONNX
                Runtime, instead of PyTorch; the checkpoint still gives the classes, the input and the track rule.
        """
        self.on_one_device("predict")
        if onnx_file is not None:
            model.reader = OnnxReader(Path(onnx_file), model.class_names, model.input_shape)
        return super().predict(model, dataloaders, datamodule, return_predictions, ckpt_path)

    def audit(
        self,
        model: JerseyClassifier,
        datamodule: pl.LightningDataModule | None = None,
        ckpt_path: str | None = None,
        folds: int = 4,
        fold_epochs: int | None = None,
    ) -> Path:
        """Find the labels of train, val and test that are probably wrong, by confident learning on out-of-sample
        probabilities: <default_root_dir>/audit/suspect_labels.csv (most suspect first, with where each label is
        written) and suspect_labels.png (the first 48, captioned given -> suggested).

        Args:
            model: The model, built from the checkpoint's hyperparameters.
            datamodule: The data whose labels are audited: its train, val and test splits.
            ckpt_path: The trained model, which reads val and test: a path, best or last.
            folds: Train's crops are read by this many models, each trained on the other folds (cross-fitting),
                so that no crop is read by a model that learnt its label.
            fold_epochs: Epochs each fold's model trains; None: --trainer.max_epochs. The folds train with the
                checkpoint's model and data settings and this command's --trainer settings: give audit the
                --config files the fit had.
        """
        if ckpt_path is None:
            raise JerseyInputError("audit needs --ckpt_path: a checkpoint file, best or last")
        self.on_one_device("audit")
        if folds < 2:
            raise JerseyInputError(f"--folds {folds}: cross-fitting needs at least 2 folds")
        epochs = self.max_epochs if fold_epochs is None else fold_epochs
        if epochs is None or epochs < 1:
            raise JerseyInputError(f"--fold_epochs {fold_epochs}: give the epochs each fold's model trains (1 or more)")
        return run_audit(self, model, datamodule, Path(ckpt_path), folds, epochs)
