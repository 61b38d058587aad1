"""Torch datasets over (image path, label) samples: uint8 CHW crops, one bad image never ends an epoch."""

import warnings

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2

from jersey_cls.data.images import load_rgb
from jersey_cls.messages import JerseyWarning
from jersey_cls.seeds import derive_seed


class CropDataset(Dataset):
    """{"image": uint8 CHW, "target": class index, "index": sample index}, and "position" in the epoch's order when
    the sampler gives one (with ``bag_size``, also "bag": the position's bag of one track's frames, BagSampler's);
    an unreadable image yields ``None``, which the collate drops. The index lets a failing batch be traced back to
    its files; the position seeds the augmentation of a batch on the device."""

    def __init__(
        self,
        samples: list[tuple[str, int]],
        transform: v2.Transform,
        seed: int | None = None,
        decoded: dict[str, Image.Image] | None = None,
        bag_size: int | None = None,
    ) -> None:
        self.samples = samples
        self.bag_size = bag_size
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
                # The transforms draw from torch's global CPU generator. Reseeding it (forking it costs far more) is
                # harmless in the main process too, where the model reseeds it at every step.
                torch.random.default_generator.manual_seed(derive_seed(self.seed, epoch, position))
            sample = {"image": self.transform(image), "target": target, "index": index}
            if position is None:
                return sample
            return {**sample, "position": position, **({"bag": position // self.bag_size} if self.bag_size else {})}
        except (OSError, ValueError) as error:
            warnings.warn(f"skipping unreadable image {path}: {error}", JerseyWarning, stacklevel=1)
            return None


class PredictDataset(Dataset):
    """{"image", "path", "label", "fields", "error"} per input: ``fields`` is the JSON of the input's other JSONL
    keys (a track id, say); an unreadable image gets a blank image and its error text."""

    def __init__(self, inputs: list[tuple[str, str | None, str]], transform: v2.Transform, shape: list[int]) -> None:
        self.inputs = inputs
        self.transform = transform
        self.shape = shape

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> dict:
        path, label, fields = self.inputs[index]
        try:
            tensor = self.transform(load_rgb(path))
            error = ""
        except (OSError, ValueError) as failure:
            tensor = torch.zeros(3, *self.shape, dtype=torch.uint8)
            error = f"{type(failure).__name__}: {failure}"
        return {"image": tensor, "path": path, "label": label or "", "fields": fields, "error": error}


def decode_or_none(path: str) -> Image.Image | None:
    """The decoded image, or None for an unreadable one, which the dataset then reports when it is drawn."""
    try:
        return load_rgb(path)
    except (OSError, ValueError):
        return None


def collate_readable(batch: list):
    """Default collate over the samples that decoded, so one bad image never kills an epoch."""
    readable = [sample for sample in batch if sample is not None]
    if not readable:
        return None
    return torch.utils.data.default_collate(readable)
