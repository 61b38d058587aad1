"""The run folder: one setting (``trainer.default_root_dir``) names a run, and every path left unset in the
config (checkpoint folders, log folders) is filled in under it, so a printed config moves with it."""

import importlib
import itertools
import shutil
import tempfile
from pathlib import Path

from jsonargparse import Namespace
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from jersey_cls.messages import JerseyInputError


class CSVLogs(CSVLogger):
    def __init__(
        self, save_dir: str | None = None, name: str = "logs", version: int | str | None = None, prefix: str = ""
    ) -> None:
        """Lightning's CSVLogger: metrics.csv and hparams.yaml in ``<save_dir>/<name>/version_N``.

        Args:
            save_dir: None: the run folder (``trainer.default_root_dir``).
            name: Folder of the versions; each invocation writes a new version.
            version: A fixed version instead of the next free number.
            prefix: Prefix for every metric name.
        """
        if save_dir is None:
            raise ValueError("CSVLogs needs save_dir; jersey-cls fills it in with the run folder")
        super().__init__(save_dir, name=name, version=version, prefix=prefix)


def configured(specs) -> list[Namespace]:
    """The class specs (class_path, init_args) of a config's logger or callbacks entry, a list or one."""
    return [spec for spec in (specs if isinstance(specs, list) else [specs]) if isinstance(spec, Namespace)]


def configured_class(spec: Namespace) -> type | None:
    """The class a spec names; None when it cannot be imported (jsonargparse reports that, not us)."""
    module, _, name = spec.class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def is_configured(spec: Namespace, kind: type) -> bool:
    cls = configured_class(spec)
    return cls is not None and issubclass(cls, kind)


def fill_run_paths(config: Namespace) -> None:
    """``<run>/checkpoints`` for checkpoint callbacks without a dirpath, ``<run>`` for loggers whose save_dir
    is unset; a path the config sets is kept."""
    run = config.trainer.default_root_dir or "."
    config.trainer.default_root_dir = run
    if "last_checkpoint" in config and config.last_checkpoint.dirpath is None:
        config.last_checkpoint.dirpath = str(Path(run) / "checkpoints")
    for spec in [*configured(config.trainer.callbacks or []), *configured(config.trainer.logger)]:
        init_args = spec.get("init_args") or Namespace()
        if is_configured(spec, ModelCheckpoint) and init_args.get("dirpath") is None:
            init_args.dirpath = str(Path(run) / "checkpoints")
        elif "save_dir" in init_args and init_args.save_dir in (None, "."):  # "." is WandbLogger's default
            init_args.save_dir = run
        spec.init_args = init_args


# What a fit writes, in multiples of the weights' bytes: last.ckpt (weights, their EMA, Adam's two moments) at
# most twice at once (the old one stays until the new one is in place), the best 3 checkpoints and a fourth
# while one replaces another, the ONNX export.
ROOM_IN_WEIGHTS = 2 * 4 + 4 + 1


def check_room(run: Path, weight_bytes: int) -> None:
    """Before a fit trains: its run folder can be written, and has room for what it will write."""
    try:
        run.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=run, prefix=".write-check-"):
            pass
    except OSError as error:
        raise JerseyInputError(
            f"cannot write the run folder {run}: {error.strerror}. Make it writable, or give the run another "
            "folder with --trainer.default_root_dir."
        ) from None
    need, free = ROOM_IN_WEIGHTS * weight_bytes, shutil.disk_usage(run).free
    if free < need:
        raise JerseyInputError(
            f"{run} has {free / 2**20:.0f} MB free, and this fit needs about {need / 2**20:.0f} MB: two copies of "
            f"last.ckpt while one replaces the other, the best checkpoints and the export, for "
            f"{weight_bytes / 2**20:.0f} MB of weights. Free some space, or give the run another folder with "
            "--trainer.default_root_dir."
        )


def report_folder(trainer) -> Path:
    """``<run>/reports/<checkpoint name>``: where validate and test write their reports."""
    return Path(trainer.default_root_dir) / "reports" / (Path(trainer.ckpt_path).stem if trainer.ckpt_path else "model")


def export_folder(run: Path, checkpoint: Path) -> Path:
    """``<run>/exports/<checkpoint name>``: the fit-end export keeps ``<run>/export`` to itself."""
    return run / "exports" / checkpoint.stem


def predictions_file(run: Path, stem: str, fmt: str) -> Path:
    """``<run>/predictions/<stem>.<fmt>``, or with ``-2``, ``-3``, ... when that name is taken: an earlier
    prediction is never overwritten. The file is created here, so two predicts never pick the same name."""
    folder = run / "predictions"
    folder.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        path = folder / (f"{stem}.{fmt}" if n == 1 else f"{stem}-{n}.{fmt}")
        try:
            path.open("x").close()
            return path
        except FileExistsError:
            continue
