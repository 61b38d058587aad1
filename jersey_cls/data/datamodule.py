"""JerseyDataModule: the class list from train's labels, the splits checked by the data doctor, uint8 crops."""

import os
import warnings
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import lightning.pytorch as pl
import torch
from filelock import FileLock
from jsonargparse.typing import ClosedUnitInterval, NonNegativeInt, PositiveInt
from kornia.augmentation.container import ImageSequential
from PIL import Image
from torch.utils.data import DataLoader

from jersey_cls import default_cache_dir
from jersey_cls.data.augment import Augment, batch_augmentation, eval_transform, train_transform
from jersey_cls.data.classes import class_list, class_weights, indexed, with_illegible
from jersey_cls.data.datasets import CropDataset, PredictDataset, collate_readable, decode_or_none
from jersey_cls.data.doctor import examine, format_report, skip_flagged
from jersey_cls.data.images import input_shape as shape_for
from jersey_cls.data.images import median_aspect
from jersey_cls.data.layouts import SPLIT_NAMES, UNREADABLE, PredictInput, Split, find_split_dir, read_split
from jersey_cls.data.sampling import BagSampler, EpochSampler
from jersey_cls.data.tracks import hold_out, thin_inputs, thin_tracks, track_members
from jersey_cls.lightning_internals import train_progress
from jersey_cls.messages import JerseyInputError, JerseyWarning, say
from jersey_cls.numbers import ILLEGIBLE
from jersey_cls.seeds import derive_seed, run_seed
from jersey_cls.synth.sets import DEFAULT_NUMBERS, SPLIT_SIZES, embedded_dataset, embedded_root

# What each stage reads; the data doctor looks at every split present, for leakage into val and test.
STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ()}


class JerseyDataModule(pl.LightningDataModule):
    def __init__(
        self,
        data_root: str | None = None,
        image_size: PositiveInt = 224,
        keep_aspect: bool = True,
        batch_size: PositiveInt = 64,
        num_workers: NonNegativeInt = 2,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        sampler: Literal["shuffle", "balanced"] = "shuffle",
        augment: Augment = Augment(),  # noqa: B008 - frozen; jsonargparse reads its fields as --data.augment.*
        augment_on: Literal["auto", "workers", "device"] = "auto",
        decode_once: bool = False,
        cache_dir: str | None = None,
        strict: bool = False,
        allow_outside_root: bool = False,
        class_names: list[str] | None = None,
        input_shape: list[int] | None = None,
        all_numbers: bool | None = False,
        illegible: bool = False,
        illegible_labels: tuple[str, ...] = ("-1", "illegible"),
        track_labels: Literal["frames", "bags"] = "frames",
        bag_size: PositiveInt = 8,
        frames_per_track: PositiveInt | None = 16,
        val_share: ClosedUnitInterval = 0.1,
        val_seed: int = 0,
        predict_path: str | None = None,
    ) -> None:
        """Jersey-number crops in Roboflow JSONL, ImageFolder or SoccerNet layout.

        Args:
            data_root: Dataset folder holding train/, val/ (or valid/, validation/) and optionally test/. None
                trains on the embedded synthetic jersey set.
            image_size: Side of the square input, in pixels; with keep_aspect and crops that are not square, the
                input has as many pixels in the crops' shape.
            keep_aspect: When train's crops are not square (player thumbnails are about twice as tall as wide), the
                model reads them in their own shape, the median of train's, rather than squashed into a square;
                fit says which. Off: always the image_size square.
            batch_size: Crops per batch.
            num_workers: Data-loading worker processes.
            pin_memory: Pin batches in page-locked memory for faster host-to-GPU copies.
            persistent_workers: Keep workers alive between epochs (needs num_workers > 0).
            sampler: "shuffle" for plain shuffling, "balanced" for a class-balanced WeightedRandomSampler.
            augment: The training augmentation (--data.augment.strength, ...): see jersey_cls.data.augment.Augment.
            augment_on: Where the training augmentation runs. "workers": per crop, on the CPU, in the loader
                workers. "device": batched on the training device, after the transfer; the workers only decode,
                apply JPEG and noise at each crop's own size, and resize. "auto": the device on a CUDA GPU, the
                workers otherwise (on a CPU the batched path was not faster: docs/speed.md).
            decode_once: Decode every image once, when its loader is built, and keep the pixels in RAM (the
                workers share them) instead of decoding each epoch.
            cache_dir: Cache folder (embedded set, data-doctor results). None: $XDG_CACHE_HOME/jersey-cls or
                ~/.cache/jersey-cls.
            strict: Refuse to train when the data doctor finds any problem, instead of skipping bad samples.
            allow_outside_root: Read images that a JSONL row places outside data_root, such as
                ../../other/x.jpg or an absolute path. Off: each such row is skipped, and named by the data doctor.
            class_names: Fixed class list in index order (the class weights are then 1). None derives it from
                train; validate, test, predict and export take it from the checkpoint.
            input_shape: The model's input, [height, width]. None derives it from image_size, keep_aspect and
                train's crops; validate, test, predict and export take it from the checkpoint.
            all_numbers: Class list = the 101 legal numbers (0-99 and 00), those absent from train included; every
                label must be one of them. None: so when every train label is one. Set by --model.head (digits:
                true, classes: false, auto: None).
            illegible: Learn an "illegible" class (the last) from the crops whose number cannot be read: rows with
                an empty label and the labels in illegible_labels. Off: those rows are skipped (and counted).
            illegible_labels: Labels that mean "cannot be read", such as SoccerNet's -1, with illegible on.
            track_labels: How train's player tracks are learned. "frames": every frame takes its track's label,
                and train draws frames_per_track fresh frames of every track each epoch, tracks balanced (measured
                best on tracklet labels: bench/RESULTS.md). "bags": multiple-instance learning: a frame shows its
                track's number or nothing, at least one frame shows it, every frame of an illegible (-1) track
                shows nothing; train draws bags of bag_size frames of one track. Needs illegible on.
            bag_size: Frames of one track in a bag ("bags"); batch_size must be a multiple of it.
            frames_per_track: Crops of each player track (SoccerNet tracklets, JSONL rows with a track_id) read
                per pass: evaluation and predict read this many, evenly spaced through the track (consecutive
                frames are near copies); train draws this many of every track's frames each epoch,
                afresh, so all of them are used over the epochs. None: all of them (train: as many a track
                as the tracks' mean length).
            val_share: With no val split and a train split of player tracks (SoccerNet ships none), this share of
                train's tracks is held out, whole, as val.
            val_seed: Which tracks are held out: a seed of their choice, recorded with the run.
            predict_path: What `predict` reads: an image, a folder of images, a JSONL, ImageFolder or SoccerNet
                split folder, or a text file of image paths. None predicts on the test split (or val).
        """
        super().__init__()
        # class_names is saved once, with the model; saving it here too would make Lightning's hparams merge fail.
        self.save_hyperparameters(ignore=["class_names", "input_shape", "augment"])
        self.hparams["augment"] = asdict(augment)  # checkpoints hold plain values, which weights_only loading reads
        self.augment = augment
        self.cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.embedded = data_root is None
        self.data_root = embedded_root(self.cache) if self.embedded else Path(data_root).expanduser()
        self.where = f"--data.data_root {self.data_root}"
        self.splits: dict[str, Split] = {}
        self.predict = PredictInput("predictions", "", [])
        self.held_out: list[str] = []  # the train tracks held out as val, when the data has no val split
        self.tracklets = False  # whether every train crop belongs to a player track: drawn by BagSampler
        self.bags = False  # whether train is learned in bags of a track's frames (track_labels, resolved)
        self.labels_per_track = False  # whether a crop's label is its track's (SoccerNet), not its own
        self.data_report: dict = {}
        self.fixed_class_names = class_names is not None
        self.resume_at = {"epoch": 0, "batches_done": 0}
        self.relabelled: set[str] | None = None  # train frames of numbered tracklets relabelled illegible (Relabel)
        self.decoded: dict[str, Image.Image] = {}
        self.augment_place: str | None = None  # fit's, resolved: "workers" or "device"
        self.batch_augment: ImageSequential | None = None  # on the device path
        # plain ints: jsonargparse's PositiveInt would reach the checkpoint, which weights_only loading refuses
        self.input_shape = [int(side) for side in input_shape] if input_shape else [int(image_size)] * 2
        self.crop_aspect: float | None = None  # train's crops' median height / width, when keep_aspect read it
        if class_names is not None:  # from a checkpoint: train need not be here, nor readable
            self.class_names, self.class_weights = list(class_names), [1.0] * len(class_names)
            return
        counts = self._train_label_counts()
        self.class_names: list[str] = class_list(counts, all_numbers, illegible, self.where)
        self.class_weights = class_weights(counts, self.class_names)
        if input_shape is None and keep_aspect and not self.embedded:
            self.crop_aspect = median_aspect([path for path, _ in self.splits["train"].samples])
            self.input_shape = shape_for(int(image_size), self.crop_aspect)

    def _train_label_counts(self) -> Counter:
        """Crops per label in train, from its annotations alone: no image is opened, none is rendered."""
        if self.embedded:
            return Counter(dict.fromkeys(DEFAULT_NUMBERS, SPLIT_SIZES["train"]))
        if not self.data_root.is_dir():
            raise JerseyInputError(
                f"{self.where}: no such folder. Point it at the dataset folder that holds train/ and val/ (or "
                "valid/), or leave it unset to train on the embedded synthetic set."
            )
        return Counter(label for _, label in self._read("train", required=True).samples)

    def _read(self, split: str, required: bool) -> Split | None:
        hp = self.hparams
        if split not in self.splits and (found := read_split(self.data_root, split, hp.allow_outside_root)) is not None:
            if split == "train":
                self.tracklets = bool(found.tracks) and all(path in found.tracks for path, _ in found.samples)
                self.labels_per_track = found.layout == "soccernet" or hp.track_labels == "bags"
                self.bags = hp.track_labels == "bags"
                self._check_tracks(found)
            self.splits[split] = with_illegible(found, hp.illegible_labels) if hp.illegible else found
            if split == "train" and found.tracks and hp.val_share and find_split_dir(self.data_root, "val") is None:
                self.splits["train"], self.splits["val"], self.held_out = hold_out(found, hp.val_share, hp.val_seed)
            for name in (split, "val") if split == "train" else (split,):
                if hp.frames_per_track and name in self.splits and not (name == "train" and self.tracklets):
                    thin_tracks(self.splits[name], hp.frames_per_track)
        if required and split not in self.splits:
            names = " or ".join(f"{name}/" for name in SPLIT_NAMES[split])
            raise JerseyInputError(
                f"{self.where}: no {names} split. Expected the splits train/, val/ (or valid/, validation/) and "
                "optionally test/, as Roboflow exports and ImageFolder datasets are laid out; a train split of "
                "player tracks (SoccerNet) lends val --data.val_share of its tracks."
            )
        return self.splits.get(split)

    def _check_tracks(self, train: Split) -> None:
        """What learning from train's player tracks needs, all problems in one error."""
        hp, problems = self.hparams, []
        unreadable = sum(len(train.skipped.get(reason, [])) for reason in UNREADABLE)
        if train.layout == "soccernet" and not hp.illegible and unreadable:
            tracks = {train.tracks.get(path) for path in train.skipped.get("illegible track (-1)", [])}
            problems.append(
                f"{len(tracks)} train tracklets are -1 (their number never visible), and without --data.illegible "
                "true they cannot be learned: add --data.illegible true, so that they teach what a frame without a "
                "readable number looks like"
            )
        if self.bags and not hp.illegible and not problems:
            problems.append(
                "learning tracklets in bags (--data.track_labels bags) needs --data.illegible true: "
                "most frames of a tracklet do not show its number, and illegible is what they are learned as"
            )
        if self.bags and hp.batch_size % hp.bag_size:
            problems.append(
                f"--data.batch_size {hp.batch_size} is not a multiple of --data.bag_size {hp.bag_size}: a batch "
                "holds whole bags of one tracklet's frames; make it one"
            )
        if self.bags and hp.sampler == "balanced":
            problems.append(
                "--data.sampler balanced draws crops, and tracklets are drawn as bags, every tracklet alike: drop "
                "it, or use --data.track_labels frames"
            )
        if problems:
            raise JerseyInputError(f"{self.where}: " + "; ".join(problems) + ".")

    def prepare_data(self) -> None:
        if self.embedded:
            with cache_lock(self.cache):
                embedded_dataset(self.cache)

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.trainer is not None:
            self._place_augmentation()
        if stage == "predict" and self.hparams.predict_path is not None:
            self.predict = PredictInput.read(Path(self.hparams.predict_path).expanduser())
        else:
            if not self.data_root.is_dir():
                self._train_label_counts()  # the error that names the flag
            for split in ("train", "val", "test"):
                self._read(split, required=split in STAGE_SPLITS[stage])
            with cache_lock(self.cache):
                self._examine()
            if stage == "predict":
                self.predict = PredictInput.of_split(self._read("test", False) or self._read("val", True))
        self.predict.inputs = thin_inputs(self.predict.inputs, self.hparams.frames_per_track)

    def augmentation_place(self, device: torch.device) -> str:
        """Where fit's augmentation runs, "workers" or "device": --data.augment_on, auto resolved for ``device``."""
        if self.hparams.augment_on != "auto":
            return self.hparams.augment_on
        return "device" if device.type == "cuda" else "workers"

    def _place_augmentation(self) -> None:
        hp, device = self.hparams, self.trainer.strategy.root_device
        self.augment_place = self.augmentation_place(device)
        batched = self.augment_place == "device"
        self.batch_augment = batch_augmentation(self.input_shape, self.augment) if batched else None
        if self.batch_augment is not None:
            self.batch_augment.to(device)
        if self.trainer.is_global_zero:
            loader = "the loader workers" if hp.num_workers else "the loader"
            if self.augment.strength == 0:
                where = "off (--data.augment.strength 0)"
            elif batched:
                where = f"batched on {device}, after JPEG and noise at each crop's own size and the resize in {loader}"
            else:
                where = f"per crop, in {loader}"
            say(f"jersey-cls: training augmentation {where} (--data.augment_on {hp.augment_on})")

    def on_before_batch_transfer(self, batch, dataloader_idx: int):
        # The seed of a train batch's augmentation on the device: where its first crop stands in the epoch's
        # order, read here while the positions are still on the CPU. A resumed run then draws what an
        # uninterrupted one would have, and each DDP rank draws its own.
        if self.batch_augment is not None and isinstance(batch, dict) and "position" in batch:
            batch["augment_seed"] = derive_seed(run_seed(), self.trainer.current_epoch, int(batch["position"][0]), 1)
        return batch

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if not isinstance(batch, dict) or (seed := batch.pop("augment_seed", None)) is None:
            return batch  # not a train batch on the device path: evaluation, the model summary's example, None
        # kornia draws from torch's global generators; the model reseeds them for its own draws before every step.
        torch.manual_seed(seed)
        augmented = self.batch_augment(batch["image"].float().div_(255))
        batch["image"] = augmented.mul_(255).round_().clamp_(0, 255).to(torch.uint8)
        return batch

    def _examine(self) -> None:
        """Run the data doctor; skip what it flags (or refuse, when strict) and keep its report."""
        report, bad, leaking = examine(self.splits, self.cache, max(1, self.hparams.num_workers))
        self.data_report = report
        if not report:
            return
        if self.hparams.strict:
            raise JerseyInputError(
                f"{self.where}: the data doctor found problems, and --data.strict is on:\n{format_report(report)}\n"
                "Fix these files, or drop --data.strict to skip the bad samples and train on the rest."
            )
        skip_flagged(self.splits, bad, leaking)
        warnings.warn(
            f"{self.where}: the data doctor skipped bad samples (use --data.strict true to refuse instead):\n"
            + format_report(report),
            JerseyWarning,
            stacklevel=3,
        )

    def state_dict(self) -> dict:
        """Saved in checkpoints: where in which epoch training stands, so the train order resumes there, and
        what that order depends on, so a resume that would change it is refused.

        Lightning iterates the train loader before it restores its loops, and worker processes take their first
        indices then, so the sampler must be built at the right place rather than moved there later."""
        if self.trainer is None:
            return {}
        epoch, batches_done = train_progress(self.trainer)
        return {
            "epoch": epoch,
            "batches_done": batches_done,
            "batch_size": self.hparams.batch_size,
            "world_size": self.trainer.world_size,
            "accumulate_grad_batches": self.trainer.accumulate_grad_batches,
            **({"augment_on": self.augment_place} if self.augment_place else {}),
            "input_shape": self.input_shape,
            "bags": self.bags,
            **({"bag_size": self.hparams.bag_size} if self.bags else {}),
            # relative to data_root, so that a run whose data moves keeps them
            **(
                {"relabelled": sorted(os.path.relpath(p, self.data_root) for p in self.relabelled)}
                if self.relabelled is not None
                else {}
            ),  # fmt: skip
        }

    def load_state_dict(self, state_dict: dict) -> None:
        self.resume_at = {"epoch": state_dict.get("epoch", 0), "batches_done": state_dict.get("batches_done", 0)}
        relabelled = state_dict.get("relabelled")
        self.relabelled = None if relabelled is None else {str(self.data_root / path) for path in relabelled}

    def _loader(self, split_name: str, train: bool) -> DataLoader:
        hp = self.hparams
        samples = indexed(self._read(split_name, required=True), self.class_names, warn=self.fixed_class_names)
        batched = self.augment_place == "device"
        transform = (
            train_transform(self.input_shape, self.augment, batched) if train else eval_transform(self.input_shape)
        )
        # Each rank reads its own share: JerseyTrainer turns Lightning's distributed sampler off.
        rank, world_size = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        sampler, seed = range(rank, len(samples), world_size), None  # evaluation: every sample once, no padding
        bag_size = None
        if train:
            if self.relabelled:
                illegible = self.class_names.index(ILLEGIBLE)
                samples = [(path, illegible if path in self.relabelled else target) for path, target in samples]
            seed = run_seed()
            epoch, skip = self.resume_at["epoch"], self.resume_at["batches_done"] * hp.batch_size
            if self.tracklets:  # every frame drawn in turn, every track alike
                tracks = track_members(samples, self.splits["train"].tracks)
                frames = hp.frames_per_track or round(len(samples) / len(tracks))
                bag_size = hp.bag_size if self.bags else None
                sampler = BagSampler(tracks, frames, bag_size or 1, seed, epoch, skip, rank, world_size)
            else:
                weights = [self.class_weights[target] for _, target in samples] if hp.sampler == "balanced" else None
                sampler = EpochSampler(len(samples), seed, weights, epoch, skip, rank, world_size)
        if hp.decode_once:  # before the workers start, so they share the pixels
            for path, _ in samples:
                if path not in self.decoded and (image := decode_or_none(path)) is not None:
                    self.decoded[path] = image
        return DataLoader(
            CropDataset(samples, transform, seed, self.decoded, bag_size),
            batch_size=hp.batch_size,
            sampler=sampler,
            drop_last=train and len(sampler) > hp.batch_size,
            num_workers=hp.num_workers,
            pin_memory=hp.pin_memory,
            persistent_workers=hp.persistent_workers and hp.num_workers > 0,
            collate_fn=collate_readable,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def train_frames(self) -> tuple[list[tuple[str, int]], DataLoader]:
        """Every train frame with its given target, and a loader that reads them as evaluation does, in order."""
        samples = indexed(self._read("train", required=True), self.class_names, warn=False)
        dataset = CropDataset(samples, eval_transform(self.input_shape), None, self.decoded)
        hp = self.hparams
        loader = DataLoader(dataset, batch_size=hp.batch_size, num_workers=hp.num_workers, collate_fn=collate_readable)
        return samples, loader

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def predict_dataloader(self) -> DataLoader:
        hp = self.hparams
        dataset = PredictDataset(self.predict.inputs, eval_transform(self.input_shape), self.input_shape)
        return DataLoader(dataset, batch_size=hp.batch_size, num_workers=hp.num_workers, pin_memory=hp.pin_memory)


def cache_lock(cache: Path) -> FileLock:
    """Serialises rendering and scanning across processes (DDP ranks, concurrent runs): the first does the work,
    the others then find it in the cache instead of repeating it."""
    cache.mkdir(parents=True, exist_ok=True)
    return FileLock(cache / ".lock")
