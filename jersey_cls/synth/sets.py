"""Rendered sets in the Roboflow JSONL layout: the embedded default set a newcomer trains on, and the crops
``jersey-cls-synth`` renders."""

import hashlib
import json
import random
from dataclasses import asdict
from pathlib import Path

from jersey_cls import default_cache_dir
from jersey_cls.synth.render import (
    BLOCK_FONTS,
    FONT_FILES,
    RENDER_VERSION,
    Look,
    render_crop,
    staged_folder,
)

# 0 and 00 both appear, and 6/9, 2/5 test that augmentation never mirrors digits.
DEFAULT_NUMBERS = "0 00 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 20 21 22 23 24 25 30 33 35 42 44 77 99".split()
SPLIT_SIZES = {"train": 64, "valid": 16, "test": 16}
PREFIX = "Read the number."


def render_set(out_dir: Path, counts: dict[str, int], look: Look, seed: int) -> list[tuple[Path, str]]:
    """Render ``counts[number]`` crops of each number into ``out_dir`` with its annotations.jsonl; returns the
    (crop path, number) pairs written.

    Crop ``i`` of a number is a function of (seed, number, i) alone, so a set is reproducible; renders that must
    not repeat each other take different seeds. The folder appears complete or not at all."""
    out_dir = Path(out_dir)
    if (out_dir / "annotations.jsonl").exists():
        raise FileExistsError(f"{out_dir} already holds a rendered set (annotations.jsonl)")
    with staged_folder(out_dir) as staging:
        rows = []
        for number, count in counts.items():
            for i in range(count):
                name = f"{number}_{i:05d}.jpg"
                render_crop(number, random.Random(f"{seed}-{number}-{i}"), look).save(staging / name, quality=95)
                rows.append({"image": name, "prefix": PREFIX, "suffix": number})
        with open(staging / "annotations.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)
    return [(out_dir / row["image"], row["suffix"]) for row in rows]


def embedded_root(cache_dir: Path | None = None) -> Path:
    """Where the embedded synthetic set of this render recipe lives (rendered or not)."""
    recipe = json.dumps([RENDER_VERSION, DEFAULT_NUMBERS, SPLIT_SIZES, asdict(Look()), FONT_FILES, BLOCK_FONTS])
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:10]
    return Path(cache_dir or default_cache_dir()) / f"synthetic-{digest}"


def embedded_dataset(cache_dir: Path | None = None) -> Path:
    """Path of the embedded synthetic set, rendering it first if this cache does not hold it yet."""
    root = embedded_root(cache_dir)
    for split_index, (split, per_number) in enumerate(SPLIT_SIZES.items()):
        if not (root / split / "annotations.jsonl").exists():  # render_set writes a split whole or not at all
            render_set(root / split, dict.fromkeys(DEFAULT_NUMBERS, per_number), Look(), seed=split_index)
    return root
