"""JerseyClassifier: a timm backbone and a head that read jersey numbers from uint8 RGB crops."""

import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import lightning.pytorch as pl
import timm.data
import timm.optim
import torch
from jsonargparse.typing import ClosedUnitInterval
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from jersey_cls import lightning_internals as internals
from jersey_cls.messages import JerseyInputError, JerseyWarning, say
from jersey_cls.model.backbone import create_backbone
from jersey_cls.model.bags import DEFAULT_TRACK_THRESHOLD
from jersey_cls.model.heads import HEADS, HeadName, choose_head
from jersey_cls.model.metrics import evaluation_metrics
from jersey_cls.model.schedule import schedule_changes, warmup_cosine
from jersey_cls.numbers import ILLEGIBLE
from jersey_cls.seeds import derive_seed, reseed_global_rngs, run_seed


class Step(NamedTuple):
    loss: torch.Tensor
    scores: torch.Tensor  # per class, the model's answer is the largest


class JerseyClassifier(pl.LightningModule):
    def __init__(
        self,
        class_names: list[str],
        backbone: str = "resnet18",
        head: HeadName = "auto",
        image_size: int = 224,
        input_shape: list[int] | None = None,
        pretrained: bool = False,
        init_from: str | None = None,
        drop_rate: ClosedUnitInterval = 0.0,
        channels_last: bool = False,
        compile: bool = False,
        lr: float = 5e-4,
        weight_decay: float = 0.05,
        warmup_epochs: float = 1.0,
        label_smoothing: ClosedUnitInterval = 0.1,
        class_weighted_loss: bool = False,
        class_weights: list[float] | None = None,
    ) -> None:
        """Jersey-number classifier.

        Args:
            class_names: Labels in class-index order; linked from the data, stored in checkpoints.
            backbone: Any timm model name, e.g. resnet18 or resnet50.
            head: "digits": a whole-number output per class plus tens (or none) and units outputs, trained
                together; it reads any of the 101 legal numbers, those absent from train included, by the
                likeliest (tens, units) pair. "classes": one output per label seen in train, for labels that are
                not jersey numbers. "auto": digits when every class is a legal number (0-99, 00, and illegible),
                else classes; checkpoints store the head chosen.
            image_size: Side of the square crops the model reads; linked from the data, stored in checkpoints.
            input_shape: The crops' [height, width], when not the image_size square (tall player thumbnails);
                linked from the data, stored in checkpoints.
            pretrained: A new run starts from timm's ImageNet weights (needs them downloaded or cached).
            init_from: A new run starts from these weights instead: a jersey-cls checkpoint (last season's model;
                numbers in both class lists keep what they learned, new numbers start fresh, the digits head's tens
                and units carry over whole) or a timm/torchvision weights file (.safetensors, .pth, .bin), the
                offline stand-in for pretrained. EMA, optimizer and schedule start afresh.
            drop_rate: Dropout before the classifier head (timm's drop_rate).
            channels_last: Weights and inputs in NHWC memory layout, the layout GPU tensor cores run fastest.
            compile: torch.compile the backbone when the Trainer sets the model up; the first steps wait for it.
            lr: Peak AdamW learning rate, reached after warm-up.
            weight_decay: AdamW weight decay (not applied to norms and biases).
            warmup_epochs: Linear warm-up length in epochs, then a cosine decay to zero at the run's last optimizer
                step, whether max_epochs or max_steps ends the run.
            label_smoothing: Cross-entropy label smoothing.
            class_weighted_loss: Weight the loss by inverse class frequency from the train split.
            class_weights: Per-class loss weights; linked from the data.
        """
        super().__init__()
        self.save_hyperparameters()
        self.class_names = list(class_names)
        num_classes = len(self.class_names)
        self.head_choice = f"--model.head {head}"
        if head == "auto":
            head, self.head_choice = choose_head(self.class_names)
            self.hparams.head = head
            if head == "classes":  # one stray label costs reading the numbers train lacks: the user must know
                message = (f"the classes head, which reads only train's labels: {self.head_choice}. If they are "
                           "typos, fix them for the digits head, which reads every number 0-99 and 00; "
                           "--model.head classes says this choice is meant")  # fmt: skip
                warnings.warn(message, JerseyWarning, stacklevel=2)
            else:
                say(f"jersey-cls: the {head} head: {self.head_choice}")
        self.head = HEADS[head](self.class_names)
        self.net = create_backbone(backbone, self.head.num_outputs, drop_rate)
        self.started_from = "random weights (from scratch)"  # what fit loads before training says otherwise
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        data_config = timm.data.resolve_model_data_config(self.net)
        self.register_buffer("mean", torch.tensor(data_config["mean"]).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(data_config["std"]).view(1, 3, 1, 1) * 255, persistent=False)
        loss_weights = torch.tensor(class_weights) if class_weighted_loss and class_weights else None
        self.register_buffer("loss_weights", loss_weights, persistent=False)
        self.register_buffer("temperature", torch.ones(()))  # fitted on val when training ends (Calibrate)
        self.track_threshold = DEFAULT_TRACK_THRESHOLD  # a track's -1 rule (evaluation.tracks), fitted on val tracks
        self.reader: Callable[[torch.Tensor], torch.Tensor] | None = None  # predict's, if not forward: an ONNX file
        self.input_shape = [int(side) for side in input_shape] if input_shape else [image_size, image_size]
        self.example_input_array = torch.zeros(1, 3, *self.input_shape, dtype=torch.uint8)
        self.train_loss = MeanMetric()
        self.train_acc = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_metrics = evaluation_metrics(self.class_names, "val/")
        self.test_metrics = evaluation_metrics(self.class_names, "test/")
        extra = self.head.extra_metrics()
        self.head_metrics = nn.ModuleDict({name: metric for name, (metric, _) in extra.items()})
        self._head_outputs = {name: outputs for name, (_, outputs) in extra.items()}
        self.schedule: dict | None = None
        self._resumed_schedule: dict | None = None
        self._schedule_changed = False

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["started_from"] = self.started_from
        checkpoint["track_threshold"] = float(self.track_threshold)
        if self.schedule:
            checkpoint["schedule"] = self.schedule

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.started_from = checkpoint.get("started_from", self.started_from)
        self.track_threshold = float(checkpoint.get("track_threshold", DEFAULT_TRACK_THRESHOLD))
        if "schedule" in checkpoint:  # a resume: the schedule it ran on, and where it stood
            self._resumed_schedule = {**checkpoint["schedule"], "step": checkpoint["global_step"]}

    def setup(self, stage: str) -> None:
        # In place (nn.Module.compile), so state_dict keys and checkpoints are those of the eager model. Here and
        # not in configure_model: the EMA callback copies the model just before, and would warn about sharding.
        if self.hparams.compile:
            self.net.compile()

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """The backbone's raw outputs for uint8 (or 0-255 float) RGB crops, shape (N, 3, H, W)."""
        images = images.contiguous(memory_format=self.memory_format)
        return self.net((images.float() - self.mean) / self.std)

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated scores per class: their softmax is the model's probability of each class."""
        return self.head.scores(logits) / self.temperature

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Probabilities over ``class_names`` for RGB crops with values 0-255 (uint8 or float), (N, 3, H, W) with
        (H, W) the ``input_shape``.

        This is what `predict` answers and what the ONNX export computes."""
        return self.scores(self.logits(images)).softmax(dim=1)

    def shared_step(self, batch: dict, stage: str) -> Step:
        """Loss and scores of one batch, with the stage's metrics updated and logged."""
        images, targets = batch["image"], batch["target"]
        logits = self.logits(images)
        scores = self.scores(logits)
        smoothing = self.hparams.label_smoothing
        if "bag" in batch:  # frames of player tracks, labelled per track (JerseyDataModule's track_labels bags)
            loss = self.bag_loss(logits, targets, batch["bag"])
        else:
            loss = self.head.loss(logits, targets, weight=self.loss_weights, label_smoothing=smoothing)
        batch_size = len(targets)
        if stage == "train":
            self.train_loss.update(loss.detach(), batch_size)
            self.train_acc.update(scores.detach(), targets)
            self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=batch_size)
            self.log("train/acc_top1", self.train_acc, on_step=False, on_epoch=True, batch_size=batch_size)
            return Step(loss, scores)
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        metrics.update(scores, targets)
        self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=True, batch_size=batch_size, sync_dist=True)
        self.log_dict(metrics, on_epoch=True, prog_bar=stage == "val", batch_size=batch_size)
        if stage == "val":
            for name, metric in self.head_metrics.items():
                metric.update(self._head_outputs[name](logits), targets)
                self.log(f"val/{name}", metric, on_epoch=True, batch_size=batch_size)
        return Step(loss, scores)

    def bag_loss(self, logits: torch.Tensor, targets: torch.Tensor, bags: torch.Tensor) -> torch.Tensor:
        """The head's loss of frames labelled by their track (model.bags)."""
        if ILLEGIBLE not in self.class_names:
            raise JerseyInputError("learning from track labels needs the illegible class: --data.illegible true")
        illegible, smoothing = self.class_names.index(ILLEGIBLE), self.hparams.label_smoothing
        return self.head.bag_loss(logits, targets, bags, illegible, label_smoothing=smoothing)

    def on_train_start(self) -> None:
        if self._schedule_changed:
            # The optimizer and the scheduler came back with the old schedule's peak and rate: the new ones rule.
            scheduler = self.lr_schedulers()
            scheduler.base_lrs = [self.hparams.lr] * len(scheduler.base_lrs)
            for group in scheduler.optimizer.param_groups:
                group["lr"] = self.hparams.lr * scheduler.lr_lambdas[0](self.trainer.global_step)

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # Dropout and drop-path draw from the global generators. Seeded per batch, a resumed run draws what an
        # uninterrupted one would have, however much Lightning and the data loaders drew in between.
        reseed_global_rngs(derive_seed(run_seed(), self.current_epoch, batch_idx))

    def training_step(self, batch, batch_idx: int) -> torch.Tensor | None:
        if batch is not None:
            return self.shared_step(batch, "train").loss
        if self.trainer.world_size == 1:
            return None  # no crop of the batch decoded: skip the step
        # Under DDP every rank must take part in the gradient all-reduce: a zero loss that reaches every weight.
        return sum(p.sum() for p in self.parameters() if p.requires_grad) * 0.0

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor | None:
        return None if batch is None else self.shared_step(batch, "val").scores.detach()

    def test_step(self, batch, batch_idx: int) -> torch.Tensor | None:
        return None if batch is None else self.shared_step(batch, "test").scores.detach()

    def predict_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return (self.reader or self)(batch["image"])

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = timm.optim.create_optimizer_v2(self.net, "adamw", lr=hp.lr, weight_decay=hp.weight_decay)
        total_steps = self.trainer.estimated_stepping_batches
        if not math.isfinite(total_steps):
            raise JerseyInputError(
                "--trainer.max_epochs -1 with --trainer.max_steps -1 trains without end, and the learning rate's "
                "cosine needs one: give --trainer.max_epochs N or --trainer.max_steps N."
            )
        total_steps = max(1, int(total_steps))
        warmup_steps = min(total_steps, round(hp.warmup_epochs * internals.steps_per_epoch(self.trainer)))
        self.schedule = {"lr": hp.lr, "warmup_steps": warmup_steps, "total_steps": total_steps}
        if self._resumed_schedule and (note := schedule_changes(self._resumed_schedule, self.schedule)):
            self._schedule_changed = True
            say(f"jersey-cls: note: {note}")
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(warmup_steps, total_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
