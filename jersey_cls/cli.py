"""The jersey-cls command: LightningCLI wiring of the model, the data and the run folder."""

import functools
import logging
import secrets
import shlex
import signal
import string
import sys
import warnings
from pathlib import Path

import torch
from jsonargparse import Namespace, set_parsing_settings
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from jersey_cls.callbacks import EMA, LastCheckpoint, PredictionWriter
from jersey_cls.data.datamodule import JerseyDataModule
from jersey_cls.errors import JerseyInputError, JerseyWarning, TrainingDiverged
from jersey_cls.model import JerseyClassifier
from jersey_cls.trainer import JerseyTrainer

WANDB_RUN_ID_FILE = Path("wandb") / "run_id"
FIT = {"started": False, "stopped_by": "SIGTERM"}  # how an interrupted fit says how to resume


class LightningNoise(logging.Filter):
    """Drops Lightning's advert for its cloud logger, and its note that base.yaml's RichModelSummary replaces the
    default summary: two lines of noise in every run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(("💡 Tip:", "Trainer already configured with model summary"))


LIGHTNING_NOISE = LightningNoise()
LIGHTNING_FORMAT = warnings.formatwarning  # installed by Lightning on import


def format_warning(message, category, filename, lineno, line=None) -> str:
    """Ours speak of the user's data or setup; a source location would point into Lightning's code."""
    if issubclass(category, JerseyWarning):
        return f"jersey-cls: warning: {message}\n"
    return LIGHTNING_FORMAT(message, category, filename, lineno, line)


def is_wandb_logger(logger) -> bool:
    return isinstance(logger, Namespace) and logger.class_path.endswith("WandbLogger")


def drop_wandb_if_missing(config: Namespace) -> None:
    """A configured WandbLogger without an importable wandb warns once and leaves local logging running."""
    loggers = config.trainer.logger if isinstance(config.trainer.logger, list) else [config.trainer.logger]
    if not any(is_wandb_logger(logger) for logger in loggers):
        return
    try:
        import wandb  # noqa: F401
    except ImportError as error:
        warnings.warn(
            f"W&B is configured but cannot be imported ({error}). Training goes on with local logs only. "
            "Fix: pip install wandb (it is pinned in requirements.lock).",
            JerseyWarning,
            stacklevel=1,
        )
        config.trainer.logger = [logger for logger in loggers if not is_wandb_logger(logger)]


def keep_wandb_run(config: Namespace, resuming: bool) -> None:
    """Give every WandbLogger in ``config`` the run id kept in the run folder, so a resume continues that W&B run.

    Lightning does not store the W&B id in checkpoints; without this, each resume would start a new W&B run.
    """
    if rank_zero_only.rank != 0:  # W&B logs from rank 0 only; other ranks must not rewrite the id file
        return
    loggers = config.trainer.logger if isinstance(config.trainer.logger, list) else [config.trainer.logger]
    for logger in loggers:
        if not is_wandb_logger(logger):
            continue
        if logger.init_args.get("id") or logger.init_args.get("version"):
            continue  # an id chosen by the user wins
        id_file = Path(config.trainer.default_root_dir or ".") / WANDB_RUN_ID_FILE
        if resuming and id_file.is_file():
            run_id = id_file.read_text().strip()
        else:
            run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
            id_file.parent.mkdir(parents=True, exist_ok=True)
            id_file.write_text(run_id + "\n")
        logger.init_args.id = run_id


def start_wandb_or_continue_without(trainer) -> None:
    """Start W&B runs now; when W&B cannot start (offline without WANDB_MODE, no login), warn once and go on."""
    kept = []
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            try:
                logger.experiment  # noqa: B018 - creating the run is the point
            except Exception as error:  # W&B raises many kinds (UsageError, CommError, OSError, ...)
                warnings.warn(
                    f"W&B could not start ({type(error).__name__}: {error}). Training goes on with local logs only. "
                    "Fix: `wandb login` or set WANDB_API_KEY; or set WANDB_MODE=offline and `wandb sync` later.",
                    JerseyWarning,
                    stacklevel=1,
                )
                continue
        kept.append(logger)
    trainer.loggers = kept


def stop_after_this_step(trainer, signum, frame) -> None:
    """First Ctrl-C: Lightning's SIGTERM path, so the step finishes, last.ckpt is saved and the resume is exact."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    FIT["stopped_by"] = "Ctrl-C"
    trainer._signal_connector.request_stop()
    print(
        "\njersey-cls: Ctrl-C: stopping after this step and saving last.ckpt. "
        "Ctrl-C again aborts at once (last.ckpt then keeps its previous save).",
        file=sys.stderr,
        flush=True,
    )


def read_checkpoint(path: Path) -> dict:
    """A jersey-cls checkpoint, loaded the safe way (weights_only); anything else is a clear error."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # torch raises several kinds for non-checkpoints and unsafe pickles
        raise JerseyInputError(
            f"--ckpt_path {path}: cannot be loaded as a PyTorch checkpoint ({type(error).__name__}). "
            "Give a .ckpt written by `jersey-cls fit`, e.g. runs/jersey/checkpoints/last.ckpt."
        ) from None
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, dict) or not {"class_names", "backbone"} <= hparams.keys():
        raise JerseyInputError(
            f"--ckpt_path {path}: not a jersey-cls checkpoint (it has no class_names/backbone hyperparameters). "
            "Give a .ckpt written by `jersey-cls fit`, e.g. runs/jersey/checkpoints/last.ckpt."
        )
    return checkpoint


def latest_checkpoint(config: Namespace) -> Path | None:
    """The newest last*.ckpt in the run's checkpoint folders: what Lightning's ``--ckpt_path last`` will pick."""
    folders = {
        Path(cb.init_args.dirpath)
        for cb in config.trainer.callbacks or []
        if cb.class_path.endswith("Checkpoint") and cb.init_args.get("dirpath")
    }
    folders.add(Path(config.last_checkpoint.dirpath))
    found = [p for folder in folders if folder.is_dir() for p in folder.glob("last*.ckpt")]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def refuse_resume(checkpoint, changed: list[str]) -> None:
    if changed:
        raise JerseyInputError(
            f"--ckpt_path {checkpoint}: refusing to resume, because the config changes what the checkpoint means:\n"
            + "\n".join(changed)
            + "\nResume with the checkpoint's values, or start a new run elsewhere with --trainer.default_root_dir."
        )


class JerseySaveConfig(SaveConfigCallback):
    """Saves the resolved config into the run's log version folder and sends it to W&B as the run config."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_hyperparams({"config": self.config.as_dict()})


class JerseyCLI(LightningCLI):
    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {**LightningCLI.subcommands(), "export": {"model", "datamodule"}}

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        parser.link_arguments("data.class_weights", "model.class_weights", apply_on="instantiate")
        parser.link_arguments("model.head", "data.all_numbers", compute_fn=lambda head: head == "digits")
        parser.link_arguments("data.image_size", "model.image_size")
        # Own sections rather than trainer.callbacks entries, so --ema.enabled false,
        # --last_checkpoint.every_n_minutes 5 and --predictions.format jsonl work as flags
        # (list items cannot be addressed from the command line).
        parser.add_lightning_class_args(EMA, "ema")
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")
        parser.add_lightning_class_args(PredictionWriter, "predictions")

    def _parse_ckpt_path(self) -> None:
        """Replaces LightningCLI's: a resume must match the checkpoint; evaluation and export adopt it.

        Lightning's version overwrites the model config with the checkpoint's hyperparameters, which would let
        `fit --ckpt_path` silently ignore `--model.backbone` and let `validate` rebuild the head from the data.
        """
        self._resume_class_names = None
        subcommand = self.config.get("subcommand")
        if not subcommand or not self.config[subcommand].get("ckpt_path"):
            return
        config = self.config[subcommand]
        path = Path(config.ckpt_path)
        if config.ckpt_path == "last" and subcommand == "fit":
            path = latest_checkpoint(config)
            if path is None:
                return
        elif not path.is_file():
            raise JerseyInputError(f"--ckpt_path {config.ckpt_path}: no such checkpoint file.")
        checkpoint = read_checkpoint(path)
        model_hparams = checkpoint["hyper_parameters"]
        if subcommand == "fit":
            meaning = {  # what a checkpoint's weights mean; other keys (max_epochs, lr, ...) may change
                "model.backbone": (model_hparams["backbone"], config.model.backbone),
                "model.head": (model_hparams.get("head", "classes"), config.model.head),
                "data.image_size": (model_hparams["image_size"], config.data.image_size),
            }
            changed = [f"  {key}: checkpoint {a!r}, config {b!r}" for key, (a, b) in meaning.items() if a != b]
            refuse_resume(path, changed)
            self._resume_class_names = list(model_hparams["class_names"])
            return
        # validate / test / predict / export: the checkpoint defines the model and its preprocessing.
        for key, value in model_hparams.items():
            if key in config.model and key not in ("class_names", "class_weights"):
                config.model[key] = value
        config.model.pretrained = False  # the weights come from the checkpoint
        config.data.class_names = list(model_hparams["class_names"])
        config.data.image_size = model_hparams["image_size"]

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        drop_wandb_if_missing(config)
        keep_wandb_run(config, resuming=config.get("ckpt_path") is not None)
        if config.trainer.enable_progress_bar is False and config.trainer.callbacks:
            # base.yaml's RichProgressBar would make Lightning refuse the flag; the flag wins.
            config.trainer.callbacks = [c for c in config.trainer.callbacks if not c.class_path.endswith("ProgressBar")]

    def before_fit(self) -> None:
        FIT["started"] = True
        signal.signal(signal.SIGINT, functools.partial(stop_after_this_step, self.trainer))
        if self._resume_class_names is not None and self._resume_class_names != self.datamodule.class_names:
            old, new = self._resume_class_names, self.datamodule.class_names
            refuse_resume(
                self.config.fit.ckpt_path,
                [
                    f"  data class list: checkpoint has {len(old)} classes, the data has {len(new)}; "
                    f"only in checkpoint: {sorted(set(old) - set(new))}, only in data: {sorted(set(new) - set(old))}"
                    + ("; same labels, different order" if set(old) == set(new) else "")
                ],
            )
        start_wandb_or_continue_without(self.trainer)
        # The train sampler resumes mid-epoch by itself (JerseyDataModule.state_dict), which Lightning cannot see.
        warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch")
        if self.config.fit.ckpt_path == "last":
            # Say it once, in our words, instead of Lightning's warning.
            warnings.filterwarnings("ignore", message=".*there is no last checkpoint available")
            found = [p for cb in self.trainer.checkpoint_callbacks for p in cb._find_last_checkpoints(self.trainer)]
            if found:
                warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
                say(f"jersey-cls: resuming from {max(found, key=lambda p: Path(p).stat().st_mtime)}")
            else:
                say(f"jersey-cls: no checkpoint under {self.trainer.default_root_dir}; starting a new run")

    def before_validate(self) -> None:
        start_wandb_or_continue_without(self.trainer)

    def before_test(self) -> None:
        start_wandb_or_continue_without(self.trainer)


@rank_zero_only  # said once, by rank 0, under DDP
def say(message: str, file=None) -> None:
    print(message, file=file or sys.stdout, flush=True)


def print_resume_hint(args: list[str] | None, reason: str) -> None:
    argv = list(sys.argv[1:] if args is None else args)
    if "--ckpt_path" in argv:
        i = argv.index("--ckpt_path")
        del argv[i : i + 2]
    command = shlex.join(["jersey-cls", *argv, "--ckpt_path", "last"])
    say(f"jersey-cls: stopped by {reason}; last.ckpt holds the latest step. Resume with:\n  {command}", sys.stderr)


def main(args: list[str] | None = None) -> None:
    """Run the jersey-cls command line; ``args`` replaces sys.argv[1:] for in-process use."""
    # omegaconf+ resolves ${trainer.default_root_dir} after all configs and flags are merged, so the
    # checkpoint and log folders follow the run folder; absolute-to-relative lets subcommands use it.
    set_parsing_settings(omegaconf_absolute_to_relative_paths=True)
    FIT.update(started=False, stopped_by="SIGTERM")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(LIGHTNING_NOISE)
    warnings.formatwarning = format_warning
    # Raised inside Lightning 2.6 under torch 2.14, once per run; nothing a user can act on.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    try:
        JerseyCLI(
            JerseyClassifier,
            JerseyDataModule,
            trainer_class=JerseyTrainer,
            seed_everything_default=42,
            save_config_callback=JerseySaveConfig,
            parser_kwargs={"parser_mode": "omegaconf+"},
            args=args,
        )
    except JerseyInputError as error:
        print(f"jersey-cls: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except TrainingDiverged as error:
        print(f"jersey-cls: {error}", file=sys.stderr)
        raise SystemExit(3) from None
    except SIGTERMException:  # preemption or Ctrl-C: last.ckpt is written (save_on_exception)
        print_resume_hint(args, FIT["stopped_by"])
        raise SystemExit(130 if FIT["stopped_by"] == "Ctrl-C" else 143) from None
    except SystemExit as stop:  # Lightning exits with 1 after a second Ctrl-C
        if stop.code == 1 and FIT["started"]:
            print_resume_hint(args, "Ctrl-C")
        raise
    finally:
        if FIT["started"]:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        wandb = sys.modules.get("wandb")
        if getattr(wandb, "run", None) is not None:
            wandb.finish()  # so a second in-process run does not attach to this one
