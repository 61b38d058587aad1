"""The jersey-cls command: LightningCLI wiring of the model, the data, the run folder and its checkpoints."""

import copy
import sys
from argparse import ArgumentError, RawDescriptionHelpFormatter
from importlib.resources import files
from pathlib import Path

import yaml
from jsonargparse import DefaultHelpFormatter
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from jersey_cls import __version__
from jersey_cls.cli.gpu import check_cuda
from jersey_cls.cli.hints import did_you_mean, moved
from jersey_cls.cli.interrupt import Interrupts
from jersey_cls.cli.trainer import JerseyTrainer
from jersey_cls.cli.wandb_run import drop_wandb_if_missing, keep_wandb_run, start_wandb_or_continue_without
from jersey_cls.data.datamodule import JerseyDataModule
from jersey_cls.deploy import ExportOnnx, PredictionWriter
from jersey_cls.deploy.onnx import ExportParityError
from jersey_cls.lightning_internals import NoCheckpointHyperparameters
from jersey_cls.messages import JerseyInputError, TrainingDiverged, jersey_console, say
from jersey_cls.model import JerseyClassifier
from jersey_cls.model.heads import all_numbers
from jersey_cls.training import EMA, LastCheckpoint, Relabel, resume
from jersey_cls.training.checkpoints import read_checkpoint, resolve
from jersey_cls.training.run_folder import check_room, configured, fill_run_paths, is_configured
from jersey_cls.training.run_lock import RunLock
from jersey_cls.training.start import load_start_weights

DESCRIPTION = """jersey-cls trains the classifier that reads basketball jersey numbers from player crops.

commands:
  fit       train a model; with --ckpt_path last the same command starts a run or resumes it
  validate  score a checkpoint on its data's val split
  test      score a checkpoint on its data's test split
  predict   read crops, folders, splits or SoccerNet tracklets with a checkpoint
  export    write a checkpoint as an ONNX model, checked against PyTorch
  audit     list the labels of train, val and test that are probably wrong

Start with `jersey-cls fit --config configs/base.yaml`; `jersey-cls fit --help` lists every flag."""


class HelpFormatter(RawDescriptionHelpFormatter, DefaultHelpFormatter):
    """jsonargparse's help, with the description's lines kept as written."""


class JerseySaveConfig(SaveConfigCallback):
    """Saves the config into the run's log version folder and sends it to W&B as the run config."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_hyperparams({"config": self.config.as_dict()})


class JerseyCLI(NoCheckpointHyperparameters, LightningCLI):
    def __init__(self, *args, interrupts: Interrupts | None = None, lock: RunLock | None = None, **kwargs) -> None:
        self.interrupts = interrupts or Interrupts()
        self.lock = lock or RunLock()
        super().__init__(*args, **kwargs)

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {**LightningCLI.subcommands(), "export": {"model", "datamodule"}, "audit": {"model", "datamodule"}}

    def init_parser(self, **kwargs):
        parser = super().init_parser(**kwargs)
        parser.add_argument("--version", action="version", version=f"jersey-cls {__version__}")
        return parser

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        parser.link_arguments("data.class_weights", "model.class_weights", apply_on="instantiate")
        parser.link_arguments("data.input_shape", "model.input_shape", apply_on="instantiate")
        # int(): jsonargparse's PositiveInt would reach the model's config dump, which YAML cannot write.
        parser.link_arguments("data.image_size", "model.image_size", compute_fn=int)
        parser.link_arguments("model.head", "data.all_numbers", compute_fn=all_numbers)
        # Sections of their own rather than trainer.callbacks entries, so --ema.enabled false and
        # --predictions.format jsonl work as flags (list items cannot be addressed from the command line).
        parser.add_lightning_class_args(EMA, "ema")
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")
        parser.add_lightning_class_args(ExportOnnx, "onnx")
        parser.add_lightning_class_args(PredictionWriter, "predictions")
        parser.add_lightning_class_args(Relabel, "relabel")

    def parse_arguments(self, parser, args) -> None:
        """Parse, then settle the checkpoint: ``best`` and ``last`` become files of the run folder; evaluation
        takes the model and its data from the checkpoint; a resume is checked against it."""
        self.args = list(sys.argv[1:] if args is None else args)
        check_config_files(self.args)
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as error:  # no usage dump: the message, and what was probably meant
            hints = did_you_mean(parser, self.args, str(error), list(self.subcommands())) + moved(str(error))
            raise JerseyInputError(f"{error}{hints}") from None
        self.checkpoint, self.starts_fresh = None, False
        subcommand = self.config.get("subcommand")
        if subcommand is None:
            return
        config = self.config[subcommand]
        explicit = {arg[2:].split("=")[0] for arg in self.args if arg.startswith("--")}
        path = resolve(config.ckpt_path, Path(config.trainer.default_root_dir or "."), subcommand)
        self.starts_fresh = config.ckpt_path == "last" and path is None
        config.ckpt_path = None if path is None else str(path)
        if path is not None:
            resume.adopt_run_folder(config, path, explicit)
        if subcommand == "fit":  # the run folder the fit writes, once a checkpoint elsewhere has moved it there
            self.lock.acquire(Path(config.trainer.default_root_dir or "."))
        if path is None:
            return
        self.checkpoint = read_checkpoint(path)
        if subcommand == "fit":
            resume.check_resumable(path, self.checkpoint)
            if config.model.head == "auto":  # a resume continues with the head the run chose when it started
                config.model.head = self.checkpoint["hyper_parameters"]["head"]
                config.data.all_numbers = all_numbers(config.model.head)
            resume.refuse(path, resume.resume_refusals(self.checkpoint, config))
        else:
            for note in resume.adopt(config, self.checkpoint, path, explicit, trains=subcommand == "audit"):
                say(f"jersey-cls: note: {note}")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        check_cuda(config.trainer.accelerator)
        self.config_to_save = copy.deepcopy(config)  # with the run's paths unset, so it moves with the run
        fill_run_paths(config)
        if config.data.data_root:  # checkpoints record where their data is, wherever a later command runs
            config.data.data_root = str(Path(config.data.data_root).expanduser().resolve())
        drop_wandb_if_missing(config)
        keep_wandb_run(config, resuming=config.get("ckpt_path") is not None)
        if config.trainer.enable_progress_bar is False and config.trainer.callbacks:
            # base.yaml's RichProgressBar would make Lightning refuse the flag; the flag wins.
            callbacks = configured(config.trainer.callbacks)
            config.trainer.callbacks = [spec for spec in callbacks if not is_configured(spec, ProgressBar)]

    def _before_any(self) -> None:
        for callback in self.trainer.callbacks:
            if isinstance(callback, JerseySaveConfig):
                callback.config = self.config_to_save
        start_wandb_or_continue_without(self.trainer)

    def before_fit(self) -> None:
        self.interrupts.watch(self.trainer)
        weights = sum(p.numel() * p.element_size() for p in self.model.parameters())
        check_room(Path(self.trainer.default_root_dir), weights)  # every rank: one refusing alone would hang DDP
        if self.checkpoint is not None:
            now = {
                "batch_size": self.datamodule.hparams.batch_size,
                "world_size": self.trainer.world_size,
                "accumulate_grad_batches": self.trainer.accumulate_grad_batches,
                "ema": self.config.fit.ema.enabled,
                "augment_on": self.datamodule.augmentation_place(self.trainer.strategy.root_device),
                "input_shape": self.datamodule.input_shape,
                "bags": self.datamodule.bags,
                "bag_size": self.datamodule.hparams.bag_size if self.datamodule.bags else None,
            }
            refusals = resume.exactness_refusals(self.checkpoint, now, self.datamodule.class_names)
            resume.refuse(self.config.fit.ckpt_path, refusals)
            say(f"jersey-cls: resuming from {self.config.fit.ckpt_path}")
        else:  # a new run: every weight of a resume comes from its checkpoint instead
            if self.starts_fresh:
                say(f"jersey-cls: no checkpoint under {self.trainer.default_root_dir}; starting a new run")
            self.model.started_from = load_start_weights(self.model)
        self._before_any()

    def before_validate(self) -> None:
        self._before_any()

    def before_test(self) -> None:
        self._before_any()

    def before_predict(self) -> None:
        self._before_any()


def check_config_files(args: list[str]) -> None:
    """Each --config file is a YAML mapping: jsonargparse's own refusal of an empty or list-shaped one does not
    name the file."""
    for i, arg in enumerate(args):
        given = args[i + 1] if arg == "--config" and i + 1 < len(args) else arg.partition("=")[2]
        if not (arg == "--config" or arg.startswith("--config=")) or not given or given.lstrip().startswith("{"):
            continue  # a config given inline (--config '{...}') is jsonargparse's to read
        path = Path(given)
        if not path.is_file():
            continue  # jsonargparse says so, naming it
        try:
            content = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise JerseyInputError(f"--config {path}: not valid YAML{where} ({str(error).splitlines()[0]}).") from None
        if not isinstance(content, dict) or not content:
            kind = "is empty" if not content else f"holds a YAML {type(content).__name__}"
            raise JerseyInputError(
                f"--config {path} {kind}, not a mapping of settings (such as `trainer:` and `data:` sections, as in "
                "configs/base.yaml). Give the settings as `key: value` lines, or drop the file."
            )


def main(args: list[str] | None = None) -> None:
    """Run the jersey-cls command line; ``args`` replaces sys.argv[1:] for in-process use."""
    given, args = args, list(sys.argv[1:] if args is None else args)
    interrupts, lock = Interrupts(), RunLock()
    # base.yaml's recipe is every command's defaults: a checkpoint alone is enough for validate or predict.
    base = str(files("jersey_cls.configs") / "base.yaml")
    defaults = {subcommand: {"default_config_files": [base]} for subcommand in JerseyCLI.subcommands()}
    try:
        with jersey_console():
            JerseyCLI(
                JerseyClassifier,
                JerseyDataModule,
                interrupts=interrupts,
                lock=lock,
                trainer_class=JerseyTrainer,
                seed_everything_default=42,
                save_config_callback=JerseySaveConfig,
                parser_kwargs={
                    "parser_mode": "omegaconf+",
                    "exit_on_error": False,
                    "description": DESCRIPTION,
                    "formatter_class": HelpFormatter,
                    **defaults,
                },  # fmt: skip
                args=given,
            )
    except JerseyInputError as error:
        say(f"jersey-cls: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except TrainingDiverged as error:
        say(f"jersey-cls: {error}", file=sys.stderr)
        raise SystemExit(3) from None
    except ExportParityError as error:
        say(f"jersey-cls: error: {error}", file=sys.stderr)
        raise SystemExit(4) from None
    except SIGTERMException:  # preemption or Ctrl-C: last.ckpt is written (save_on_exception)
        interrupts.print_resume_hint(args)
        raise SystemExit(interrupts.exit_code) from None
    except SystemExit as stop:  # Lightning exits with 1 after a second Ctrl-C
        if stop.code == 1 and interrupts.fit_started:
            interrupts.print_resume_hint(args, "Ctrl-C")
        raise
    finally:
        interrupts.release()
        lock.release()
        wandb = sys.modules.get("wandb")
        if getattr(wandb, "run", None) is not None:
            wandb.finish()  # so a second in-process run does not attach to this one
