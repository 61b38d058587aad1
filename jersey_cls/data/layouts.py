"""Read a dataset root in either supported layout into (image path, label) samples.

Layouts:
- Roboflow JSONL: ``<split>/**/*.jsonl`` with lines ``{"image": ..., "suffix": "23"}``; every
  ``.jsonl`` under a split is read together, image paths are relative to their ``.jsonl`` file.
- ImageFolder: ``<split>/<label>/<image>``; a sub-folder with a ``.jsonl`` in it (``<split>/synthetic/``) is
  read as JSONL, so rendered top-ups sit next to real data in either layout.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from jersey_cls.errors import JerseyInputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
SPLIT_NAMES = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
JSONL_KEYS = ("image", "suffix")  # Roboflow's text-image-pairs export: the image file and its label


@dataclass
class Split:
    """The samples of one split, what was skipped while reading it, and the images of rows with an empty label
    (an unreadable number), which a run can learn as "illegible"."""

    name: str
    root: Path
    layout: str
    samples: list[tuple[str, str]]
    skipped: dict[str, list[str]] = field(default_factory=dict)
    unlabelled: list[str] = field(default_factory=list)

    def skip(self, reason: str, example: str) -> None:
        self.skipped.setdefault(reason, []).append(example)


def label_sort_key(label: str) -> tuple:
    """Natural numeric order that keeps "0" and "00" distinct: 0, 00, 1, 2, ..., 10, ..., then non-numbers."""
    if label.isdigit():
        return (0, int(label), len(label), label)
    return (1, 0, 0, label)


def find_split_dir(data_root: Path, split: str) -> Path | None:
    for name in SPLIT_NAMES[split]:
        if (data_root / name).is_dir():
            return data_root / name
    return None


def read_split(data_root: Path, split: str) -> Split | None:
    """Read one split; ``None`` when the split folder does not exist."""
    split_dir = find_split_dir(data_root, split)
    return None if split_dir is None else read_split_dir(split_dir, split)


def read_split_dir(split_dir: Path, split: str) -> Split:
    """Read the split folder ``split_dir`` in whichever layout it has."""
    if any(split_dir.glob("*.jsonl")):  # a Roboflow export: every .jsonl under the split is read
        result = Split(split, split_dir, "jsonl", [])
        for jsonl_file in sorted(split_dir.rglob("*.jsonl")):
            _read_jsonl(jsonl_file, result)
    elif label_dirs := sorted(child for child in split_dir.iterdir() if child.is_dir()):
        # ImageFolder; a sub-folder holding a .jsonl (such as synthetic/ from jersey-cls-synth) is read as JSONL.
        jsonl_parts = {d: sorted(d.rglob("*.jsonl")) for d in label_dirs}
        folders, jsonl = not all(jsonl_parts.values()), any(jsonl_parts.values())
        layout = "imagefolder+jsonl" if folders and jsonl else "jsonl" if jsonl else "imagefolder"
        result = Split(split, split_dir, layout, [])
        for label_dir, jsonl_files in jsonl_parts.items():
            for jsonl_file in jsonl_files:
                _read_jsonl(jsonl_file, result)
            if not jsonl_files:
                _read_imagefolder(label_dir, result)
    else:
        raise JerseyInputError(
            f"{split_dir} is neither a Roboflow JSONL split (no *.jsonl file under it) nor an ImageFolder split "
            f"(no <label>/ sub-folders). Lay it out as {split_dir}/annotations.jsonl with "
            f'{{"image": "<file>", "suffix": "<label>"}} lines, or as {split_dir}/<label>/<image>.'
        )
    result.samples = _drop_conflicting_labels(result)
    if not result.samples:
        raise JerseyInputError(
            f"split '{split}' at {split_dir} has no usable images ({_skipped_summary(result) or 'none found'}). "
            "Add labelled images to it, or point --data.data_root at the dataset root."
        )
    return result


def _read_jsonl(jsonl_file: Path, split: Split) -> None:
    other_keys = set()
    found = len(split.samples)
    for line_number, line in enumerate(jsonl_file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{jsonl_file}:{line_number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            split.skip("malformed JSONL line", f"{where}: not JSON ({error.msg})")
            continue
        if not isinstance(row, dict) or not all(key in row for key in JSONL_KEYS):
            keys = sorted(row) if isinstance(row, dict) else type(row).__name__
            other_keys.add(str(keys))
            split.skip("malformed JSONL line", f"{where}: has {keys}, expected the keys {list(JSONL_KEYS)}")
            continue
        label = str(row["suffix"]).strip()
        image_path = jsonl_file.parent / str(row["image"])
        if not image_path.is_file():
            split.skip("missing image", f"{where} -> {image_path}")
        elif not label:
            split.skip("empty label", where)
            split.unlabelled.append(str(image_path))
        else:
            split.samples.append((str(image_path), label))
    if len(split.samples) == found and other_keys:
        raise JerseyInputError(
            f"{jsonl_file}: no row has the keys {list(JSONL_KEYS)} of Roboflow's JSONL export (found: "
            f"{', '.join(sorted(other_keys))}). Rename the keys: image is the image file, relative to the .jsonl "
            "file, and suffix is its label; or lay the split out as ImageFolder (<split>/<label>/<image>)."
        )


def _read_imagefolder(label_dir: Path, split: Split) -> None:
    for path in sorted(label_dir.rglob("*")):
        if path.is_file():
            if path.suffix.lower() in IMAGE_SUFFIXES:
                split.samples.append((str(path), label_dir.name))
            else:
                split.skip("not an image file", str(path))


def _drop_conflicting_labels(split: Split) -> list[tuple[str, str]]:
    """Keep one row per image; an image listed with two different labels is ambiguous and dropped."""
    labels_by_image: dict[str, set[str]] = {}
    for path, label in split.samples:
        labels_by_image.setdefault(path, set()).add(label)
    kept, seen = [], set()
    for path, label in split.samples:
        if path in seen:
            continue
        seen.add(path)
        if len(labels_by_image[path]) > 1:
            split.skip("image listed with different labels", f"{path}: {sorted(labels_by_image[path])}")
        else:
            kept.append((path, label))
    return kept


def _skipped_summary(split: Split) -> str:
    return "; ".join(
        f"{len(examples)} {reason} (e.g. {examples[0]})" for reason, examples in sorted(split.skipped.items())
    )


def read_predict_inputs(predict_path: Path) -> list[tuple[str, str | None, str]]:
    """(image path, known label or None, the JSONL row's other keys as JSON) for an image, a folder of images, a
    JSONL or ImageFolder split, or a text file of image paths, one per line.

    Nothing is filtered out: a missing or unreadable image becomes an error row at prediction time.
    """
    if not predict_path.exists():
        raise JerseyInputError(
            f"--data.predict_path {predict_path}: no such file or folder. Give an image, a folder of images, a split "
            "folder (annotations.jsonl or <label>/ sub-folders), or a text file with one image path per line."
        )
    if predict_path.is_file() and predict_path.suffix.lower() in IMAGE_SUFFIXES:
        inputs = [(str(predict_path), None, "{}")]
    elif predict_path.is_file():
        try:
            lines = predict_path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise JerseyInputError(
                f"--data.predict_path {predict_path}: neither an image ({', '.join(sorted(IMAGE_SUFFIXES))}) nor a "
                "text file of image paths. Give an image, a folder of images, a split folder, or a text file."
            ) from None
        paths = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        inputs = [(str(predict_path.parent / p), None, "{}") for p in paths]  # absolute paths stay absolute
    elif jsonl_files := sorted(predict_path.rglob("*.jsonl")):
        inputs = []
        for jsonl_file in jsonl_files:
            for line in jsonl_file.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    image, label = str(jsonl_file.parent / row.pop("image")), str(row.pop("suffix", "") or "") or None
                except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
                    continue  # not an image row; there is no image to report on
                inputs.append((image, label, json.dumps(row)))
    else:
        images = sorted(p for p in predict_path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        # In an ImageFolder split the sub-folder is the label; flat folders have none.
        inputs = [(str(p), p.parent.name if p.parent != predict_path else None, "{}") for p in images]
    if not inputs:
        raise JerseyInputError(
            f"--data.predict_path {predict_path}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})."
        )
    return inputs
