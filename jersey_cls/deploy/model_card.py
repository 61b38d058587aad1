"""ModelCard: at the end of fit, <run>/model_card.md: what a deployed model is, what it was trained on, how well
it reads and how far its confidence can be trusted, and how to make it again."""

import json
import shlex
import sys
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.flop_counter import FlopCounterMode

from jersey_cls.deploy.export import ExportOnnx, export_lines
from jersey_cls.evaluation.calibrate import Calibrate
from jersey_cls.messages import JerseyWarning, say
from jersey_cls.training.checkpoints import best_of, load_model, read_checkpoint
from jersey_cls.training.ema import EMA


def count_flops(net: torch.nn.Module, shape: list[int]) -> int:
    """Forward FLOPs for one crop (a multiply-add counts as 2)."""
    was_training = net.training
    net.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 3, *shape, device=next(net.parameters()).device))
    net.train(was_training)
    return counter.get_total_flops()


def write_model_card(path: Path, facts: dict) -> Path:
    """Render ``facts`` (see the keys used below) as Markdown."""
    summary = facts.get("dataset_summary") or {}
    export = facts.get("export") or {}
    lines = [
        f"# Jersey-number classifier: {facts['backbone']}",
        "",
        "| | |",
        "|---|---|",
        f"| backbone | `{facts['backbone']}` (timm) |",
        f"| head | {facts['head']} |",
        f"| started from | {facts['started_from']} |",
        f"| parameters | {facts['parameters']:,} |",
        f"| FLOPs per crop | {facts['flops'] / 1e9:.3f} GFLOPs at {'x'.join(map(str, facts['input_shape']))} "
        "(height x width) |",
        f"| best val/acc_top1 | {facts['best_acc']:.4f} at epoch {facts['best_epoch']} |",
        f"| best checkpoint | `{facts['best_checkpoint']}` |",
        f"| EMA weights | {facts['ema']} |",
    ]
    calibration = facts.get("calibration")
    if calibration:
        ece = ", ".join(f"{name} {value:.3f}" for name, value in calibration["ece"].items())
        lines += [
            f"| calibration | temperature {calibration['temperature']:.3f}, fitted on val; expected calibration "
            f"error {ece}; `{calibration['png']}` |"
        ]
    if export:
        lines += [f"| ONNX | `{Path(export['onnx_path']).parent}` |"]
        lines += [f"| {line.split(': ', 1)[0]} | {line.split(': ', 1)[1]} |" for line in export_lines(export)]
    lines += ["", f"## Classes ({len(facts['class_names'])})", "", " ".join(f"`{c}`" for c in facts["class_names"])]
    if summary:
        lines += [
            "",
            "## Training data",
            "",
            f"- data: `{summary.get('data_root')}` ({', '.join(f'{k}: {v}' for k, v in summary['layout'].items())})",
            f"- images: {', '.join(f'{k} {v}' for k, v in summary['images'].items())}",
            f"- class imbalance in train (largest/smallest): {summary['imbalance_ratio']:.1f}x",
        ]
        lines += [f"- classes missing from {k}: {' '.join(v)}" for k, v in summary["missing_from"].items() if v]
    lines += [
        "",
        "## Reproduce",
        "",
        "```bash",
        facts["command"],
        "```",
        "",
        "## Config",
        "",
        "```yaml",
        facts["config"].rstrip(),
        "```",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def dataset_summary(run_dir: Path) -> dict:
    path = run_dir / "dataset_summary.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def callback_of(trainer: pl.Trainer, kind: type):
    return next((callback for callback in trainer.callbacks if isinstance(callback, kind)), None)


def calibration_of(path: Path, run: Path) -> dict | None:
    """``<run>/calibration.json`` when it describes the temperature the checkpoint holds: a fit resumed after its
    last epoch goes straight to its end, and the calibration is the one the first fit made."""
    recorded = run / "calibration.json"
    if not recorded.is_file():
        return None
    calibration = json.loads(recorded.read_text())
    temperature = float(read_checkpoint(path)["state_dict"]["temperature"])
    return calibration if abs(calibration["temperature"] - temperature) < 1e-6 else None


class ModelCard(pl.Callback):
    """At the end of fit, ``<run>/model_card.md``: backbone, start, size, FLOPs, classes, data, best accuracy,
    calibration, export, the command and the config."""

    def __init__(self) -> None:
        super().__init__()
        self._log_dir: str | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._log_dir = trainer.log_dir  # a broadcast under DDP: asked here, where every rank asks at once

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or not trainer.is_global_zero:
            return
        if (best := best_of(trainer)) is None:
            warnings.warn("fit ended with no checkpoint to deploy: no model card", JerseyWarning, stacklevel=1)
            return
        path, run = Path(best.best_model_path), Path(trainer.default_root_dir)
        model = load_model(path)
        config_file = Path(self._log_dir or run) / "config.yaml"
        calibrate, export = callback_of(trainer, Calibrate), callback_of(trainer, ExportOnnx)
        ema = callback_of(trainer, EMA)
        card = write_model_card(
            run / "model_card.md",
            {
                "backbone": model.hparams.backbone,
                "head": f"{model.hparams.head} ({pl_module.head_choice})",
                "started_from": pl_module.started_from,
                "parameters": sum(p.numel() for p in model.parameters()),
                "flops": count_flops(model.net, model.input_shape),
                "input_shape": model.input_shape,
                "best_acc": float(best.best_model_score) if best.best_model_score is not None else float("nan"),
                "best_epoch": read_checkpoint(path)["epoch"],
                "best_checkpoint": str(path),
                "ema": ema is not None and ema.enabled,
                "calibration": calibrate.result if calibrate and calibrate.result else calibration_of(path, run),
                "export": export.result if export else None,
                "class_names": model.class_names,
                "dataset_summary": dataset_summary(run),
                "command": shlex.join(["jersey-cls", *sys.argv[1:]]),
                "config": config_file.read_text() if config_file.is_file() else "(not saved)",
            },
        )
        exported = f", ONNX {export.result['onnx_path']}" if export and export.result else ""
        say(f"jersey-cls: model card {card}{exported}")
