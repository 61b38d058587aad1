"""`jersey-cls audit`: which given labels of train, val and test are probably wrong, ranked, with where each is
written so that the fix takes seconds."""

import copy
from collections import Counter
from dataclasses import replace
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from PIL import Image

from jersey_cls.data.classes import class_weights
from jersey_cls.data.datamodule import JerseyDataModule
from jersey_cls.data.images import load_rgb
from jersey_cls.data.layouts import Split
from jersey_cls.data.layouts.soccernet import ground_truth_file
from jersey_cls.evaluation.label_audit import suspects, thresholds
from jersey_cls.evaluation.spreadsheet import write_dicts, write_rows
from jersey_cls.messages import say
from jersey_cls.model import JerseyClassifier
from jersey_cls.seeds import run_seed
from jersey_cls.synth.sheet import contact_sheet
from jersey_cls.training.checkpoints import read_checkpoint
from jersey_cls.training.cross_fit import cross_fit, probabilities
from jersey_cls.training.start import load_start_weights

COLUMNS = ["rank", "split", "path", "given", "suggested", "given_prob", "suggested_prob", "suggested_threshold",
           "label_at"]  # fmt: skip


def label_at(split: Split, path: str) -> str:
    """Where a crop's label is written: a JSONL file and line, an ImageFolder folder, a ground-truth entry."""
    if split.layout == "soccernet" and path in split.tracks:
        return f"{ground_truth_file(split.root)}: {split.tracks[path]!r}"
    source = split.sources.get(path, path)
    return str(Path(path).parent) if source == path else source  # an image that is its own row: its folder


def run_audit(
    trainer: pl.Trainer, model: JerseyClassifier, data: JerseyDataModule, ckpt_path: Path, folds: int, epochs: int,
    sheet_size: int = 48,
) -> Path:  # fmt: skip
    """Write <run>/audit/suspect_labels.csv and suspect_labels.png; returns the CSV's path."""
    data.prepare_data()
    data.setup("fit")
    known = set(data.class_names)  # a label the model has no output for cannot be judged
    for name, split in list(data.splits.items()):
        data.splits[name] = replace(split, samples=[s for s in split.samples if s[1] in known])
    # The class list came from the checkpoint; the balanced sampler and the weighted loss need train's counts.
    data.class_weights = class_weights(Counter(label for _, label in data.splits["train"].samples), data.class_names)
    starting = copy.deepcopy(model)
    if starting.loss_weights is not None:
        starting.loss_weights = torch.tensor(data.class_weights)
    load_start_weights(starting)
    model.load_state_dict(read_checkpoint(ckpt_path)["state_dict"])
    model.to(trainer.strategy.root_device)
    found = {}
    for name in ("val", "test"):
        if name in data.splits:
            probs, indices = probabilities(model, data.val_dataloader() if name == "val" else data.test_dataloader())
            full = np.full((len(data.splits[name].samples), len(data.class_names)), np.nan)
            full[indices] = probs
            found[name] = full
    say(f"jersey-cls: audit: val and test read by {ckpt_path}; train by {folds} models, each trained {epochs} "
          f"epoch(s) on the other folds")  # fmt: skip
    found["train"] = cross_fit(trainer, lambda: copy.deepcopy(starting), data, folds, epochs, run_seed())
    index = {name: i for i, name in enumerate(data.class_names)}
    given = {name: np.array([index[label] for _, label in data.splits[name].samples], dtype=int) for name in found}
    read = {name: ~np.isnan(probs).any(axis=1) for name, probs in found.items()}
    # One threshold per class over the whole data, as the paper computes them: a split's own few crops per class
    # make a noisy mean, and a class that no wrong label lowers keeps half its own crops under it.
    t = thresholds(
        np.concatenate([found[n][read[n]] for n in found]), np.concatenate([given[n][read[n]] for n in found])
    )
    folder = Path(trainer.default_root_dir) / "audit"
    write_probabilities(folder / "out_of_sample.csv", data, found, read)
    rows = []
    for name in ("train", "val", "test"):
        if name not in found:
            continue
        split, probs, positions = data.splits[name], found[name], np.flatnonzero(read[name])
        for s in suspects(probs[positions], given[name][positions], t):
            path = split.samples[positions[s.index]][0]
            rows.append({"split": name, "path": path, "given": data.class_names[s.given],
                         "suggested": data.class_names[s.suggested], "given_prob": round(s.given_probability, 4),
                         "suggested_prob": round(s.suggested_probability, 4),
                         "suggested_threshold": round(s.suggested_threshold, 4),
                         "label_at": label_at(split, path)})  # fmt: skip
        say(f"jersey-cls: audit: {name}: {sum(r['split'] == name for r in rows)} suspect labels of {len(positions)}")
    rows.sort(key=lambda r: r["given_prob"])
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    path = folder / "suspect_labels.csv"
    write_dicts(path, rows, COLUMNS)
    top = rows[:sheet_size]
    crops = [load_rgb(r["path"]) if Path(r["path"]).is_file() else Image.new("RGB", (8, 8)) for r in top]
    captions = [f"{r['given']} → {r['suggested']}" for r in top]
    sheet = contact_sheet(crops, captions, folder / "suspect_labels.png", "given → suggested, most suspect first")
    say(f"jersey-cls: audit: wrote {len(rows)} suspect labels to {path}, the first {len(top)} shown in {sheet}")
    return path


def write_probabilities(path: Path, data: JerseyDataModule, found: dict[str, np.ndarray], read: dict) -> None:
    """Every audited crop's out-of-sample probabilities: split, path, given label, one column per class."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = (
        [name, crop, label, *np.round(row, 6)]
        for name, probs in found.items()
        for (crop, label), row, ok in zip(data.splits[name].samples, probs, read[name], strict=True)
        if ok
    )
    write_rows(path, ["split", "path", "given", *data.class_names], rows)
