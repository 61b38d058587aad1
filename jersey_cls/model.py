"""JerseyClassifier: a timm backbone that reads jersey numbers from uint8 RGB crops."""

import difflib
import math
from typing import Literal

import lightning.pytorch as pl
import timm
import timm.data
import timm.optim
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from jersey_cls.errors import JerseyInputError
from jersey_cls.numbers import NO_TENS, digits, is_legal
from jersey_cls.seeds import derive_seed, reseed_global_rngs, run_seed


def create_backbone(backbone: str, pretrained: bool, num_classes: int, drop_rate: float = 0.0) -> nn.Module:
    if not timm.is_model(backbone):
        close = difflib.get_close_matches(backbone, timm.list_models(), n=5, cutoff=0.6)
        hint = f" Close timm names: {', '.join(close)}." if close else " See timm.list_models() for the names."
        raise JerseyInputError(f"--model.backbone {backbone!r} is not a timm model.{hint}")
    try:
        extra = {"drop_rate": drop_rate} if drop_rate else {}  # not every timm model takes it
        return timm.create_model(backbone, pretrained=pretrained, num_classes=num_classes, **extra)
    except (OSError, RuntimeError) as error:
        if not pretrained:
            raise
        raise JerseyInputError(
            f"--model.pretrained true: could not obtain ImageNet weights for {backbone!r} ({type(error).__name__}). "
            "Connect to the network once so timm caches them (under $HF_HOME), copy that cache to this machine, "
            "or train from scratch with --model.pretrained false."
        ) from error


def metric_collection(num_classes: int) -> MetricCollection:
    return MetricCollection(
        {
            "acc_top1": MulticlassAccuracy(num_classes, top_k=1, average="micro"),
            "acc_top5": MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro"),
            "f1_macro": MulticlassF1Score(num_classes, average="macro"),
        }
    )


class JerseyClassifier(pl.LightningModule):
    def __init__(
        self,
        class_names: list[str],
        backbone: str = "resnet18",
        head: Literal["classes", "digits"] = "classes",
        pretrained: bool = False,
        drop_rate: float = 0.0,
        channels_last: bool = False,
        compile: bool = False,
        lr: float = 5e-4,
        weight_decay: float = 0.05,
        warmup_epochs: float = 1.0,
        label_smoothing: float = 0.1,
        class_weighted_loss: bool = False,
        class_weights: list[float] | None = None,
    ) -> None:
        """Jersey-number classifier.

        Args:
            class_names: Labels in class-index order; linked from the data, stored in checkpoints.
            backbone: Any timm model name, e.g. resnet18 or resnet50.
            head: "classes": one output per number seen in train. "digits": also tens (or none) and units
                outputs, trained together with the whole-number output; it reads any of the 101 legal numbers,
                those absent from train included, by the likeliest (tens, units) pair.
            pretrained: Start from timm's ImageNet weights (needs them downloaded or cached).
            drop_rate: Dropout before the classifier head (timm's drop_rate).
            channels_last: Weights and inputs in NHWC memory layout, the layout GPU tensor cores run fastest.
            compile: torch.compile the backbone when the Trainer sets the model up; the first steps wait for it.
            lr: Peak AdamW learning rate, reached after warm-up.
            weight_decay: AdamW weight decay (not applied to norms and biases).
            warmup_epochs: Linear warm-up length in epochs, then cosine decay to zero at max_epochs.
            label_smoothing: Cross-entropy label smoothing.
            class_weighted_loss: Weight the loss by inverse class frequency from the train split.
            class_weights: Per-class loss weights; linked from the data.
        """
        super().__init__()
        self.save_hyperparameters()
        self.class_names = list(class_names)
        num_classes = len(self.class_names)
        # The digit outputs are extra units of timm's own classifier: any backbone, export and EMA work as they are.
        digit_outputs = NO_TENS + 1 + 10 if head == "digits" else 0
        self.net = create_backbone(backbone, pretrained, num_classes + digit_outputs, drop_rate)
        if head == "digits":
            not_numbers = [name for name in self.class_names if not is_legal(name)]
            if not_numbers:
                raise JerseyInputError(
                    f"--model.head digits reads the numbers 0-99 and 00, and the class list has other labels: "
                    f"{not_numbers[:10]}. Relabel or drop them, or use --model.head classes."
                )
            tens, units = zip(*(digits(name) for name in self.class_names), strict=True)
            self.register_buffer("class_tens", torch.tensor(tens), persistent=False)
            self.register_buffer("class_units", torch.tensor(units), persistent=False)
            self.val_classes_head = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        data_config = timm.data.resolve_model_data_config(self.net)
        self.register_buffer("mean", torch.tensor(data_config["mean"]).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(data_config["std"]).view(1, 3, 1, 1) * 255, persistent=False)
        loss_weights = torch.tensor(class_weights) if class_weighted_loss and class_weights else None
        self.register_buffer("loss_weights", loss_weights, persistent=False)
        self.train_loss = MeanMetric()
        self.train_acc = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_metrics = metric_collection(num_classes).clone(prefix="val/")
        self.test_metrics = metric_collection(num_classes).clone(prefix="test/")

    def setup(self, stage: str) -> None:
        # In place (nn.Module.compile), so state_dict keys and checkpoints are those of the eager model. Here and
        # not in configure_model: the EMA callback copies the model just before, and would warn about sharding.
        if self.hparams.compile:
            self.net.compile()
        datamodule = self.trainer.datamodule
        if datamodule is not None:  # one crop of the data's size, so the model summary can count FLOPs
            size = datamodule.hparams.image_size
            self.example_input_array = torch.zeros(1, 3, size, size, dtype=torch.uint8)

    def outputs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(class logits, label scores, digit logits or None): the whole-number head's logits, the scores the
        model answers with (those same logits, or with the digits head the log-likelihood of each class's
        (tens, units) pair), and the raw (tens, units) logits."""
        images = images.contiguous(memory_format=self.memory_format)
        logits = self.net((images.float() - self.mean) / self.std)
        if self.hparams.head == "classes":
            return logits, logits, None
        num_classes = len(self.class_names)
        class_logits, tens, units = logits.split([num_classes, NO_TENS + 1, 10], dim=1)
        scores = tens.log_softmax(dim=1)[:, self.class_tens] + units.log_softmax(dim=1)[:, self.class_units]
        return class_logits, scores, logits[:, num_classes:]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class scores (logits) for a batch of RGB crops with values 0-255 (uint8 or float), shape (N, 3, H, W)."""
        return self.outputs(images)[1]

    def shared_step(self, batch, stage: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Loss and logits of one batch, with the stage's metrics updated and logged."""
        if batch is None:  # every image of the batch failed to decode
            return None
        images, targets = batch["image"], batch["target"]
        class_logits, logits, digit_logits = self.outputs(images)
        smoothing = self.hparams.label_smoothing
        loss = F.cross_entropy(class_logits, targets, weight=self.loss_weights, label_smoothing=smoothing)
        if digit_logits is not None:  # whole-number and digit losses together, as in Vats et al. 2021
            tens, units = digit_logits.split([NO_TENS + 1, 10], dim=1)
            loss = loss + F.cross_entropy(tens, self.class_tens[targets], label_smoothing=smoothing)
            loss = loss + F.cross_entropy(units, self.class_units[targets], label_smoothing=smoothing)
        batch_size = len(targets)
        if stage == "train":
            self.train_loss.update(loss.detach(), batch_size)
            self.train_acc.update(logits.detach(), targets)
            self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=batch_size)
            self.log("train/acc_top1", self.train_acc, on_step=False, on_epoch=True, batch_size=batch_size)
        else:
            metrics = self.val_metrics if stage == "val" else self.test_metrics
            metrics.update(logits, targets)
            self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=True, batch_size=batch_size, sync_dist=True)
            self.log_dict(metrics, on_epoch=True, prog_bar=stage == "val", batch_size=batch_size)
            if digit_logits is not None and stage == "val":  # both heads, side by side, on the same crops
                self.val_classes_head.update(class_logits, targets)
                self.log("val/classes_head_acc_top1", self.val_classes_head, on_epoch=True, batch_size=batch_size)
        return loss, logits

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # Dropout and drop-path draw from the global generators. Seeded per batch, a resumed run draws what an
        # uninterrupted one would have, however much Lightning and the data loaders drew in between.
        reseed_global_rngs(derive_seed(run_seed(), self.current_epoch, batch_idx))

    def training_step(self, batch, batch_idx: int) -> torch.Tensor | None:
        result = self.shared_step(batch, "train")
        return None if result is None else result[0]

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor | None:
        result = self.shared_step(batch, "val")
        return None if result is None else result[1].detach()  # logits, for the evaluation callbacks

    def test_step(self, batch, batch_idx: int) -> torch.Tensor | None:
        result = self.shared_step(batch, "test")
        return None if result is None else result[1].detach()

    def predict_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        """Class probabilities for a predict batch ({"image": uint8 crops, ...})."""
        return self(batch["image"]).softmax(dim=1)

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = timm.optim.create_optimizer_v2(self.net, "adamw", lr=hp.lr, weight_decay=hp.weight_decay)
        total_steps = max(1, int(self.trainer.estimated_stepping_batches))
        max_epochs = self.trainer.max_epochs if self.trainer.max_epochs and self.trainer.max_epochs > 0 else 1
        warmup_steps = int(total_steps * hp.warmup_epochs / max_epochs)

        def warmup_then_cosine(step: int) -> float:
            if step < warmup_steps:
                return (step + 1) / (warmup_steps + 1)
            progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_then_cosine)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
