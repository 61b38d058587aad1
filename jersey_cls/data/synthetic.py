"""Render the embedded synthetic jersey-number set, in the Roboflow JSONL layout, once per cache folder."""

import hashlib
import io
import json
import os
import random
import shutil
import tempfile
from importlib.resources import files
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

# 0 and 00 both appear, and 6/9, 2/5 test that augmentation never mirrors digits.
DEFAULT_NUMBERS = "0 00 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 20 21 22 23 24 25 30 33 35 42 44 77 99".split()
SPLIT_SIZES = {"train": 64, "valid": 16, "test": 16}
CROP_SIZE = 96
# Bump when rendering changes, so caches of older renders are not reused.
RENDER_VERSION = 1

JERSEY_COLOURS = [
    (200, 16, 46), (0, 45, 98), (253, 185, 39), (0, 122, 51), (85, 37, 130), (240, 240, 240),
    (20, 20, 20), (0, 125, 197), (206, 17, 65), (0, 83, 188), (134, 38, 51), (0, 43, 92),
]  # fmt: skip
FONT_FILES = ("DejaVuSans-Bold.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSansMono-Bold.ttf", "STIXGeneralBol.ttf")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jersey-cls"


def _fonts() -> list[Path]:
    # Fonts shipped inside matplotlib, a core dependency, so every install has them.
    font_dir = files("matplotlib") / "mpl-data" / "fonts" / "ttf"
    return [Path(str(font_dir / name)) for name in FONT_FILES]


def _contrasting(colour: tuple[int, int, int], rng: random.Random) -> tuple[int, int, int]:
    luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    if luminance > 140:
        return rng.choice([(15, 15, 15), (0, 40, 100), (150, 10, 30)])
    return rng.choice([(245, 245, 245), (250, 200, 40), (230, 230, 230)])


def render_crop(number: str, rng: random.Random, size: int = CROP_SIZE) -> Image.Image:
    """One blurry, JPEG-damaged broadcast-like crop of ``number`` on a jersey."""
    canvas = size * 2
    jersey = rng.choice(JERSEY_COLOURS)
    ink = _contrasting(jersey, rng)
    outline = rng.choice([jersey, (0, 0, 0), (255, 255, 255), _contrasting(ink, rng)])
    image = Image.new("RGB", (canvas, canvas), jersey)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(0, 3)):  # fabric folds as soft darker bands
        x = rng.randint(0, canvas)
        shade = tuple(max(0, c - rng.randint(10, 40)) for c in jersey)
        draw.line([(x, 0), (x + rng.randint(-40, 40), canvas)], fill=shade, width=rng.randint(4, 16))

    font = ImageFont.truetype(str(rng.choice(_fonts())), size=int(canvas * rng.uniform(0.45, 0.62)))
    glyphs = Image.new("RGBA", (canvas, canvas), (0, 0, 0, 0))
    glyph_draw = ImageDraw.Draw(glyphs)
    stroke = rng.randint(0, 5)
    centre = (canvas / 2 + rng.uniform(-8, 8), canvas / 2 + rng.uniform(-8, 8))
    glyph_draw.text(centre, number, font=font, fill=ink + (255,), anchor="mm", stroke_width=stroke, stroke_fill=outline)
    glyphs = glyphs.rotate(rng.uniform(-12, 12), resample=Image.BICUBIC)
    image.paste(glyphs, (0, 0), glyphs)

    # Broadcast crops are tiny in the frame: downscale hard, blur, then upscale to crop size.
    small = rng.randint(size // 4, size // 2)
    image = image.resize((small, small), Image.BILINEAR).filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.8)))
    image = image.resize((size, size), Image.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=rng.randint(25, 85))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def render_split(split_dir: Path, numbers: list[str], per_class: int, seed: int) -> None:
    split_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for class_index, number in enumerate(numbers):
        for i in range(per_class):
            rng = random.Random(f"{seed}-{class_index}-{i}")
            name = f"{number}_{i:04d}.jpg"
            render_crop(number, rng).save(split_dir / name, quality=95)
            rows.append({"image": name, "prefix": "Read the number.", "suffix": number})
    with open(split_dir / "annotations.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)


def embedded_dataset(cache_dir: Path | None = None) -> Path:
    """Path of the embedded synthetic set, rendering it first if this cache does not hold it yet."""
    recipe = json.dumps([RENDER_VERSION, DEFAULT_NUMBERS, SPLIT_SIZES, CROP_SIZE, FONT_FILES])
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:10]
    root = Path(cache_dir or default_cache_dir()) / f"synthetic-{digest}"
    if root.is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    # Render into a temporary folder and rename, so an interrupted render never leaves a half set behind.
    staging = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=root.parent))
    try:
        for split_index, (split, per_class) in enumerate(SPLIT_SIZES.items()):
            render_split(staging / split, list(DEFAULT_NUMBERS), per_class, seed=split_index)
        staging.rename(root)
    except OSError:
        if not root.is_dir():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root
