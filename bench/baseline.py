"""The hand-written PyTorch loop jersey-cls is measured against: what a user writes without it.

    python bench/baseline.py train --steps 25 --batch-size 64   # images/s of its training steps (speed_run.py)
    python bench/baseline.py model                              # the same step on one batch held in memory
    python bench/baseline.py loader --decode-once               # JerseyDataModule's train loader alone, no model
    python bench/baseline.py epochs --epochs 3                  # train, validate, save, every epoch (speed_epoch.py)

These run on the embedded set at base_recipe(), base.yaml's recipe written by hand (no warm-up, no EMA), and
write one JSON object to $JERSEY_BENCH_OUT, or print it. acc_real_pixels.py trains the same loop with PLAIN.
"""

import argparse
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import timm
import timm.optim
import torch
import torch.nn.functional as F
import torchvision
import yaml
from common import BASE
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from jersey_cls.data.augment import Augment, eval_transform, train_transform
from jersey_cls.data.datamodule import JerseyDataModule
from jersey_cls.data.datasets import CropDataset, collate_readable


@dataclass(frozen=True)
class Recipe:
    """How the loop trains.

    library: "torchvision" is torchvision's ResNet18 and torch's AdamW (weight decay on every weight); "timm" is
        timm's ResNet18 and timm's AdamW (none on biases and norms). Each bench keeps the one its dated figures
        in RESULTS.md were measured with, so that they stay comparable.
    cosine_epochs: the learning rate falls along a cosine to 0 over this many epochs; None: it stays.
    augment: the strength of base.yaml's train augmentation; 0: the crops are only resized.
    """

    library: str = "torchvision"
    lr: float = 1e-3
    weight_decay: float = 0.01
    label_smoothing: float = 0.0
    cosine_epochs: int | None = None
    augment: float = 0.0
    batch_size: int = 32
    workers: int = 2
    image_size: int = 64


PLAIN = Recipe()  # a plain loop: no augmentation, AdamW 1e-3, batch 32, no schedule


def base_config() -> dict:
    return yaml.safe_load(Path(BASE).read_text())


def base_recipe() -> Recipe:
    """base.yaml's recipe by hand: its optimizer settings, label smoothing, schedule length and augmentation."""
    config = base_config()
    model, data = config["model"], config["data"]
    return Recipe(
        library="timm",
        lr=model["lr"],
        weight_decay=model["weight_decay"],
        label_smoothing=model["label_smoothing"],
        cosine_epochs=config["trainer"]["max_epochs"],
        augment=base_augmentation().strength,
        batch_size=data["batch_size"],
        workers=data["num_workers"],
        image_size=data["image_size"],
    )


def base_augmentation() -> Augment:
    """base.yaml's train augmentation (its data.augment section)."""
    settings = base_config()["data"]["augment"]
    return Augment(**{key: tuple(value) if isinstance(value, list) else value for key, value in settings.items()})


def train_augmentation(recipe: Recipe) -> v2.Compose:
    """jersey-cls's train transform with base.yaml's settings at the recipe's strength."""
    return train_transform(recipe.image_size, replace(base_augmentation(), strength=recipe.augment))


class Loop:
    """A DataLoader over (path, class index) samples, a ResNet18 from scratch, AdamW and cross-entropy."""

    def __init__(self, recipe: Recipe, samples: list[tuple[str, int]], classes: int) -> None:
        torch.manual_seed(0)
        self.recipe = recipe
        self.loader = self.batches(samples, train_augmentation(recipe), shuffle=True)
        if recipe.library == "timm":
            self.model = timm.create_model("resnet18", pretrained=False, num_classes=classes)
            self.optimizer = timm.optim.create_optimizer_v2(
                self.model, "adamw", lr=recipe.lr, weight_decay=recipe.weight_decay
            )
        else:
            self.model = torchvision.models.resnet18(num_classes=classes)
            self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        self.schedule = None
        if recipe.cosine_epochs:
            total = recipe.cosine_epochs * len(self.loader)
            self.schedule = torch.optim.lr_scheduler.LambdaLR(
                self.optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total))
            )
        # ImageNet's mean and std on the 0-255 scale: the loaders give uint8 crops.
        self.mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
        self.std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255

    def batches(self, samples: list[tuple[str, int]], transform: v2.Transform, shuffle: bool = False) -> DataLoader:
        dataset = CropDataset(samples, transform)
        return DataLoader(dataset, batch_size=self.recipe.batch_size, shuffle=shuffle,
                          num_workers=self.recipe.workers, collate_fn=collate_readable)  # fmt: skip

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.model((images.float() - self.mean) / self.std)

    def step(self, batch: dict) -> dict:
        smoothing = self.recipe.label_smoothing
        loss = F.cross_entropy(self.logits(batch["image"]), batch["target"], label_smoothing=smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.schedule is not None:
            self.schedule.step()
        return batch

    def train_epoch(self) -> None:
        self.model.train()
        for batch in self.loader:
            self.step(batch)

    def predict(self, samples: list[tuple[str, int]]) -> list[int]:
        """The class index the model picks for each sample, in order."""
        self.model.eval()
        with torch.no_grad():
            batches = self.batches(samples, eval_transform(self.recipe.image_size))
            return [index for batch in batches for index in self.logits(batch["image"]).argmax(1).tolist()]


def embedded_set(**settings) -> tuple[JerseyDataModule, dict[str, list[tuple[str, int]]]]:
    """The embedded set's data module (with ``settings``) and its train and val samples as (path, class index)."""
    data = JerseyDataModule(**settings)
    data.prepare_data()
    data.setup("fit")
    index = {name: i for i, name in enumerate(data.class_names)}
    samples = {}
    for split in ("train", "val"):
        samples[split] = [(path, index[label]) for path, label in data.splits[split].samples]
    return data, samples


def timed(produce_batch: Callable[[], dict], steps: int, warmup: int) -> dict:
    """Images a second over the steps after the first ``warmup``, the span BenchProbe times in jersey-cls fit."""
    images, started = 0, None
    for index in range(steps):
        if index == warmup:
            started = time.perf_counter()
        batch = produce_batch()
        if started is not None:
            images += len(batch["target"])
    return {"images": images, "seconds": time.perf_counter() - started}


def endless(loader: DataLoader) -> Iterator[dict]:
    while True:
        yield from loader


def epochs_with_checks(loop: Loop, val: list[tuple[str, int]], epochs: int) -> dict:
    """Train, validate and save a checkpoint every epoch; the validation and save seconds an epoch."""
    seconds = {"validation": 0.0, "save": 0.0}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(epochs):
            loop.train_epoch()
            started = time.perf_counter()
            predicted = loop.predict(val)
            saved = time.perf_counter()
            state = {"model": loop.model.state_dict(), "optimizer": loop.optimizer.state_dict()}
            torch.save(state, Path(folder) / "last.pt")
            seconds["validation"] += saved - started
            seconds["save"] += time.perf_counter() - saved
    correct = sum(index == target for index, (_, target) in zip(predicted, val, strict=True))
    return {key: value / epochs for key, value in seconds.items()} | {"val top-1": correct / len(val)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["train", "model", "loader", "epochs"])
    parser.add_argument("--steps", type=int, default=25, help="train, model, loader: steps in all")
    parser.add_argument("--warmup", type=int, default=5, help="train, model, loader: steps left out of the timing")
    parser.add_argument("--epochs", type=int, default=1, help="epochs: how many")
    parser.add_argument("--batch-size", type=int, default=None, help="default: base.yaml's")
    parser.add_argument("--decode-once", action="store_true", help="loader: JerseyDataModule's decode_once")
    args = parser.parse_args()
    recipe = base_recipe()
    if args.batch_size:
        recipe = replace(recipe, batch_size=args.batch_size)
    data, samples = embedded_set(image_size=recipe.image_size, batch_size=recipe.batch_size,
                                 num_workers=recipe.workers, decode_once=args.decode_once,
                                 augment=base_augmentation())  # fmt: skip
    if args.mode == "loader":
        batches = endless(data.train_dataloader())
        result = timed(lambda: next(batches), args.steps, args.warmup)
    else:
        loop = Loop(recipe, samples["train"], len(data.class_names))
        loop.model.train()
        if args.mode == "epochs":
            result = epochs_with_checks(loop, samples["val"], args.epochs)
        elif args.mode == "model":
            held = next(iter(loop.loader))
            result = timed(lambda: loop.step(held), args.steps, args.warmup)
        else:
            batches = endless(loop.loader)
            result = timed(lambda: loop.step(next(batches)), args.steps, args.warmup)
    if "JERSEY_BENCH_OUT" in os.environ:
        Path(os.environ["JERSEY_BENCH_OUT"]).write_text(json.dumps(result))
    else:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
