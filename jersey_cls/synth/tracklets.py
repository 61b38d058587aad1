"""Rendered player tracklets in SoccerNet's layout: one folder of frames per tracklet, the number shown on some
frames and hidden on the others, as a broadcast tracker hands them over."""

import random
from pathlib import Path
from typing import Literal

from jersey_cls.synth.players import HIDDEN_VIEWS, DigitsMask, PlayerLook, new_player, render_player
from jersey_cls.synth.render import Look, render_crop, render_illegible

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
