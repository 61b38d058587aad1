"""JerseyDataModule: the class list from train's labels, the splits checked by the data doctor, uint8 crops."""

import json
import warnings
from collections import Counter
from pathlib import Path
from typing import Literal

import lightning.pytorch as pl
from filelock import FileLock
from jsonargparse.typing import ClosedUnitInterval, NonNegativeInt, PositiveInt
from PIL import Image
from torch.utils.data import DataLoader

from jersey_cls import default_cache_dir
from jersey_cls.data.datasets import CropDataset, PredictDataset, collate_readable, decode_or_none
from jersey_cls.data.doctor import examine, format_report, skip_flagged
from jersey_cls.data.layouts import (
    SPLIT_NAMES,
    TRACK_KEY,
    UNREADABLE,
    Split,
    find_split_dir,
    hold_out,
    is_soccernet,
    label_sort_key,
    read_predict_inputs,
    read_split,
    relabel_unread,
    thin_inputs,
    thin_tracks,
    track_folders,
)
from jersey_cls.data.sampling import EpochSampler
from jersey_cls.data.synthetic import DEFAULT_NUMBERS, SPLIT_SIZES, embedded_dataset, embedded_root
from jersey_cls.data.transforms import eval_transform, train_transform
from jersey_cls.errors import JerseyInputError, JerseyWarning
from jersey_cls.lightning_internals import train_progress
from jersey_cls.numbers import ILLEGIBLE, LEGAL_NUMBERS, is_legal
from jersey_cls.seeds import run_seed

# What each stage reads; the data doctor looks at every split present, for leakage into val and test.
STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ()}


class JerseyDataModule(pl.LightningDataModule):
    def __init__(
        self,
        data_root: str | None = None,
        image_size: PositiveInt = 224,
        batch_size: PositiveInt = 64,
        num_workers: NonNegativeInt = 2,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        sampler: Literal["shuffle", "balanced"] = "shuffle",
        augment: ClosedUnitInterval = 1.0,
        jpeg_quality: tuple[int, int] = (15, 70),
        jpeg_p: ClosedUnitInterval = 0.6,
        noise_sigma: tuple[float, float] = (5.0, 30.0),
        noise_p: ClosedUnitInterval = 0.5,
        erasing_p: ClosedUnitInterval = 0.2,
        decode_once: bool = False,
        cache_dir: str | None = None,
        strict: bool = False,
        class_names: list[str] | None = None,
        all_numbers: bool | None = False,
        illegible: bool = False,
        illegible_labels: tuple[str, ...] = ("-1", "illegible"),
        frame_labels: str | None = None,
        frames_per_track: PositiveInt | None = 16,
        val_share: ClosedUnitInterval = 0.1,
        val_seed: int = 0,
        predict_path: str | None = None,
    ) -> None:
        """Jersey-number crops in Roboflow JSONL or ImageFolder layout.

        Args:
            data_root: Dataset folder holding train/, val/ (or valid/, validation/) and optionally test/. None
                trains on the embedded synthetic jersey set.
            image_size: Side of the square input, in pixels.
            batch_size: Crops per batch.
            num_workers: Data-loading worker processes.
            pin_memory: Pin batches in page-locked memory for faster host-to-GPU copies.
            persistent_workers: Keep workers alive between epochs (needs num_workers > 0).
            sampler: "shuffle" for plain shuffling, "balanced" for a class-balanced WeightedRandomSampler.
            augment: Strength of the training augmentation: 1 is the published ResNet18 recipe's (crop, affine,
                perspective, colour, blur, and the JPEG, noise and erasing probabilities below), 0 is none. Every
                magnitude and probability scales with it.
            jpeg_quality: JPEG re-compression quality range used in training augmentation.
            jpeg_p: Probability of JPEG re-compression per training crop, at augment 1.
            noise_sigma: Gaussian noise sigma range on the 0-255 scale.
            noise_p: Probability of Gaussian noise per training crop, at augment 1.
            erasing_p: Probability of random erasing per training crop, at augment 1.
            decode_once: Decode every image once, when its loader is built, and keep the pixels in RAM (the
                workers share them) instead of decoding each epoch. Off: decoding is under a tenth of a
                worker's time per crop (bench/speed_run.py data).
            cache_dir: Cache folder (embedded set, data-doctor results). None: $XDG_CACHE_HOME/jersey-cls or
                ~/.cache/jersey-cls.
            strict: Refuse to train when the data doctor finds any problem, instead of skipping bad samples.
            class_names: Fixed class list in index order (the class weights are then 1). None derives it from
                train; validate, test, predict and export take it from the checkpoint.
            all_numbers: Class list = the 101 legal numbers (0-99 and 00), those absent from train included; every
                label must be one of them. None: so when every train label is one. Set by --model.head (digits:
                true, classes: false, auto: None).
            illegible: Learn an "illegible" class (the last) from the crops whose number cannot be read: rows with
                an empty label and the labels in illegible_labels. Off: those rows are skipped (and counted).
            illegible_labels: Labels that mean "cannot be read", such as SoccerNet's -1, with illegible on.
            frame_labels: A predictions CSV of train (`jersey-cls predict` of a first model over the train split):
                the train crops it reads as illegible become illegible, whatever their track's number. For labels
                given per track, such as SoccerNet's, where most frames of a track do not show its number.
                Needs illegible on.
            frames_per_track: Read at most this many crops of each player track (SoccerNet tracklets, JSONL rows
                with a track_id), evenly spaced through it, in every split and in predict: a tracklet's
                consecutive frames are near copies. None: all of them.
            val_share: With no val split and a train split of player tracks (SoccerNet ships none), this share of
                train's tracks is held out, whole, as val.
            val_seed: Which tracks are held out: a seed of their choice, recorded with the run.
            predict_path: What `predict` reads: an image, a folder of images, a JSONL, ImageFolder or SoccerNet
                split folder, or a text file of image paths. None predicts on the test split (or val).
        """
        super().__init__()
        # class_names is saved once, with the model; saving it here too would make Lightning's hparams merge fail.
        self.save_hyperparameters(ignore=["class_names"])
        ranges = (("jpeg_quality", jpeg_quality, 1, 100), ("noise_sigma", noise_sigma, 0, 255))
        problems = [
            f"--data.{name} {list(value)}: give [low, high] with {low} <= low <= high <= {high}"
            for name, value, low, high in ranges
            if not low <= value[0] <= value[1] <= high
        ]
        if frame_labels is not None and not illegible:
            problems.append(f"--data.frame_labels {frame_labels}: needs --data.illegible true, the class it sets")
        if problems:
            raise JerseyInputError("\n".join(problems))
        self.cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.embedded = data_root is None
        self.data_root = embedded_root(self.cache) if self.embedded else Path(data_root).expanduser()
        self.splits: dict[str, Split] = {}
        self.predict_inputs: list[tuple[str, str | None, str]] = []
        self.predict_name = "predictions"  # names the predictions file after the input
        self.predict_layout = ""  # "soccernet" when predict reads a SoccerNet split: the submission is written
        self.predict_tracks: list[str] = []  # every player track of the predict input, crops read or not
        self.held_out: list[str] = []  # the train tracks held out as val, when the data has no val split
        self.data_report: dict = {}
        self.fixed_class_names = class_names is not None
        self.resume_at = {"epoch": 0, "batches_done": 0}
        self.decoded: dict[str, Image.Image] = {}
        if class_names is not None:  # from a checkpoint: train need not be here, nor readable
            self.class_names, self.class_weights = list(class_names), [1.0] * len(class_names)
            return
        counts = self._train_label_counts()
        self.class_names: list[str] = self._derive_classes(counts, all_numbers)
        # Inverse frequency, scaled to mean 1 so the loss scale matches the unweighted loss.
        total, num_classes = sum(counts.values()), len(self.class_names)
        self.class_weights = [total / (num_classes * max(1, counts[name])) for name in self.class_names]

    def _train_label_counts(self) -> Counter:
        """Crops per label in train, from its annotations alone: no image is opened, none is rendered."""
        if self.embedded:
            return Counter(dict.fromkeys(DEFAULT_NUMBERS, SPLIT_SIZES["train"]))
        if not self.data_root.is_dir():
            raise JerseyInputError(
                f"--data.data_root {self.data_root}: no such folder. Point it at the dataset folder that holds "
                "train/ and val/ (or valid/), or leave it unset to train on the embedded synthetic set."
            )
        return Counter(label for _, label in self._read("train", required=True).samples)

    def _derive_classes(self, counts: Counter, all_numbers: bool | None) -> list[str]:
        where = f"--data.data_root {self.data_root}"
        numbers = [label for label in counts if label != ILLEGIBLE]
        if len(numbers) < 2:
            raise JerseyInputError(
                f"{where}: train has {len(numbers)} label ({', '.join(numbers)}); a classifier needs at least two. "
                "Add crops of other numbers, or check that the labels were read from the right key or folder."
            )
        if all_numbers is None:
            all_numbers = all(is_legal(label) for label in numbers)
        if all_numbers:
            not_numbers = sorted((label for label in numbers if not is_legal(label)), key=label_sort_key)
            if not_numbers:
                raise JerseyInputError(
                    f"{where}: --model.head digits reads the numbers 0-99 and 00, and train has other labels: "
                    f"{not_numbers[:10]}. Relabel or remove those images, use --data.illegible true for "
                    "illegible crops, or use --model.head classes."
                )
            numbers = list(LEGAL_NUMBERS)
        return sorted(numbers, key=label_sort_key) + ([ILLEGIBLE] if self.hparams.illegible else [])

    def _read(self, split: str, required: bool) -> Split | None:
        hp = self.hparams
        if split not in self.splits and (found := read_split(self.data_root, split)) is not None:
            if hp.frames_per_track:
                thin_tracks(found, hp.frames_per_track)
            self.splits[split] = self._with_illegible(found) if hp.illegible else found
            if split == "train" and found.tracks and hp.val_share and find_split_dir(self.data_root, "val") is None:
                self.splits["train"], self.splits["val"], self.held_out = hold_out(
                    self.splits["train"], hp.val_share, hp.val_seed
                )
            if split == "train" and hp.frame_labels:  # train's own crops only: val keeps its tracks' numbers
                relabel_unread(self.splits["train"], Path(hp.frame_labels).expanduser())
        if required and split not in self.splits:
            names = " or ".join(f"{name}/" for name in SPLIT_NAMES[split])
            raise JerseyInputError(
                f"--data.data_root {self.data_root}: no {names} split. Expected the splits train/, val/ (or valid/, "
                "validation/) and optionally test/, as Roboflow exports and ImageFolder datasets are laid out; a "
                "train split of player tracks (SoccerNet) lends val --data.val_share of its tracks."
            )
        return self.splits.get(split)

    def _with_illegible(self, split: Split) -> Split:
        """Empty-label rows and illegible labels become the "illegible" class; a row that names the number of an
        image also listed with an empty label wins."""
        labels = set(self.hparams.illegible_labels) | {ILLEGIBLE}
        split.samples = [(path, ILLEGIBLE if label in labels else label) for path, label in split.samples]
        labelled = {path for path, _ in split.samples}
        split.samples += [(path, ILLEGIBLE) for path in dict.fromkeys(split.unlabelled) if path not in labelled]
        for reason in UNREADABLE:
            split.skipped.pop(reason, None)
        return split

    def prepare_data(self) -> None:
        if self.embedded:
            with cache_lock(self.cache):
                embedded_dataset(self.cache)

    def setup(self, stage: str) -> None:
        if stage == "predict" and self.hparams.predict_path is not None:
            predict_path = Path(self.hparams.predict_path).expanduser()
            inputs = read_predict_inputs(predict_path)
            self.predict_inputs = thin_inputs(inputs, self.hparams.frames_per_track)
            self.predict_name = predict_path.resolve().stem or "predictions"
            if predict_path.is_dir() and is_soccernet(predict_path):
                self.predict_layout, self.predict_tracks = "soccernet", list(track_folders(predict_path))
            else:
                tracks = (json.loads(fields).get(TRACK_KEY) for _, _, fields in inputs)
                self.predict_tracks = list(dict.fromkeys(str(track) for track in tracks if track is not None))
            return
        if not self.data_root.is_dir():
            self._train_label_counts()  # the error that names the flag
        for split in ("train", "val", "test"):
            self._read(split, required=split in STAGE_SPLITS[stage])
        with cache_lock(self.cache):
            self._examine()
        if stage == "predict":
            split = self._read("test", False) or self._read("val", True)
            self.predict_inputs = [
                (path, label, json.dumps({TRACK_KEY: split.tracks[path]}) if path in split.tracks else "{}")
                for path, label in split.samples
            ]
            self.predict_name = split.name
            self.predict_layout, self.predict_tracks = split.layout, list(dict.fromkeys(split.tracks.values()))

    def _examine(self) -> None:
        """Run the data doctor; skip what it flags (or refuse, when strict) and keep its report."""
        report, bad, leaking = examine(self.splits, self.cache, max(1, self.hparams.num_workers))
        self.data_report = report
        if not report:
            return
        where = f"--data.data_root {self.data_root}"
        if self.hparams.strict:
            raise JerseyInputError(
                f"{where}: the data doctor found problems, and --data.strict is on:\n{format_report(report)}\n"
                "Fix these files, or drop --data.strict to skip the bad samples and train on the rest."
            )
        skip_flagged(self.splits, bad, leaking)
        warnings.warn(
            f"{where}: the data doctor skipped bad samples (use --data.strict true to refuse instead):\n"
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
        }

    def load_state_dict(self, state_dict: dict) -> None:
        self.resume_at = {"epoch": state_dict.get("epoch", 0), "batches_done": state_dict.get("batches_done", 0)}

    def _indexed(self, split: Split) -> list[tuple[str, int]]:
        """Samples with class indices; labels that train lacks cannot be scored and are left out."""
        index = {name: i for i, name in enumerate(self.class_names)}
        unknown = Counter(label for _, label in split.samples if label not in index)
        if unknown and self.fixed_class_names:  # labels absent from train are already in the doctor's report
            warnings.warn(
                f"{split.root}: {sum(unknown.values())} images have labels absent from train and are left out: "
                f"{sorted(unknown, key=label_sort_key)}",
                JerseyWarning,
                stacklevel=2,
            )
        return [(path, index[label]) for path, label in split.samples if label in index]

    def _loader(self, split_name: str, train: bool) -> DataLoader:
        hp = self.hparams
        samples = self._indexed(self._read(split_name, required=True))
        if train:
            transform = train_transform(
                hp.image_size, hp.augment, hp.jpeg_quality, hp.jpeg_p, hp.noise_sigma, hp.noise_p, hp.erasing_p
            )
        else:
            transform = eval_transform(hp.image_size)
        # Each rank reads its own share: JerseyTrainer turns Lightning's distributed sampler off.
        rank, world_size = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        sampler, seed = range(rank, len(samples), world_size), None  # evaluation: every sample once, no padding
        if train:
            seed = run_seed()
            weights = [self.class_weights[target] for _, target in samples] if hp.sampler == "balanced" else None
            epoch, skip = self.resume_at["epoch"], self.resume_at["batches_done"] * hp.batch_size
            sampler = EpochSampler(len(samples), seed, weights, epoch, skip, rank, world_size)
        if hp.decode_once:  # before the workers start, so they share the pixels
            for path, _ in samples:
                if path not in self.decoded and (image := decode_or_none(path)) is not None:
                    self.decoded[path] = image
        return DataLoader(
            CropDataset(samples, transform, seed, self.decoded),
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

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def predict_dataloader(self) -> DataLoader:
        hp = self.hparams
        dataset = PredictDataset(self.predict_inputs, eval_transform(hp.image_size), hp.image_size)
        return DataLoader(dataset, batch_size=hp.batch_size, num_workers=hp.num_workers, pin_memory=hp.pin_memory)


def cache_lock(cache: Path) -> FileLock:
    """Serialises rendering and scanning across processes (DDP ranks, concurrent runs): the first does the work,
    the others then find it in the cache instead of repeating it."""
    cache.mkdir(parents=True, exist_ok=True)
    return FileLock(cache / ".lock")
