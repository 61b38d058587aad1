"""Read a dataset root in any supported layout into (image path, label) samples.

Layouts:
- Roboflow JSONL: ``<split>/**/*.jsonl`` with lines ``{"image": ..., "suffix": "23"}``; every
  ``.jsonl`` under a split is read together, image paths are relative to their ``.jsonl`` file. A row's
  ``track_id`` key, when present, names the player track of the crop.
- ImageFolder: ``<split>/<label>/<image>``; a sub-folder with a ``.jsonl`` in it (``<split>/synthetic/``) is
  read as JSONL, so rendered top-ups sit next to real data in either layout.
- SoccerNet tracklets: ``<split>/images/<track>/<image>``, one folder per player track, and a ground-truth JSON
  mapping each track to its number (-1: never visible), ``<split>/<split>_gt.json`` or ``<root>/<split>_gt.json``.
"""

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from jersey_cls.errors import JerseyInputError
from jersey_cls.numbers import ILLEGIBLE

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
SPLIT_NAMES = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
JSONL_KEYS = ("image", "suffix")  # Roboflow's text-image-pairs export: the image file and its label
TRACK_KEY = "track_id"
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
    relabelled: list[str] = field(default_factory=list)  # crops --data.frame_labels made illegible

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
    if is_soccernet(split_dir):
        result = Split(split, split_dir, "soccernet", [])
        _read_soccernet(split_dir, result)
    elif any(split_dir.glob("*.jsonl")):  # a Roboflow export: every .jsonl under the split is read
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
        if TRACK_KEY in row and image_path.is_file():
            split.tracks[str(image_path)] = str(row[TRACK_KEY])
    if len(split.samples) == found and other_keys:
        raise JerseyInputError(
            f"{jsonl_file}: no row has the keys {list(JSONL_KEYS)} of Roboflow's JSONL export (found: "
            f"{', '.join(sorted(other_keys))}). Rename the keys: image is the image file, relative to the .jsonl "
            "file, and suffix is its label; or lay the split out as ImageFolder (<split>/<label>/<image>)."
        )


def is_soccernet(split_dir: Path) -> bool:
    images = split_dir / "images"
    return images.is_dir() and any(child.is_dir() for child in images.iterdir())


def ground_truth_file(split_dir: Path) -> Path | None:
    """A SoccerNet split's ground truth: ``<split>_gt.json`` in the split folder or beside it, as the SoccerNet
    downloader leaves it; None for a split without one (the challenge split)."""
    for candidate in (split_dir / f"{split_dir.name}_gt.json", split_dir.parent / f"{split_dir.name}_gt.json"):
        if candidate.is_file():
            return candidate
    found = sorted(split_dir.glob("*_gt.json"))
    return found[0] if len(found) == 1 else None


def read_ground_truth(gt_file: Path) -> dict[str, str]:
    """{track: label}: SoccerNet's integers as strings ("-1" when never visible); a string value such as "00" is
    kept as it is, since integers cannot tell 00 from 0."""
    how = (
        "SoccerNet's ground truth is one JSON object mapping each player id (a string) to its jersey number (an "
        "integer, -1 when it is never visible)."
    )
    try:
        truth = json.loads(gt_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        where = f" at line {error.lineno}, column {error.colno}" if isinstance(error, json.JSONDecodeError) else ""
        raise JerseyInputError(f"{gt_file}: not valid JSON{where}. {how}") from None
    if not isinstance(truth, dict):
        raise JerseyInputError(f"{gt_file}: holds a JSON {type(truth).__name__}, not an object. {how}")
    labels, bad = {}, []
    for track, number in truth.items():
        if isinstance(number, int) and not isinstance(number, bool):
            labels[str(track)] = str(number)
        elif isinstance(number, str) and (number.strip().isdigit() or number.strip() == "-1"):
            labels[str(track)] = number.strip()
        else:
            bad.append(f"{track!r}: {number!r}")
    if bad:
        raise JerseyInputError(f"{gt_file}: these tracks have no number: {', '.join(bad[:5])}. {how}")
    return labels


def track_folders(split_dir: Path) -> dict[str, list[Path]]:
    """{track: its crops in file-name order} under ``<split>/images``."""
    return {
        folder.name: sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        for folder in sorted((split_dir / "images").iterdir())
        if folder.is_dir()
    }


def _read_soccernet(split_dir: Path, split: Split) -> None:
    gt_file = ground_truth_file(split_dir)
    if gt_file is None:
        raise JerseyInputError(
            f"{split_dir}/images holds player tracks, and no ground truth was found: expected "
            f"{split_dir / (split_dir.name + '_gt.json')} or {split_dir.parent / (split_dir.name + '_gt.json')}. A "
            f"split without labels (SoccerNet's challenge) can be predicted: --data.predict_path {split_dir}."
        )
    truth = read_ground_truth(gt_file)
    folders = track_folders(split_dir)
    for track in sorted(set(truth) - set(folders)):
        split.skip("track in the ground truth with no folder", f"{gt_file}: {track!r} (no {split_dir}/images/{track}/)")
    for track, crops in folders.items():
        if track not in truth:
            split.skip("track folder missing from the ground truth", f"{split_dir}/images/{track}: not in {gt_file}")
            continue
        for crop in crops:
            split.tracks[str(crop)] = track
            if truth[track] == "-1":
                split.skip("illegible track (-1)", str(crop))
                split.unlabelled.append(str(crop))
            else:
                split.samples.append((str(crop), truth[track]))


def thin_tracks(split: Split, frames: int) -> None:
    """Keep at most ``frames`` crops of each track, evenly spaced through it in file-name order (frame order, in
    SoccerNet's naming); crops without a track are kept."""
    by_track: dict[str, list[str]] = {}
    for path in sorted(split.tracks):
        by_track.setdefault(split.tracks[path], []).append(path)
    dropped = set()
    for paths in by_track.values():
        if len(paths) > frames:
            kept = {paths[round(i * (len(paths) - 1) / max(1, frames - 1))] for i in range(frames)}
            dropped.update(p for p in paths if p not in kept)
    split.samples = [(path, label) for path, label in split.samples if path not in dropped]
    split.unlabelled = [path for path in split.unlabelled if path not in dropped]
    for reason in UNREADABLE:
        if reason in split.skipped:
            split.skipped[reason] = [path for path in split.skipped[reason] if path not in dropped]
    split.tracks = {path: track for path, track in split.tracks.items() if path not in dropped}


def thin_inputs(inputs: list[tuple[str, str | None, str]], frames: int | None) -> list[tuple[str, str | None, str]]:
    """Predict inputs with at most ``frames`` crops of each track (their ``track_id``), as thin_tracks keeps."""
    if not frames:
        return inputs
    split = Split("predict", Path(), "", [(path, "") for path, _, _ in inputs])
    tracks = {path: json.loads(fields).get(TRACK_KEY) for path, _, fields in inputs}
    split.tracks = {path: str(track) for path, track in tracks.items() if track is not None}
    thin_tracks(split, frames)
    kept = {path for path, _ in split.samples}
    return [row for row in inputs if row[0] in kept]


def relabel_unread(split: Split, predictions: Path) -> None:
    """Crops of ``split`` that ``predictions`` (a predict CSV: path, pred_label) reads as illegible become
    illegible; the count goes into the split's report."""
    try:
        with open(predictions, newline="", encoding="utf-8") as f:
            read = {str(Path(row["path"]).resolve()): row["pred_label"] for row in csv.DictReader(f)}
    except (OSError, KeyError, csv.Error, UnicodeDecodeError) as error:
        raise JerseyInputError(
            f"--data.frame_labels {predictions}: cannot be read as a predictions CSV with path and pred_label "
            f"columns ({type(error).__name__}: {error}). Give the file `jersey-cls predict` wrote for the train split."
        ) from None
    unread = {
        path for path, label in split.samples if label != ILLEGIBLE and read.get(str(Path(path).resolve())) == ILLEGIBLE
    }
    if not set(read) & {str(Path(path).resolve()) for path, _ in split.samples}:
        raise JerseyInputError(
            f"--data.frame_labels {predictions}: names none of the {len(split.samples)} crops of {split.root}. Give "
            f"the file `jersey-cls predict --data.predict_path {split.root}` wrote."
        )
    split.samples = [(path, ILLEGIBLE if path in unread else label) for path, label in split.samples]
    split.relabelled = sorted(unread)


def hold_out(train: Split, share: float, seed: int) -> tuple[Split, Split, list[str]]:
    """(train, val, the held-out tracks): ``share`` of train's tracks, whole, as a validation split. The tracks
    are ranked by a seeded hash of their id, so the same ones are held out whatever order they were read in."""
    tracks = sorted(set(train.tracks.values()), key=lambda t: hashlib.sha256(f"{seed}:{t}".encode()).hexdigest())
    held = set(tracks[: max(1, round(share * len(tracks)))])

    def part(name: str, keep) -> Split:
        skipped = {}
        for reason, examples in train.skipped.items():
            if reason in UNREADABLE:  # crops of unreadable tracks: they go with their track
                skipped[reason] = [example for example in examples if keep(train.tracks.get(example))]
            elif name == "train":  # what reading the split found stays with the split that was read
                skipped[reason] = examples
        return Split(
            name,
            train.root,
            train.layout,
            [(path, label) for path, label in train.samples if keep(train.tracks.get(path))],
            skipped,
            [path for path in train.unlabelled if keep(train.tracks.get(path))],
            {path: track for path, track in train.tracks.items() if keep(track)},
        )

    return part("train", lambda t: t not in held), part("val", lambda t: t in held), sorted(held)


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
    JSONL, ImageFolder or SoccerNet split (its crops get their track as ``track_id``), or a text file of image
    paths, one per line.

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
    elif predict_path.is_dir() and is_soccernet(predict_path):
        gt_file = ground_truth_file(predict_path)
        truth = read_ground_truth(gt_file) if gt_file else {}
        inputs = [
            (str(crop), truth.get(track), json.dumps({TRACK_KEY: track}))
            for track, crops in track_folders(predict_path).items()
            for crop in crops
        ]
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
