"""Out-of-sample probabilities for train's own crops, by k-fold cross-fitting: every crop is read by a model
that never trained on it. A player track's crops stay in one fold, so no model has seen another frame of the
track it reads."""

import copy
import random
import tempfile
from collections.abc import Callable
from dataclasses import replace

import lightning.pytorch as pl
import numpy as np
import torch

from jersey_cls.data.datamodule import JerseyDataModule
from jersey_cls.messages import say
from jersey_cls.model import JerseyClassifier
from jersey_cls.training.ema import EMA


def assign_folds(groups: list[str], folds: int, seed: int) -> list[int]:
    """The fold of each crop: whole groups (tracks, or the crop itself) dealt round-robin in a seeded order."""
    order = sorted(set(groups))
    random.Random(seed).shuffle(order)
    fold_of_group = {group: i % folds for i, group in enumerate(order)}
    return [fold_of_group[group] for group in groups]


def probabilities(model: JerseyClassifier, loader) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, sample index) of every readable crop an evaluation loader gives."""
    model.eval()
    found, indices = [], []
    with torch.inference_mode():
        for batch in loader:
            if batch is not None:
                found.append(model(batch["image"].to(model.device)).float().cpu())
                indices.append(batch["index"])
    if not found:
        return np.zeros((0, len(model.class_names))), np.zeros(0, dtype=int)
    return torch.cat(found).numpy(), torch.cat(indices).numpy()


def cross_fit(
    trainer: pl.Trainer,
    new_model: Callable[[], JerseyClassifier],
    data: JerseyDataModule,
    folds: int,
    epochs: int,
    seed: int,
) -> np.ndarray:
    """Probabilities for each of train's samples (rows in ``data.splits["train"].samples`` order; NaN where a
    crop could not be read) from ``folds`` models, each trained for ``epochs`` on the other folds with the run's
    recipe (the Trainer's accelerator, device, precision, gradient clipping and accumulation, and its EMA). The
    folds train on loaders of the data's own recipe, without its setup, which would read the splits again."""
    train = data.splits["train"]
    groups = [train.tracks.get(path, path) for path, _ in train.samples]
    fold_of = assign_folds(groups, folds, seed)
    result = np.full((len(train.samples), len(data.class_names)), np.nan)
    ema = [callback for callback in trainer.callbacks if isinstance(callback, EMA)]
    for fold in range(folds):
        held = [i for i, f in enumerate(fold_of) if f == fold]
        fold_data = copy.copy(data)
        fold_data.splits = {
            "train": replace(train, samples=[s for s, f in zip(train.samples, fold_of, strict=True) if f != fold]),
            "val": replace(train, name="val", samples=[train.samples[i] for i in held]),
        }
        model = new_model()
        device = trainer.strategy.root_device
        with tempfile.TemporaryDirectory() as scratch:
            fold_trainer = pl.Trainer(
                accelerator=trainer.accelerator, devices=[device.index] if device.type == "cuda" else 1,
                precision=trainer.precision, max_epochs=epochs, gradient_clip_val=trainer.gradient_clip_val,
                gradient_clip_algorithm=trainer.gradient_clip_algorithm,
                accumulate_grad_batches=trainer.accumulate_grad_batches, callbacks=copy.deepcopy(ema), logger=False,
                enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                default_root_dir=scratch,
            )  # fmt: skip
            fold_trainer.fit(model, train_dataloaders=fold_data.train_dataloader())
        model.float().to(device)  # a half-precision fit leaves half-precision weights
        found, indices = probabilities(model, fold_data.val_dataloader())  # index: the place in ``held``
        result[[held[i] for i in indices]] = found
        say(f"jersey-cls: audit: fold {fold + 1}/{folds} read {len(indices)} of train's crops it never trained on")
    return result
