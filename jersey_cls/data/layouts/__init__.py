"""A split folder in any supported layout, read into (image path, label) samples for training, or into the
images predict reads. Each layout has one reader of rows (layouts.jsonl, .imagefolder, .soccernet); training
and predict keep different rows of the same reading."""

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from jersey_cls.data.layouts.imagefolder import images_of, read_imagefolder
from jersey_cls.data.layouts.jsonl import read_jsonl
from jersey_cls.data.layouts.rows import IMAGE_SUFFIXES, TRACK_KEY, Row
from jersey_cls.data.layouts.soccernet import is_soccernet, read_soccernet, track_folders
from jersey_cls.messages import JerseyInputError, JerseyWarning

SPLIT_NAMES = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
# Crops whose number cannot be read: skipped, or the "illegible" class with --data.illegible.
UNREADABLE = ("empty label", "illegible track (-1)")


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
    tracks: dict[str, str] = field(default_factory=dict)  # image path -> player track, where the layout has them
    sources: dict[str, str] = field(default_factory=dict)  # image path -> the row that gives its label
    truths: dict[str, str] = field(default_factory=dict)  # track -> its label from all its crops, once thinned

    def skip(self, reason: str, example: str) -> None:
        self.skipped.setdefault(reason, []).append(example)


def find_split_dir(data_root: Path, split: str) -> Path | None:
    for name in SPLIT_NAMES[split]:
        if (data_root / name).is_dir():
            return data_root / name
    return None


def read_split(data_root: Path, split: str, outside_root: bool = False) -> Split | None:
    """Read one split; ``None`` when the split folder does not exist."""
    split_dir = find_split_dir(data_root, split)
    return None if split_dir is None else read_split_dir(split_dir, split, outside_root)


def read_rows(split_dir: Path, need_truth: bool) -> tuple[str, list[Row]]:
    """(layout, rows) of a split folder, in whichever layout it has."""
    if is_soccernet(split_dir):
        return "soccernet", read_soccernet(split_dir, need_truth)
    if any(split_dir.glob("*.jsonl")):  # a Roboflow export: every .jsonl under the split is read
        return "jsonl", [row for jsonl_file in sorted(split_dir.rglob("*.jsonl")) for row in read_jsonl(jsonl_file)]
    if any(child.is_dir() for child in split_dir.iterdir()):
        return read_imagefolder(split_dir)
    raise JerseyInputError(
        f"{split_dir} is neither a Roboflow JSONL split (no *.jsonl file under it), an ImageFolder split (no "
        f"<label>/ sub-folders) nor a SoccerNet split (no images/<player id>/). Lay it out as "
        f'{split_dir}/annotations.jsonl with {{"image": "<file>", "suffix": "<label>"}} lines, or as '
        f"{split_dir}/<label>/<image>."
    )


def read_split_dir(split_dir: Path, split: str, outside_root: bool = False) -> Split:
    """Read the split folder ``split_dir`` for training: rows whose image is missing, whose label is empty, that
    name an image twice with two labels, or (unless ``outside_root``) whose image is outside the data root, the
    split folder's parent, are skipped, and counted."""
    layout, rows = read_rows(split_dir, need_truth=True)
    result = Split(split, split_dir, layout, [])
    root = os.path.normpath(os.path.abspath(split_dir.parent))
    for row in rows:
        if row.path and not outside_root and not under(root, row.path):
            row.problem = ("image outside the data root", f"{row.source}: {row.path} is not under {root} (move "
                           "it there, or let the data reach outside with --data.allow_outside_root true)")  # fmt: skip
        if row.problem:
            result.skip(*row.problem)
        elif not Path(row.path).is_file():
            result.skip("missing image", f"{row.source} -> {row.path}")
        elif row.label is None:
            result.skip(row.unreadable, row.source)
            result.unlabelled.append(row.path)
            result.sources[row.path] = row.source
        else:
            result.samples.append((row.path, row.label))
            result.sources[row.path] = row.source
        if not row.problem and TRACK_KEY in row.fields and Path(row.path).is_file():
            result.tracks[row.path] = str(row.fields[TRACK_KEY])
    result.samples = _drop_conflicting_labels(result)
    if not result.samples:
        raise JerseyInputError(
            f"split '{split}' at {split_dir} has no usable images ({_skipped_summary(result) or 'none found'}). "
            "Add labelled images to it, or point --data.data_root at the dataset root."
        )
    return result


def under(root: str, path: str) -> bool:
    """Whether ``path`` is inside the folder ``root`` (an absolute, normalised path), ".." resolved."""
    try:
        return os.path.commonpath([root, os.path.abspath(path)]) == root
    except ValueError:  # another drive (Windows)
        return False


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


@dataclass
class PredictInput:
    """What predict reads: (image path, known label or None, the row's other keys as JSON) per crop; the input's
    name, which names the predictions file; its layout; and every player track in it, crops read or not."""

    name: str
    layout: str
    inputs: list[tuple[str, str | None, str]]
    tracks: list[str] = field(default_factory=list)

    @classmethod
    def of_split(cls, split: Split) -> "PredictInput":
        tracks = split.tracks
        inputs = [(path, label, json.dumps({TRACK_KEY: tracks[path]} if path in tracks else {}))
                  for path, label in split.samples]  # fmt: skip
        return cls(split.name, split.layout, inputs, list(dict.fromkeys(tracks.values())))

    @classmethod
    def read(cls, predict_path: Path) -> "PredictInput":
        if predict_path.name == "images" and is_soccernet(predict_path.parent):  # the split, as its tracklets
            predict_path = predict_path.parent
        inputs = read_predict_inputs(predict_path)
        if is_soccernet(predict_path):
            folders = track_folders(predict_path)
            if empty := [track for track, crops in folders.items() if not crops]:
                warnings.warn(
                    f"{predict_path / 'images'}: {len(empty)} tracklet folders with no frames "
                    f"({', '.join(empty[:10])}) are answered -1 in the submission, which lists every tracklet",
                    JerseyWarning,
                    stacklevel=2,
                )
            return cls(predict_path.resolve().name, "soccernet", inputs, list(folders))
        tracks = (json.loads(fields).get(TRACK_KEY) for _, _, fields in inputs)
        tracks = list(dict.fromkeys(str(track) for track in tracks if track is not None))
        return cls(predict_path.resolve().stem or "predictions", "", inputs, tracks)


def read_predict_inputs(predict_path: Path) -> list[tuple[str, str | None, str]]:
    """(image path, known label or None, the row's other keys as JSON) for an image, a folder of images, a split
    in any layout (SoccerNet's crops get their track as ``track_id``), or a text file of image paths, one per
    line. Nothing is filtered out: a missing or unreadable image becomes an error row at prediction time."""
    if not predict_path.exists():
        raise JerseyInputError(
            f"--data.predict_path {predict_path}: no such file or folder. Give an image, a folder of images, a split "
            "folder (annotations.jsonl, <label>/ or images/<player id>/ sub-folders), or a text file with one image "
            "path per line."
        )
    if predict_path.is_file() and predict_path.suffix.lower() in IMAGE_SUFFIXES:
        rows = [Row(str(predict_path))]
    elif predict_path.is_file():
        try:
            lines = predict_path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise JerseyInputError(
                f"--data.predict_path {predict_path}: neither an image ({', '.join(sorted(IMAGE_SUFFIXES))}) nor a "
                "text file of image paths. Give an image, a folder of images, a split folder, or a text file."
            ) from None
        paths = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        rows = [Row(str(predict_path.parent / path)) for path in paths]  # absolute paths stay absolute
    elif is_soccernet(predict_path) or any(predict_path.rglob("*.jsonl")):
        rows = read_rows(predict_path, need_truth=False)[1]
    else:  # images in sub-folders are labelled by them, as ImageFolder splits are; loose images have no label
        rows = images_of(predict_path, None)
        rows = [Row(r.path, Path(r.path).parent.name if Path(r.path).parent != predict_path else None) for r in rows
                if r.path]  # fmt: skip
    inputs = [(row.path, row.label, json.dumps(row.fields)) for row in rows if row.path]
    if not inputs:
        raise JerseyInputError(
            f"--data.predict_path {predict_path}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})."
        )
    return inputs
