"""Real-pixel benchmark data: handwritten digit scans (scikit-learn's copy of the UCI set, 1,797 8x8 scans by
43 writers) composed into jersey numbers on coloured crops. Written in the Roboflow JSONL layout, so the real
`jersey-cls fit` reads them. Nothing here comes from jersey-cls's own renderer.

    numbers   101 numbers, `--holdout` of them absent from train and valid; test has every number. Scans are
              split between train, valid and test first, so no scan is seen in two splits. With
              ``numbers=DIGITS``: the ten digits alone, each on its own crop (tests/test_recipe.py).
    digits10  the scans themselves, one class per digit: train 1,257, valid 270, test 270.
"""

import io
import json
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from jersey_cls.numbers import LEGAL_NUMBERS, digits

DIGITS = [str(d) for d in range(10)]
BACKGROUNDS = [(200, 16, 46), (0, 45, 98), (253, 185, 39), (0, 122, 51), (85, 37, 130), (240, 240, 240),
               (20, 20, 20), (0, 125, 197), (229, 95, 32), (12, 35, 64)]  # fmt: skip


def digit_scans(seed: int = 0, half: int | None = None) -> dict[str, dict[int, list[np.ndarray]]]:
    """{split: {digit: [8x8 float scans in 0-1]}}: 70% train, 15% valid, 15% test of each digit's scans; of the
    first or the second half of scikit-learn's scans only, with ``half`` 0 or 1, so that two sets share no scan."""
    from sklearn.datasets import load_digits

    scans = load_digits()
    rng = np.random.default_rng(seed)
    pools: dict[str, dict[int, list[np.ndarray]]] = {"train": {}, "valid": {}, "test": {}}
    kept = np.arange(len(scans.images)) // ((len(scans.images) + 1) // 2) == half if half is not None else True
    for digit in range(10):
        images = scans.images[(scans.target == digit) & kept] / 16.0
        order = rng.permutation(len(images))
        cut_train, cut_valid = round(0.7 * len(images)), round(0.85 * len(images))
        for split, part in (("train", order[:cut_train]), ("valid", order[cut_train:cut_valid]),
                            ("test", order[cut_valid:])):  # fmt: skip
            pools[split][digit] = [images[i] for i in part]
    return pools


def compose(number: str, pool: dict[int, list[np.ndarray]], rng: random.Random, size: int) -> Image.Image:
    """``number`` written with scans from ``pool``, ink on a jersey colour, slightly blurred and JPEG-compressed."""
    background = np.array(rng.choice(BACKGROUNDS), dtype=np.float32)
    luminance = 0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2]
    ink = np.array((20, 20, 20) if luminance > 140 else (245, 245, 245), dtype=np.float32)
    height = round(size * rng.uniform(0.45, 0.6))
    width = round(height * rng.uniform(0.6, 0.8))
    gap = round(width * rng.uniform(0.0, 0.15))
    total = len(number) * width + (len(number) - 1) * gap
    if total > 0.85 * size:  # two wide digits: shrink both to fit the crop
        width, gap = int(width * 0.85 * size / total), int(gap * 0.85 * size / total)
        total = len(number) * width + (len(number) - 1) * gap
    alpha = np.zeros((size, size), dtype=np.float32)
    x = (size - total) // 2 + rng.randint(-size // 16, size // 16)
    y = (size - height) // 2 + rng.randint(-size // 16, size // 16)
    for char in number:
        scan = rng.choice(pool[int(char)])
        glyph = Image.fromarray((scan * 255).astype(np.uint8)).resize((width, height), Image.BILINEAR)
        alpha[y : y + height, x : x + width] = np.maximum(alpha[y : y + height, x : x + width], np.asarray(glyph) / 255)
        x += width + gap
    pixels = background * (1 - alpha[..., None]) + ink * alpha[..., None]
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0, 1)))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=rng.randint(50, 95))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def write_split(folder: Path, crops: list[tuple[Image.Image, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (image, label) in enumerate(crops):
        name = f"{i:05d}.png"
        image.save(folder / name)
        rows.append({"image": name, "prefix": "Read the number.", "suffix": label})
    (folder / "annotations.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def held_out_numbers(share: float, seed: int) -> list[str]:
    """A random ``share`` of the legal numbers whose tens (or none) and units digit each still appear, in that
    place, in some train number: a digit never seen in its place cannot be read."""
    rng = random.Random(seed)
    held = set(rng.sample(LEGAL_NUMBERS, round(share * len(LEGAL_NUMBERS))))
    seen = [n for n in LEGAL_NUMBERS if n not in held]
    tens_seen, units_seen = {digits(n)[0] for n in seen}, {digits(n)[1] for n in seen}
    return [n for n in LEGAL_NUMBERS if n in held and digits(n)[0] in tens_seen and digits(n)[1] in units_seen]


def write_numbers(
    root: Path,
    held: list[str],
    per_number: dict[str, int],
    size: int,
    seed: int,
    numbers: list[str] = LEGAL_NUMBERS,
    half: int | None = None,
) -> None:
    """``per_number[split]`` crops of each of ``numbers`` per split, those in ``held`` in test only, written with
    the scans of ``half`` (see digit_scans)."""
    pools = digit_scans(seed, half)
    seen = [n for n in numbers if n not in held]
    for split, count in per_number.items():
        chosen = numbers if split == "test" else seen
        rng = random.Random(f"{seed}-{split}")
        write_split(root / split, [(compose(n, pools[split], rng, size), n) for n in chosen for _ in range(count)])


def write_digits10(root: Path, size: int, seed: int) -> None:
    """The scans themselves, upscaled: grey digits, as scikit-learn ships them."""
    from sklearn.datasets import load_digits

    scans = load_digits()
    order = np.random.default_rng(seed).permutation(len(scans.images))
    parts = {"train": order[:1257], "valid": order[1257:1527], "test": order[1527:]}
    for split, indices in parts.items():
        crops = []
        for i in indices:
            grey = Image.fromarray((scans.images[i] / 16 * 255).astype(np.uint8))
            crops.append((grey.resize((size, size), Image.BILINEAR).convert("RGB"), str(scans.target[i])))
        write_split(root / split, crops)
