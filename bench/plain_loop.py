"""The hand-written PyTorch baselines that `bench/run.py` compares jersey-cls with. Prints one JSON line.

train   a plain training loop: timm model, AdamW, warm-up + cosine schedule, label-smoothed cross-entropy,
        torch DataLoader over the same crops with the same train transforms, batch size and workers
model   the same training step on one batch held in memory: how fast the model consumes images
loader  JerseyDataModule's train loader alone, no model: how fast the data pipeline produces images
"""

import argparse
import json
import math
import time

import timm
import timm.optim
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from jersey_cls.data.datamodule import JerseyDataModule
from jersey_cls.data.datasets import CropDataset, collate_readable
from jersey_cls.data.transforms import train_transform


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["train", "model", "loader"])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--decode-once", action="store_true", help="JerseyDataModule's decode_once")
    args = parser.parse_args()
    torch.manual_seed(0)

    data = JerseyDataModule(
        image_size=args.image_size, batch_size=args.batch_size, num_workers=args.workers, decode_once=args.decode_once
    )
    data.prepare_data()
    data.setup("fit")
    if args.mode == "loader":
        batches = iter(data.train_dataloader())
        result = timed(lambda: next(batches), args)
        print(json.dumps(result))
        return

    # What a user would write by hand, from the same files and transforms.
    hp = data.hparams
    transform = train_transform(
        hp.image_size, hp.augment, hp.jpeg_quality, hp.jpeg_p, hp.noise_sigma, hp.noise_p, hp.erasing_p
    )
    samples = [(path, data.class_names.index(label)) for path, label in data.splits["train"].samples]
    loader = DataLoader(
        CropDataset(samples, transform),
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=args.workers,
        collate_fn=collate_readable,
    )
    model = timm.create_model(args.backbone, pretrained=False, num_classes=len(data.class_names))
    config = timm.data.resolve_model_data_config(model)
    mean = torch.tensor(config["mean"]).view(1, 3, 1, 1) * 255
    std = torch.tensor(config["std"]).view(1, 3, 1, 1) * 255
    optimizer = timm.optim.create_optimizer_v2(model, "adamw", lr=2e-3, weight_decay=0.05)
    total = 15 * len(loader)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    model.train()

    def step(batch) -> None:
        logits = model((batch["image"].float() - mean) / std)
        loss = F.cross_entropy(logits, batch["target"], label_smoothing=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()

    if args.mode == "model":
        held = next(iter(loader))
        result = timed(lambda: step(held) or held, args)
    else:
        batches = iter(loader)

        def fetch_and_step():
            batch = next(batches)
            step(batch)
            return batch

        result = timed(fetch_and_step, args)
    print(json.dumps(result))


def timed(produce_batch, args) -> dict:
    """Images per second over the steps after ``args.warmup``, as BenchProbe times jersey-cls fit."""
    images, started = 0, None
    for index in range(args.steps):
        if index == args.warmup:
            started = time.perf_counter()
        batch = produce_batch()
        if started is not None:
            images += len(batch["target"])
    return {"images": images, "seconds": time.perf_counter() - started}


if __name__ == "__main__":
    main()
