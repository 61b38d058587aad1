"""JerseyDataModule: finds the splits, derives the class list and weights, serves uint8 crops."""

import contextlib
import fcntl
import warnings
from collections import Counter
from pathlib import Path
from typing import Literal

import lightning.pytorch as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from jersey_cls import default_cache_dir
from jersey_cls.data.doctor import examine, format_report
from jersey_cls.data.images import load_rgb
from jersey_cls.data.layouts import Split, label_sort_key, read_predict_inputs, read_split
from jersey_cls.data.sampling import EpochSampler
from jersey_cls.data.synthetic import embedded_dataset
from jersey_cls.data.transforms import eval_transform, train_transform
from jersey_cls.errors import JerseyInputError, JerseyWarning
from jersey_cls.numbers import LEGAL_NUMBERS, is_legal
from jersey_cls.seeds import derive_seed, run_seed


class CropDataset(Dataset):
    """{"image": uint8 CHW, "target": class index, "index": sample index}; an unreadable image yields ``None``,
    which the collate drops. The index lets a failing batch be traced back to its files."""

    def __init__(
        self,
        samples: list[tuple[str, int]],
        transform: v2.Transform,
        seed: int | None = None,
        decoded: dict[str, Image.Image] | None = None,
    ) -> None:
        self.samples = samples
        self.transform = transform
        self.seed = seed
        self.decoded = decoded or {}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | tuple[int, int, int]):
        """``key`` is an index, or (epoch, position, index) from EpochSampler: then the augmentation is seeded by
        (epoch, position), so a resumed run augments exactly as an uninterrupted one, in any worker."""
        epoch, position, index = key if isinstance(key, tuple) else (None, None, key)
        path, target = self.samples[index]
        try:
            image = self.decoded[path] if path in self.decoded else load_rgb(path)
            if epoch is not None and self.seed is not None:
                # The transforms draw from torch's global CPU generator. Reseeding it (not forking it: 70x the
                # cost) is harmless in the main process too, where the model reseeds it at every step.
                torch.random.default_generator.manual_seed(derive_seed(self.seed, epoch, position))
            image = self.transform(image)
            return {"image": image, "target": target, "index": index}
        except (OSError, ValueError) as error:
            warnings.warn(f"skipping unreadable image {path}: {error}", JerseyWarning, stacklevel=1)
            return None


class PredictDataset(Dataset):
    """{"image", "path", "label", "error"} per input; an unreadable image gets a blank image and its error text."""

    def __init__(self, inputs: list[tuple[str, str | None]], transform: v2.Transform, image_size: int) -> None:
        self.inputs = inputs
        self.transform = transform
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> dict:
        path, label = self.inputs[index]
        try:
            tensor = self.transform(load_rgb(path))
            error = ""
        except (OSError, ValueError) as failure:
            tensor = torch.zeros(3, self.image_size, self.image_size, dtype=torch.uint8)
            error = f"{type(failure).__name__}: {failure}"
        return {"image": tensor, "path": path, "label": label or "", "error": error}


def decode_or_none(path: str) -> Image.Image | None:
    """The decoded image, or None for an unreadable one, which the dataset then reports when it is drawn."""
    try:
        return load_rgb(path)
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def one_process_at_a_time(cache: Path):
    """Serialises rendering and scanning across processes (DDP ranks, concurrent runs): the first does the work,
    the others then find it in the cache instead of repeating it."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def collate_readable(batch: list):
    """Default collate over the samples that decoded, so one bad image never kills an epoch."""
    readable = [sample for sample in batch if sample is not None]
    if not readable:
        return None
    return torch.utils.data.default_collate(readable)


class JerseyDataModule(pl.LightningDataModule):
    def __init__(
        self,
        data_root: str | None = None,
        image_size: int = 224,
        batch_size: int = 64,
        num_workers: int = 2,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        sampler: Literal["shuffle", "balanced"] = "shuffle",
        jpeg_quality: tuple[int, int] = (15, 70),
        jpeg_p: float = 0.6,
        noise_sigma: tuple[float, float] = (5.0, 30.0),
        noise_p: float = 0.5,
        erasing_p: float = 0.2,
        decode_once: bool = False,
        cache_dir: str | None = None,
        strict: bool = False,
        class_names: list[str] | None = None,
        all_numbers: bool = False,
        predict_path: str | None = None,
    ) -> None:
        """Jersey-number crops in Roboflow JSONL or ImageFolder layout.

        Args:
            data_root: Dataset folder holding train/, val/ or valid/, and optionally test/. None trains on the
                embedded synthetic jersey set.
            image_size: Side of the square input, in pixels.
            batch_size: Crops per batch.
            num_workers: Data-loading worker processes.
            pin_memory: Pin batches in page-locked memory for faster host-to-GPU copies.
            persistent_workers: Keep workers alive between epochs (needs num_workers > 0).
            sampler: "shuffle" for plain shuffling, "balanced" for a class-balanced WeightedRandomSampler.
            jpeg_quality: JPEG re-compression quality range used in training augmentation.
            jpeg_p: Probability of JPEG re-compression per training crop.
            noise_sigma: Gaussian noise sigma range on the 0-255 scale.
            noise_p: Probability of Gaussian noise per training crop.
            erasing_p: Probability of random erasing per training crop.
            decode_once: Decode every image once, when its loader is built, and keep the pixels in RAM (the
                workers share them) instead of decoding each epoch. Off: decoding is under a tenth of a
                worker's time per crop (bench/run.py data).
            cache_dir: Cache folder (embedded set, data-doctor results). None: $XDG_CACHE_HOME/jersey-cls or
                ~/.cache/jersey-cls.
            strict: Refuse to train when the data doctor finds any problem, instead of skipping bad samples.
            class_names: Fixed class list in index order. None derives it from train; with --ckpt_path, validate,
                test and predict take it from the checkpoint.
            all_numbers: Class list = the 101 legal numbers (0-99 and 00), those absent from train included; every
                label must be one of them. Set by --model.head digits.
            predict_path: What `predict` reads: a folder of images, a JSONL or ImageFolder split folder, or a text
                file of image paths. None predicts on the test split (or val). When set, data_root is not read.
        """
        super().__init__()
        # class_names is saved once, with the model; saving it here too would make Lightning's hparams merge fail.
        self.save_hyperparameters(ignore=["class_names"])
        self.splits: dict[str, Split] = {}
        self.predict_inputs: list[tuple[str, str | None]] = []
        self.data_report: dict = {}
        self.fixed_class_names = class_names is not None
        self.resume_at = {"epoch": 0, "batches_done": 0}
        self.decoded: dict[str, Image.Image] = {}
        if predict_path is not None:
            if class_names is None:
                raise JerseyInputError(
                    "--data.predict_path needs a trained model: add --ckpt_path CKPT (the class list comes from it)."
                )
            self.data_root = None
            self.class_names = list(class_names)
            self.class_weights = [1.0] * len(self.class_names)
            self.predict_inputs = read_predict_inputs(Path(predict_path).expanduser())
            return
        cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        if data_root is None:
            with one_process_at_a_time(cache):
                root = embedded_dataset(cache)
        else:
            root = Path(data_root).expanduser()
            if not root.is_dir():
                raise JerseyInputError(
                    f"--data.data_root {data_root}: no such folder. Point it at the dataset folder that holds "
                    "train/ and val/ (or valid/), or leave it unset to train on the embedded synthetic set."
                )
        self.data_root = root
        train = read_split(root, "train")
        if train is None:
            raise JerseyInputError(
                f"--data.data_root {root}: no train/ split. Expected {root}/train/ next to {root}/val/ "
                "(or valid/), as Roboflow exports and ImageFolder datasets are laid out."
            )
        val = read_split(root, "val")
        if val is None:
            raise JerseyInputError(f"--data.data_root {root}: no val/ or valid/ split next to train/. Add one.")
        self.splits = {"train": train, "val": val}
        test = read_split(root, "test")
        if test is not None:
            self.splits["test"] = test
        with one_process_at_a_time(cache):
            self._examine(cache, strict, max(1, num_workers))
        split_for_predict = self.splits.get("test", val)
        self.predict_inputs = [(path, label) for path, label in split_for_predict.samples]

        counts = Counter(label for _, label in train.samples)
        if all_numbers and not class_names:
            not_numbers = sorted((label for label in counts if not is_legal(label)), key=label_sort_key)
            if not_numbers:
                raise JerseyInputError(
                    f"{train.root}: --model.head digits reads the numbers 0-99 and 00, and train has other labels: "
                    f"{not_numbers[:10]}. Relabel or remove those images, or use --model.head classes."
                )
            class_names = LEGAL_NUMBERS
        self.class_names: list[str] = list(class_names) if class_names else sorted(counts, key=label_sort_key)
        # Inverse frequency, scaled to mean 1 so the loss scale matches the unweighted loss.
        total, num_classes = sum(counts.values()), len(self.class_names)
        self.class_weights: list[float] = [total / (num_classes * max(1, counts[name])) for name in self.class_names]

    def _examine(self, cache_dir: Path, strict: bool, workers: int) -> None:
        """Run the data doctor; skip what it flags (or refuse, when strict) and keep its report."""
        report, bad, leaking = examine(self.splits, cache_dir, workers)
        self.data_report = report
        if not report:
            return
        where = f"--data.data_root {self.data_root}"
        if strict:
            raise JerseyInputError(
                f"{where}: the data doctor found problems, and --data.strict is on:\n{format_report(report)}\n"
                "Fix these files, or drop --data.strict to skip the bad samples and train on the rest."
            )
        for name, split in self.splits.items():
            split.samples = [
                (path, label)
                for path, label in split.samples
                if path not in bad and (name == "train" or path not in leaking)
            ]
        warnings.warn(
            f"{where}: the data doctor skipped bad samples (use --data.strict true to refuse instead):\n"
            + format_report(report),
            JerseyWarning,
            stacklevel=3,
        )

    def state_dict(self) -> dict:
        """Saved in checkpoints: where in which epoch training stands, so the train order resumes there.

        Lightning iterates the train loader before it restores its loops, and worker processes take their first
        indices then, so the sampler must be built at the right place rather than moved there later."""
        if self.trainer is None:
            return {}
        epochs = self.trainer.fit_loop.epoch_progress.current
        batches = self.trainer.fit_loop.epoch_loop.batch_progress.current
        # Between epochs Lightning starts the next one afresh. Within one it resumes after the last batch that
        # finished its optimizer step (saved on_train_batch_end or on SIGTERM), as counted here.
        if epochs.processed == epochs.started:
            done = 0
        else:
            done = batches.processed if batches.processed == batches.started else batches.completed
        return {"epoch": epochs.processed, "batches_done": done}

    def load_state_dict(self, state_dict: dict) -> None:
        self.resume_at = {"epoch": state_dict.get("epoch", 0), "batches_done": state_dict.get("batches_done", 0)}

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def summary(self) -> dict:
        """Per-split image and per-class counts, the train imbalance ratio, and classes missing from each split."""
        counts = {name: Counter(label for _, label in split.samples) for name, split in self.splits.items()}
        train = counts["train"]
        others = {name: c for name, c in counts.items() if name != "train"}
        if not self.splits:
            return {"predict_inputs": len(self.predict_inputs), "classes": len(self.class_names)}
        return {
            "data_root": str(self.data_root),
            "layout": {name: split.layout for name, split in self.splits.items()},
            "images": {name: sum(c.values()) for name, c in counts.items()},
            "classes": len(self.class_names),
            "imbalance_ratio": max(train.values()) / min(train.values()),
            "missing_from": {name: [label for label in self.class_names if not c[label]] for name, c in others.items()},
            "not_in_train": {name: sorted(set(c) - set(train), key=label_sort_key) for name, c in others.items()},
            "skipped": {name: {k: len(v) for k, v in split.skipped.items()} for name, split in self.splits.items()},
            "per_class": {label: {name: c[label] for name, c in counts.items()} for label in self.class_names},
        }

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
        if split_name not in self.splits:
            raise JerseyInputError(
                f"--data.data_root {self.data_root}: no {split_name}/ split, so there is nothing to "
                f"{'test' if split_name == 'test' else 'load'}. Add {self.data_root}/{split_name}/ or use `validate`."
            )
        hp = self.hparams
        samples = self._indexed(self.splits[split_name])
        if train:
            transform = train_transform(
                hp.image_size, hp.jpeg_quality, hp.jpeg_p, hp.noise_sigma, hp.noise_p, hp.erasing_p
            )
        else:
            transform = eval_transform(hp.image_size)
        # Under DDP each rank reads its own share (base.yaml sets use_distributed_sampler false: no second split).
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
