"""TrainingCurves: loss and accuracy curves as PNG at the end of fit, from the CSV logs of every invocation."""

import csv
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.loggers import CSVLogger

from jersey_cls.evaluation.figures import save_curves

SERIES = ("train/loss", "val/loss", "train/acc_top1", "val/acc_top1")


def read_history(log_root: Path) -> dict[str, dict[int, float]]:
    """{series: {epoch: value}} over logs/version_*/metrics.csv; a resumed run's later version wins per epoch."""
    history: dict[str, dict[int, float]] = {name: {} for name in SERIES}
    versions = sorted(log_root.glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    for metrics_csv in versions:
        with open(metrics_csv, newline="") as f:
            for row in csv.DictReader(f):
                for name in SERIES:
                    if row.get(name) and row.get("epoch"):
                        history[name][int(row["epoch"])] = float(row[name])
    return history


class TrainingCurves(pl.Callback):
    """Write ``<run>/plots/loss.png`` and ``<run>/plots/accuracy.png`` when fit ends; needs a CSVLogger."""

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        csv_loggers = [logger for logger in trainer.loggers if isinstance(logger, CSVLogger)]
        if not trainer.is_global_zero or not csv_loggers:
            return
        csv_loggers[0].save()  # flush rows still buffered
        history = read_history(Path(csv_loggers[0].root_dir))
        plots = Path(trainer.default_root_dir) / "plots"
        save_curves(history, plots / "loss.png", "loss")
        save_curves(history, plots / "accuracy.png", "acc_top1")
