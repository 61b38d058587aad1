"""Player tracks in a split: at most a few frames of each, the frames of each, and whole tracks held out as
val."""

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from jersey_cls.data.layouts import UNREADABLE, Split
from jersey_cls.data.layouts.rows import TRACK_KEY
from jersey_cls.numbers import ILLEGIBLE


def track_truth(labels: Iterable[str]) -> str:
    """A track's true label from its crops' labels: the number most of its labelled crops carry, illegible only
    when every crop is. A track labelled as a whole (SoccerNet) gives every crop the same label; crops labelled one
    by one (JSONL rows with a track_id) mostly show nothing, and the number is what the others show."""
    numbers = [(count, label) for label, count in Counter(labels).most_common() if label != ILLEGIBLE]
    return numbers[0][1] if numbers else ILLEGIBLE


def track_truths(split: Split, labels: dict[str, str] | None = None) -> dict[str, str]:
    """Each track's true label: from all of its crops, as read before thin_tracks kept a few (``split.truths``),
    else from ``labels`` ({path: label}, default the split's samples)."""
    by_track: dict[str, list[str]] = {}
    for path, label in (labels or dict(split.samples)).items():
        if path in split.tracks:
            by_track.setdefault(split.tracks[path], []).append(label)
    return {track: split.truths.get(track) or track_truth(found) for track, found in by_track.items()}


def thin_tracks(split: Split, frames: int) -> None:
    """Keep at most ``frames`` crops of each track, evenly spaced through it in file-name order (frame order, in
    SoccerNet's naming); crops without a track are kept. Each track's truth, from all of its crops, is kept in
    ``split.truths``: the kept crops of a track labelled frame by frame may all be ones that show nothing."""
    split.truths = track_truths(split)
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


def track_members(samples: list[tuple[str, int]], tracks: dict[str, str]) -> list[list[int]]:
    """The sample indices of each track, in track order; a sample without a track is a track of its own."""
    members: dict[str, list[int]] = {}
    for index, (path, _) in enumerate(samples):
        members.setdefault(tracks.get(path, f"\0{path}"), []).append(index)
    return list(members.values())


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
            sources={path: source for path, source in train.sources.items() if keep(train.tracks.get(path))},
        )

    return part("train", lambda t: t not in held), part("val", lambda t: t in held), sorted(held)
