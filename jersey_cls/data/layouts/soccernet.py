"""SoccerNet's jersey task as its downloader leaves it: ``<split>/images/<player id>/`` holds one tracklet's
crops, and ``<split>_gt.json`` (in the split folder or beside it) maps each player id to its number, -1 when it
is never visible; the challenge split has no ground truth."""

import json
from pathlib import Path

from jersey_cls.data.layouts.rows import IMAGE_SUFFIXES, TRACK_KEY, Row
from jersey_cls.messages import JerseyInputError
from jersey_cls.numbers import soccernet_number


def is_soccernet(split_dir: Path) -> bool:
    images = split_dir / "images"
    if not split_dir.is_dir():
        return False
    return images.is_dir() and any(child.is_dir() for child in images.iterdir())


def ground_truth_file(split_dir: Path) -> Path | None:
    """A SoccerNet split's ground truth: ``<split>_gt.json`` in the split folder or beside it, as the SoccerNet
    downloader leaves it; None for a split without one (the challenge split)."""
    for candidate in (split_dir / f"{split_dir.name}_gt.json", split_dir.parent / f"{split_dir.name}_gt.json"):
        if candidate.is_file():
            return candidate
    found = sorted(split_dir.glob("*_gt.json"))
    return found[0] if len(found) == 1 else None


class Pairs(list):
    """A JSON object's (key, value) pairs, in file order, duplicates kept."""


def read_ground_truth(gt_file: Path) -> tuple[dict[str, str], dict[str, object]]:
    """({track: label}, {track: value that is no jersey number}): SoccerNet's integers 0-99 and -1 (never
    visible) as strings; a string value that is a jersey number, such as "00", is kept as it is, since integers
    cannot tell 00 from 0. A player id given twice is refused: which number it has is anyone's guess."""
    how = (
        "SoccerNet's ground truth is one JSON object mapping each player id (a string) to its jersey number (an "
        "integer 0-99, -1 when it is never visible)."
    )
    try:
        pairs = json.loads(gt_file.read_text(encoding="utf-8-sig"), object_pairs_hook=Pairs)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        where = f" at line {error.lineno}, column {error.colno}" if isinstance(error, json.JSONDecodeError) else ""
        raise JerseyInputError(f"{gt_file}: not valid JSON{where}. {how}") from None
    if not isinstance(pairs, Pairs):
        raise JerseyInputError(f"{gt_file}: holds a JSON {type(pairs).__name__}, not an object. {how}")
    values: dict[str, list] = {}
    for track, value in pairs:
        values.setdefault(str(track), []).append(value)
    twice = {track: found for track, found in values.items() if len(found) > 1}
    if twice:
        listed = "; ".join(f"{track!r}: {', '.join(map(repr, found))}" for track, found in list(twice.items())[:5])
        raise JerseyInputError(
            f"{gt_file}: {len(twice)} player ids are given more than once, with these values: {listed}. Keep one "
            "entry per player id, the right number."
        )
    labels, bad = {}, {}
    for track, (value,) in values.items():
        label = soccernet_number(value)
        if label is None:
            bad[track] = value
        else:
            labels[track] = label
    return labels, bad


def track_folders(split_dir: Path) -> dict[str, list[Path]]:
    """{track: its crops in file-name order} under ``<split>/images``."""
    return {
        folder.name: sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        for folder in sorted((split_dir / "images").iterdir())
        if folder.is_dir()
    }


def read_soccernet(split_dir: Path, need_truth: bool) -> list[Row]:
    """A row per crop, its track in ``fields``; labelled from the ground truth, which ``need_truth`` requires. A
    track folder the ground truth lacks, and a ground-truth entry with no folder, are rows with a problem."""
    gt_file = ground_truth_file(split_dir)
    if gt_file is None and need_truth:
        raise JerseyInputError(
            f"{split_dir}/images holds player tracks, and no ground truth was found: expected "
            f"{split_dir / (split_dir.name + '_gt.json')} or {split_dir.parent / (split_dir.name + '_gt.json')}. A "
            f"split without labels (SoccerNet's challenge) can be predicted: --data.predict_path {split_dir}."
        )
    truth, bad = read_ground_truth(gt_file) if gt_file else (None, {})
    folders = track_folders(split_dir)
    images = split_dir / "images"
    rows = [
        Row(problem=("track in the ground truth with no folder", f"{gt_file}: {track!r} (no {images}/{track}/)"))
        for track in sorted(set(truth or {}) - set(folders))
    ]
    expected = "expected an integer 0-99, or -1 when the number is never visible"
    no_number = "ground-truth value that is no jersey number"
    rows += [Row(problem=(no_number, f"{gt_file}: {track!r}: {value!r} ({expected})")) for track, value in bad.items()]
    for track, crops in folders.items():
        if not crops:
            rows.append(Row(problem=("tracklet folder with no frames", f"{images}/{track}: no images "
                                     f"({', '.join(sorted(IMAGE_SUFFIXES))})")))  # fmt: skip
            continue
        if track in bad:
            continue
        if truth is not None and track not in truth:
            missing = ("track folder missing from the ground truth", f"{images}/{track}: not in {gt_file}")
            rows.append(Row(problem=missing))
            continue
        label = truth[track] if truth else None
        for crop in crops:
            rows.append(Row(str(crop), None if label == "-1" else label, {TRACK_KEY: track}, str(crop), None,
                            unreadable="illegible track (-1)"))  # fmt: skip
    return rows
