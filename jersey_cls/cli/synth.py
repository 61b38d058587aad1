"""jersey-cls-synth: render jersey-number crops, or top up the rare and absent numbers of a train split;
``jersey-cls-synth players``: render whole-player tracklets, as a broadcast tracker hands them over."""

import os
import re
import sys
import time
from collections import Counter
from itertools import zip_longest
from pathlib import Path

from PIL import Image, ImageFont

from jersey_cls.data.layouts import read_split_dir
from jersey_cls.messages import JerseyInputError, say
from jersey_cls.numbers import LEGAL_NUMBERS, label_sort_key
from jersey_cls.synth.render import Look
from jersey_cls.synth.sets import render_set
from jersey_cls.synth.sheet import contact_sheet
from jersey_cls.synth.tracklets import Labels, render_tracklet_set


def parse_numbers(numbers: str) -> list[str]:
    """ "0 00 7 23", "0,00,7" or "[0, 00, 7]" as labels, "00" kept; "all" is the 101 legal numbers."""
    if numbers.strip().lower() == "all":
        return list(LEGAL_NUMBERS)
    labels = [n for n in re.split(r"[\s,\[\]'\"]+", numbers) if n]
    bad = [n for n in labels if not n.isdigit()]
    if bad or not labels:
        raise JerseyInputError(
            f"--numbers {numbers!r}: {'not numbers: ' + ', '.join(bad) if bad else 'no numbers given'}. "
            'Give numbers separated by spaces or commas, e.g. --numbers "0 00 7 23", or --numbers all.'
        )
    return list(dict.fromkeys(labels))


def check_look(look: Look) -> None:
    """Every --look.* value usable, so a bad one fails now, not after minutes of rendering."""
    problems = [f"--look.{name} {getattr(look, name)}: a probability is between 0 and 1"
                for name in ("outline_p", "shadow_p", "fold_p", "occlusion_p", "motion_blur_p")
                if not 0 <= getattr(look, name) <= 1]  # fmt: skip
    if not 0 < look.downscale[0] <= look.downscale[1] <= 1:
        problems.append(f"--look.downscale {list(look.downscale)}: give [low, high] with 0 < low <= high <= 1")
    if not 1 <= look.jpeg_quality[0] <= look.jpeg_quality[1] <= 100:
        problems.append(f"--look.jpeg_quality {list(look.jpeg_quality)}: give [low, high] within 1-100")
    if not 0 <= look.perspective <= 0.3:
        problems.append(f"--look.perspective {look.perspective}: give a corner shift between 0 and 0.3 of the side")
    if look.size < 16:
        problems.append(f"--look.size {look.size}: too small to draw digits; use 16 or more (96 is the default)")
    for font in look.fonts:
        try:
            ImageFont.truetype(str(Path(font).expanduser()), 12)
        except OSError as error:
            problems.append(f"--look.fonts {font}: cannot be read as a TrueType/OpenType font ({error})")
    if problems:
        raise JerseyInputError("\n".join(problems))


def plan(have: Counter, numbers: list[str], count: int, below: int) -> dict[str, int]:
    """Crops to render per number: every number of the split with fewer than ``below`` crops, and every number
    asked for, is brought up to ``count``."""
    wanted = [label for label, n in have.items() if n < below and label.isdigit()] + numbers
    todo = {label: count - have[label] for label in dict.fromkeys(wanted) if have[label] < count}
    return dict(sorted(todo.items(), key=lambda item: label_sort_key(item[0])))


def synth(
    numbers: str | None = None,
    count: int = 100,
    split: str | None = None,
    below: int | None = None,
    out: str | None = None,
    seed: int = 0,
    look: Look = Look(),  # noqa: B008 - never mutated; jsonargparse reads its fields as --look.* flags
    sheet: int = 64,
) -> Path:
    """Render broadcast-like jersey-number crops in the Roboflow JSONL layout, with a contact sheet.

    Two modes: --numbers renders the given numbers, --count crops each; --split tops up an existing train split
    (JSONL or ImageFolder), bringing every number with fewer than --below crops up to --count, plus any
    --numbers (absent ones included). The output folder (default <split>/synthetic) is then read together with
    the real data by `jersey-cls fit`. Whole-player tracklets: `jersey-cls-synth players --help`.

    Args:
        numbers: Numbers to render, separated by spaces or commas ("0 00 7 23"), or "all" for the 101 legal numbers.
            In a YAML config, quote them (numbers: "0 00 7"): YAML reads a bare 00 as the integer 0.
        count: Crops per number after rendering; with --split the split's own crops count towards it.
        split: A train split folder to top up.
        below: With --split: top up the numbers with fewer crops than this. Default: --count.
        out: Folder to write: annotations.jsonl, the crops and contact_sheet.png. Default: <split>/synthetic.
        seed: Seed of the render; the same seed and arguments give the same crops.
        look: How crops look.
        sheet: Crops on the contact sheet.
    """
    if count < 1:
        raise JerseyInputError(f"--count {count}: give the number of crops each number should end up with (1 or more).")
    check_look(look)
    if split is None and numbers is None:
        raise JerseyInputError(
            'nothing to render: give --numbers "0 00 7" (with --out), or --split PATH to top up a train split.'
        )
    wanted = parse_numbers(numbers) if numbers is not None else []
    have: Counter = Counter()
    if split is not None:
        split_dir = Path(split).expanduser()
        if not split_dir.is_dir():
            raise JerseyInputError(f"--split {split}: no such folder. Give a train split, e.g. my_data/train.")
        have = Counter(label for _, label in read_split_dir(split_dir, "train").samples)
        out = out or str(split_dir / "synthetic")
    if out is None:
        raise JerseyInputError("--out is needed with --numbers alone: the folder to write, e.g. synth/train.")
    out_dir = Path(out).expanduser()
    if out_dir.exists() and any(out_dir.iterdir()):
        raise JerseyInputError(
            f"--out {out_dir}: already exists and is not empty (an earlier render?). Remove it to render again, "
            "or give another --out and --seed (with --split, the earlier render counts towards --count)."
        )
    todo = plan(have, wanted, count, count if below is None else below)
    if not todo:
        say(f"jersey-cls-synth: nothing to do: every number already has {count} crops or more.")
        return out_dir
    total = sum(todo.values())
    say(f"jersey-cls-synth: rendering {total} crops of {len(todo)} numbers into {out_dir}")
    for label, n in todo.items():
        say(f"  {label:>3}: {have[label]} -> {have[label] + n}")
    start = time.perf_counter()
    written = render_set(out_dir, todo, look, seed)
    by_number: dict[str, list[tuple[Path, str]]] = {}
    for crop in written:
        by_number.setdefault(crop[1], []).append(crop)
    # Round robin over the numbers, so the sheet shows as many of them as fit.
    picks = [crop for crops in zip_longest(*by_number.values()) for crop in crops if crop][:sheet]
    crops = []
    for crop_path, _ in picks:
        with Image.open(crop_path) as crop:
            crops.append(crop.convert("RGB"))
    sheet_path = contact_sheet(crops, [label for _, label in picks], out_dir / "contact_sheet.png")
    say(
        f"jersey-cls-synth: wrote {total} crops and {out_dir / 'annotations.jsonl'} in "
        f"{time.perf_counter() - start:.0f} s; contact sheet: {sheet_path}"
    )
    return out_dir


TITLE = "one tracklet a row: the number where a frame shows it"


def players(
    out: str,
    tracklets: int = 1000,
    test: int = 100,
    labels: Labels = "frames",
    frames: tuple[int, int] = (20, 100),
    shown: tuple[float, float] = (0.15, 0.4),
    illegible_share: float = 0.15,
    seed: int = 0,
    workers: int | None = None,
) -> Path:
    """Render whole-player tracklets of numbers 0-99: small, tall thumbnails of one player on the pitch, in team
    colours, the number on the back (three of its 15 faces are jersey block faces), seen from the back on some frames
    and turned, covered by an arm or another player, blurred or far away on the others. Writes a train split (and
    a test split unless --test 0), the renderer's record of each tracklet's number and the frames that show it
    (rendered_frames.json) and a contact sheet.

    Args:
        out: Folder to write (new or empty).
        tracklets: Tracklets in train.
        test: Tracklets in test.
        labels: "frames": the Roboflow JSONL layout, each frame labelled with what it shows (its number, or -1)
            and its tracklet: the labels a real set lacks (train on them with --data.illegible true). "tracklets":
            SoccerNet's layout, one number (or -1) per tracklet, as the SoccerNet jersey task ships.
        frames: Frames per tracklet, [fewest, most].
        shown: Share of a legible tracklet's frames that show its number, [low, high].
        illegible_share: Share of tracklets whose number is never shown (SoccerNet's -1).
        seed: Seed of the render; the same seed and arguments give the same set.
        workers: Processes that render. Default: one per CPU core.
    """
    problems = []
    if tracklets < 1 or test < 0:
        problems.append(f"--tracklets {tracklets} --test {test}: give 1 or more train tracklets and 0 or more test")
    if not 1 <= frames[0] <= frames[1]:
        problems.append(f"--frames {list(frames)}: give [fewest, most] frames per tracklet, 1 <= fewest <= most")
    if not 0 < shown[0] <= shown[1] <= 1:
        problems.append(f"--shown {list(shown)}: give [low, high] shares with 0 < low <= high <= 1")
    if workers is not None and workers < 1:
        problems.append(f"--workers {workers}: give 1 or more processes, or leave it out for one per CPU core")
    if not 0 <= illegible_share < 1:
        problems.append(f"--illegible_share {illegible_share}: give a share from 0 up to (not including) 1")
    out_dir = Path(out).expanduser()
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        problems.append(f"--out {out_dir}: already exists and is not an empty folder; remove it or give another")
    if problems:
        raise JerseyInputError("\n".join(problems))
    counts = {"train": tracklets, "test": test} if test else {"train": tracklets}
    say(f"jersey-cls-synth: rendering {tracklets} train and {test} test player tracklets into {out_dir}")
    start = time.perf_counter()
    # On Linux, the cores this process may use (a container's share); elsewhere, all of them.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    record = render_tracklet_set(out_dir, counts, labels, seed, "players", frames, shown, illegible_share,
                                 workers or cores)  # fmt: skip
    shown_frames = sum(sum(tracklet["shown"]) for tracklet in record.values())
    total = sum(len(tracklet["shown"]) for tracklet in record.values())
    # The sheet: the first eight frames of the first tracklets, a row each, captioned with what each shows.
    crops, captions = [], []
    for folder, tracklet in list(record.items())[:8]:
        for frame, visible in list(enumerate(tracklet["shown"]))[:8]:
            with Image.open(out_dir / folder / f"{frame:04d}.jpg") as crop:
                crops.append(crop.convert("RGB"))
            captions.append(tracklet["number"] if visible else "hidden" if tracklet["number"] else "-1")
    sheet_path = contact_sheet(crops, captions, out_dir / "contact_sheet.png", TITLE)
    say(
        f"jersey-cls-synth: wrote {len(record)} tracklets, {total} frames ({shown_frames / max(1, total):.0%} show "
        f"their number) in {time.perf_counter() - start:.0f} s; contact sheet: {sheet_path}"
    )
    return out_dir


def main(args: list[str] | None = None) -> None:
    from jsonargparse import auto_cli

    args = sys.argv[1:] if args is None else list(args)
    try:
        if args[:1] == ["players"]:
            auto_cli(players, args=args[1:], as_positional=False, prog="jersey-cls-synth players")
        else:
            auto_cli(synth, args=args, as_positional=False, prog="jersey-cls-synth")
    except JerseyInputError as error:
        say(f"jersey-cls-synth: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
