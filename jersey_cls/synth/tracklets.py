"""Rendered player tracklets: one folder of frames per tracklet, the number shown on some frames and hidden on
the others, as a broadcast tracker hands them over; whole sets of them in SoccerNet's layout or labelled frame by
frame."""

import json
import random
from multiprocessing import Pool
from pathlib import Path
from typing import Literal

from jersey_cls.synth.players import HIDDEN_VIEWS, DigitsMask, PlayerLook, new_player, render_player
from jersey_cls.synth.render import Look, render_crop, render_illegible, staged_folder

Kind = Literal["crops", "players"]


def shown_frames(frames: int, share: float, rng: random.Random) -> list[bool]:
    """Which frames show the number: about ``share`` of them, in a few runs, as a player turns to the camera and
    away again; at least one."""
    wanted = max(1, round(share * frames))
    runs = max(1, min(wanted, rng.randint(1, 4)))
    shown = [False] * frames
    for length in _split(wanted, runs, rng):
        start = rng.randrange(frames)
        for frame in range(start, min(frames, start + length)):
            shown[frame] = True
    while sum(shown) < wanted:  # runs that overlapped or ran off the end
        shown[rng.randrange(frames)] = True
    return shown


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    cuts = sorted(rng.sample(range(1, total), parts - 1)) if parts > 1 else []
    return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]


def render_tracklet(
    folder: Path,
    number: str | None,
    frames: int,
    shown_share: float,
    seed: str,
    kind: Kind = "players",
    size: int = 64,
    digits: DigitsMask | None = None,
) -> list[bool]:
    """Write one tracklet's frames into ``folder`` (``0000.jpg``, ...); returns, per frame, whether it shows the
    number. ``number`` None is a tracklet whose number is never visible (SoccerNet's -1). ``kind`` "crops": number
    crops of ``size`` px, as a number detector's boxes; "players": whole-player thumbnails. ``digits`` draws a
    player's number (default: the tracklet's font)."""
    rng = random.Random(seed)
    worn = number if number is not None else str(rng.randrange(100))
    shown = shown_frames(frames, shown_share, rng) if number is not None else [False] * frames
    folder.mkdir(parents=True, exist_ok=True)
    player = new_player(worn, rng, PlayerLook())
    for frame, visible in enumerate(shown):
        frame_rng = random.Random(f"{seed}-{frame}")
        if kind == "players":
            view = "back" if visible else frame_rng.choice(HIDDEN_VIEWS)
            image = render_player(player, frame_rng, view, digits=digits)
        else:
            look = Look(size=size)
            image = render_crop(worn, frame_rng, look) if visible else render_illegible(worn, frame_rng, look)
        image.save(folder / f"{frame:04d}.jpg", quality=92)
    return shown


Labels = Literal["tracklets", "frames"]
RECORD = "rendered_frames.json"  # the renderer's record: each tracklet's number and the frames that show it


def _render_job(job: tuple) -> list[bool]:
    return render_tracklet(*job)


def render_tracklet_set(
    out_dir: Path,
    counts: dict[str, int],
    labels: Labels = "tracklets",
    seed: int = 0,
    kind: Kind = "players",
    frames: tuple[int, int] = (20, 100),
    shown: tuple[float, float] = (0.15, 0.4),
    illegible_share: float = 0.15,
    workers: int = 1,
) -> dict[str, dict]:
    """Render ``counts[split]`` tracklets of numbers 0-99 into ``out_dir``; returns the renderer's record, also
    written to ``out_dir/rendered_frames.json``: tracklet folder (relative to ``out_dir``) -> {"number": the number
    worn (None for a -1 tracklet), "shown": per frame, whether it shows the number}.

    ``labels`` "tracklets": SoccerNet's layout, ``<split>/images/<id>/NNNN.jpg`` and ``<split>/<split>_gt.json``
    (the tracklet's number, -1 for a tracklet that never shows it). "frames": the Roboflow JSONL layout,
    ``<split>/annotations.jsonl`` labelling each frame of ``<split>/frames/<id>/`` with what it shows (its number,
    or -1) and its tracklet as track_id: the labels no real set has. Tracklet ``i`` of a split is
    a function of (seed, split, i) alone. The folder appears complete or not at all."""
    out_dir = Path(out_dir)
    with staged_folder(out_dir) as staging:
        jobs, numbers = [], {}
        for split, count in counts.items():
            for i in range(count):
                rng = random.Random(f"{seed}-{split}-{i}-tracklet")  # not render_tracklet's seed: its own draws
                number = None if rng.random() < illegible_share else str(rng.randrange(100))
                folder = Path(split) / ("images" if labels == "tracklets" else "frames") / str(i)
                numbers[folder] = number
                jobs.append((staging / folder, number, rng.randint(*frames), rng.uniform(*shown), f"{seed}-{split}-{i}",
                             kind))  # fmt: skip
        with Pool(workers) as pool:
            record = dict(zip(numbers, pool.map(_render_job, jobs, chunksize=4), strict=True))
        for split in counts:
            tracks = {folder: number for folder, number in numbers.items() if folder.parts[0] == split}
            if labels == "tracklets":
                truth = {folder.name: -1 if number is None else int(number) for folder, number in tracks.items()}
                (staging / split / f"{split}_gt.json").write_text(json.dumps(truth, indent=0))
                continue
            rows = [{"image": f"{folder.relative_to(split).as_posix()}/{frame:04d}.jpg",
                     "suffix": number if visible else "-1", "track_id": folder.name}
                    for folder, number in tracks.items() for frame, visible in enumerate(record[folder])]  # fmt: skip
            (staging / split).mkdir(parents=True, exist_ok=True)
            with open(staging / split / "annotations.jsonl", "w", encoding="utf-8") as f:
                f.writelines(json.dumps(row) + "\n" for row in rows)
        rendered = {
            folder.as_posix(): {"number": numbers[folder], "shown": visible} for folder, visible in record.items()
        }
        (staging / RECORD).write_text(json.dumps(rendered))
    return rendered
