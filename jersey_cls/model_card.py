"""model_card.md: what a deployed model is, what it was trained on, and how to make it again."""

import json
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_flops(net: torch.nn.Module, image_size: int) -> int:
    """Forward FLOPs for one crop (a multiply-add counts as 2)."""
    was_training = net.training
    net.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 3, image_size, image_size, device=next(net.parameters()).device))
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
        f"| FLOPs per crop | {facts['flops'] / 1e9:.3f} GFLOPs at {facts['image_size']}x{facts['image_size']} |",
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
        lines += [
            f"| ONNX | `{export['onnx_path']}`, {export['onnx_bytes'] / 1e6:.1f} MB; ONNX Runtime vs PyTorch on "
            f"{export['parity_crops']} validation crops: max abs probability diff {export['max_abs_diff']:.1e}, "
            f"same top-1 on {export['top1_agree']}/{export['parity_crops']} |"
        ]
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
