"""Tracklet sets in SoccerNet's layout for bench/tracklets.py: train, test and a challenge split whose ground truth
is kept apart (<set>/challenge_gt.json), so that what is scored was never seen by what is trained.

Two kinds:
    crops     number crops (64 px), as a number detector's boxes: a legible tracklet shows its number on 30-60% of
              its frames; the others are turned, covered or too small to read.
    players   whole-player thumbnails (about 42-60 x 80-145 px, the number small on the back): a legible tracklet
              shows it on 15-40% of its frames; on the others the player faces the camera, stands side-on, is
              covered or blurred.
and two sources of digits:
    font      the synthetic engine's fonts (jersey_cls.synth): what a default is chosen on.
    scans     handwritten digit scans (bench/real_digits.py), never drawn by the engine's fonts: the confirm sets.
15% of the tracklets are -1 (the number never visible); 10 numbers appear in test and challenge only. Tracklets
hold 20-100 frames. <set>/frames_shown.json records which frames show their number.
"""

import json
import random
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from real_digits import compose, digit_scans

from jersey_cls.synth.tracklets import render_tracklet, shown_frames

SPLITS = ("train", "test", "challenge")
SHOWN = {"crops": (0.3, 0.6), "players": (0.15, 0.4)}
ILLEGIBLE_SHARE, UNSEEN = 0.15, 10
NUMBERS = [str(n) for n in range(100)]  # SoccerNet's: integers, so no 00
_POOLS: dict = {}


def scan_pool(split: str, half: int) -> dict[int, list[np.ndarray]]:
    """The digit scans of one split (the challenge split draws on the scans kept for validation)."""
    key = (split, half)
    if key not in _POOLS:
        pools = digit_scans(seed=7, half=half)
        _POOLS.update({(name, half): pools[name if name != "challenge" else "valid"] for name in SPLITS})
    return _POOLS[key]


def scans_mask(pool):
    """A DigitsMask of handwritten scans: each digit a random scan of it, side by side."""

    def mask(number: str, rng: random.Random, width: int, height: int) -> np.ndarray:
        glyph_width = max(1, round(width / len(number)))
        glyphs = [np.asarray(Image.fromarray((rng.choice(pool[int(d)]) * 255).astype(np.uint8))
                             .resize((glyph_width, height), Image.BILINEAR), dtype=np.float32) / 255
                  for d in number]  # fmt: skip
        return np.concatenate(glyphs, axis=1)

    return mask


def scans_crop(number: str, visible: bool, pool, rng: random.Random, size: int) -> Image.Image:
    """A number crop of scans; when not ``visible``: the shirt turned (no digits), covered, or too small."""
    if visible:
        return compose(number, pool, rng, size)
    kind = rng.choice(("turned", "covered", "tiny"))
    if kind == "turned":
        return compose("", pool, rng, size)
    crop = compose(number, pool, rng, size)
    if kind == "covered":
        skin = rng.choice([(224, 172, 138), (92, 51, 23), (30, 30, 30)])
        ImageDraw.Draw(crop).rounded_rectangle((-size * 0.1, size * 0.15, size * 1.1, size * 0.85), size / 6, skin)
        return crop
    small = max(3, round(size * rng.uniform(0.05, 0.1)))
    return crop.resize((small, small), Image.BOX).resize((size, size), Image.BILINEAR)


def render_job(job: tuple) -> list[bool]:
    folder, number, frames, share, seed, kind, glyphs, split, half = job
    if glyphs == "font":
        return render_tracklet(folder, number, frames, share, seed, kind)
    pool = scan_pool(split, half)
    if kind == "players":
        return render_tracklet(folder, number, frames, share, seed, kind, digits=scans_mask(pool))
    rng = random.Random(seed)
    worn = number if number is not None else str(rng.randrange(100))
    shown = shown_frames(frames, share, rng) if number is not None else [False] * frames
    folder.mkdir(parents=True, exist_ok=True)
    for frame, visible in enumerate(shown):
        scans_crop(worn, visible, pool, random.Random(f"{seed}-{frame}"), 64).save(
            folder / f"{frame:04d}.jpg", quality=92
        )
    return shown


def build(root: Path, kind: str, glyphs: str, tracks: dict[str, int], seed: int) -> Path:
    """Render the set into ``root`` (once: a finished set is reused); returns ``root``."""
    if (root / "frames_shown.json").exists():
        return root
    rng = random.Random(f"{seed}-{kind}-{glyphs}")
    unseen = rng.sample(NUMBERS, UNSEEN)
    seen = [n for n in NUMBERS if n not in unseen]
    half = seed % 2  # sets of different seeds draw on different halves of the scans
    jobs, truth = [], {}
    for split, count in tracks.items():
        truth[split] = {}
        for player in range(count):
            player_id = f"{split[:2]}{player:04d}"
            if rng.random() < ILLEGIBLE_SHARE:
                number = None
            else:
                number = rng.choice(seen if split == "train" or rng.random() < 0.85 else unseen)
            # SoccerNet writes integers: 00 cannot be told from 0 there
            truth[split][player_id] = -1 if number is None else int(number)
            folder = root / "data" / split / "images" / player_id
            share = rng.uniform(*SHOWN[kind])
            jobs.append(
                (folder, number, rng.randint(20, 100), share, f"{seed}-{split}-{player}", kind, glyphs, split, half)
            )
    with Pool(2) as pool:
        shown = pool.map(render_job, jobs, chunksize=4)
    for split, players in truth.items():
        gt = root / "challenge_gt.json" if split == "challenge" else root / "data" / split / f"{split}_gt.json"
        gt.write_text(json.dumps(players))
    (root / "unseen.json").write_text(json.dumps(sorted(int(n) for n in unseen)))
    (root / "frames_shown.json").write_text(
        json.dumps({str(job[0]): flags for job, flags in zip(jobs, shown, strict=True)})
    )
    return root


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path)
    parser.add_argument("--kind", choices=("crops", "players"), default="players")
    parser.add_argument("--glyphs", choices=("font", "scans"), default="font")
    parser.add_argument("--tracks", type=int, nargs=3, default=[300, 100, 100], metavar=("TRAIN", "TEST", "CHALLENGE"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    build(args.root, args.kind, args.glyphs, dict(zip(SPLITS, args.tracks, strict=True)), args.seed)
