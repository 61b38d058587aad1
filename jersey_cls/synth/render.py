"""The synthetic engine: one broadcast-like jersey-number crop at a time, drawn from a seeded generator."""

import io
import math
import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib.resources import files
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

# Bump when rendering changes, so caches of older renders are not reused.
RENDER_VERSION = 3

# Team colours: jersey body, and the number inks that read on it.
JERSEY_COLOURS = [
    (200, 16, 46), (0, 45, 98), (253, 185, 39), (0, 122, 51), (85, 37, 130), (240, 240, 240),
    (20, 20, 20), (0, 125, 197), (206, 17, 65), (0, 83, 188), (134, 38, 51), (0, 43, 92),
    (229, 95, 32), (0, 107, 182), (35, 31, 32), (193, 211, 47), (12, 35, 64), (152, 0, 46),
]  # fmt: skip
DARK_INKS = [(15, 15, 15), (0, 40, 100), (150, 10, 30), (0, 80, 40), (60, 30, 100)]
LIGHT_INKS = [(245, 245, 245), (250, 200, 40), (230, 230, 230), (190, 190, 190), (255, 140, 40)]
OCCLUDER_COLOURS = [(224, 172, 138), (141, 85, 36), (198, 134, 66), (92, 51, 23), (213, 96, 35), (30, 30, 30)]
# Several families and weights, shipped inside matplotlib (a core dependency), so every install has them.
FONT_FILES = (
    "DejaVuSans-Bold.ttf", "DejaVuSans.ttf", "DejaVuSans-BoldOblique.ttf", "DejaVuSerif-Bold.ttf",
    "DejaVuSerif.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono.ttf", "STIXGeneralBol.ttf", "STIXGeneral.ttf",
    "cmb10.ttf", "cmss10.ttf", "cmr10.ttf",
)  # fmt: skip
# Jersey block faces under the SIL Open Font License, shipped in jersey_cls/synth/fonts with their licences.
BLOCK_FONTS = ("Jersey10-Regular.ttf", "Graduate-Regular.ttf", "Staatliches-Regular.ttf")


@dataclass
class Look:
    """How rendered crops look. Each effect is drawn per crop: a probability, or a range sampled uniformly.

    Args:
        size: Side of the square crop written, in pixels.
        fonts: Extra .ttf/.otf files (your league's block fonts), used alongside the built-in families.
        outline_p: Probability that the digits get an outline in a second colour.
        shadow_p: Probability of a soft drop shadow behind the digits.
        perspective: Largest corner shift of the perspective warp, as a fraction of the side.
        fold_p: Probability of a fabric fold: a wavy warp with shading across the shirt.
        occlusion_p: Probability that an arm, hand or ball covers part of the number.
        motion_blur_p: Probability of linear motion blur.
        downscale: Side of the crop in the broadcast frame, as a fraction of ``size``, before it is scaled back up.
        jpeg_quality: JPEG quality range of the final compression.
    """

    size: int = 96
    fonts: list[str] = field(default_factory=list)
    outline_p: float = 0.6
    shadow_p: float = 0.3
    perspective: float = 0.12
    fold_p: float = 0.6
    occlusion_p: float = 0.2
    motion_blur_p: float = 0.3
    downscale: tuple[float, float] = (0.25, 0.6)
    jpeg_quality: tuple[int, int] = (25, 85)


@contextmanager
def staged_folder(out_dir: Path) -> Iterator[Path]:
    """A private folder beside ``out_dir`` to write a set into; on a clean exit it becomes ``out_dir`` (replacing an
    empty one) with the mode a plain mkdir gives, since other users and containers read it: the set appears
    complete or not at all."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        yield staging
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp makes it 0700
        if out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def builtin_font(name: str) -> str:
    return str(files("matplotlib") / "mpl-data" / "fonts" / "ttf" / name)


def block_font(name: str) -> str:
    return str(files("jersey_cls.synth") / "fonts" / name)


def font_files(look: Look) -> list[str]:
    shipped = [builtin_font(name) for name in FONT_FILES] + [block_font(name) for name in BLOCK_FONTS]
    return shipped + [str(Path(f).expanduser()) for f in look.fonts]


def _contrasting(colour: tuple[int, ...], rng: random.Random) -> tuple[int, int, int]:
    luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    return rng.choice(DARK_INKS if luminance > 140 else LIGHT_INKS)


def _draw_number(image: Image.Image, number: str, ink, outline, font_file: str, stroke: int, shadow: bool, rng):
    """Digits one by one, with the kerning and horizontal squeeze of real jersey lettering."""
    canvas = image.width
    squeeze = rng.uniform(0.75, 1.1)
    spacing = rng.uniform(-0.02, 0.12)
    font = ImageFont.truetype(font_file, size=int(canvas * rng.uniform(0.42, 0.6)))
    width = (sum(font.getlength(digit) for digit in number) + spacing * font.size * (len(number) - 1)) * squeeze
    if width > 0.7 * canvas:  # keep every digit inside the tightest detector box below
        font = ImageFont.truetype(font_file, size=int(font.size * 0.7 * canvas / width))
    gap = spacing * font.size
    widths = [font.getlength(digit) for digit in number]
    layer_width = int(canvas / squeeze)
    layer = Image.new("RGBA", (layer_width, canvas), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    x = layer_width / 2 - (sum(widths) + gap * (len(number) - 1)) / 2
    y = canvas / 2 + rng.uniform(-0.05, 0.05) * canvas
    for digit, width in zip(number, widths, strict=True):
        draw.text((x, y), digit, font=font, fill=ink + (255,), anchor="lm", stroke_width=stroke, stroke_fill=outline)
        x += width + gap
    layer = layer.resize((canvas, canvas), Image.BICUBIC)
    if shadow:
        alpha = layer.getchannel("A").filter(ImageFilter.GaussianBlur(canvas / 60))
        offset = (rng.randint(2, canvas // 30 + 2), rng.randint(2, canvas // 30 + 2))
        dark = Image.new("RGB", image.size, (10, 10, 10))
        image.paste(dark, offset, alpha.point(lambda a: a * 0.6))
    image.paste(layer, (0, 0), layer)


def _perspective(image: Image.Image, strength: float, fill, rng) -> Image.Image:
    side = image.width
    corners = [(0, 0), (side, 0), (side, side), (0, side)]
    moved = [(x + rng.uniform(-1, 1) * strength * side, y + rng.uniform(-1, 1) * strength * side) for x, y in corners]
    # PIL maps each output pixel to an input pixel: solve for the coefficients taking `moved` to `corners`.
    rows, rhs = [], []
    for (x, y), (u, v) in zip(moved, corners, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    coefficients = np.linalg.solve(np.array(rows, dtype=float), np.array(rhs, dtype=float))
    return image.transform(image.size, Image.PERSPECTIVE, tuple(coefficients), Image.BICUBIC, fillcolor=fill)


def _fold(pixels: np.ndarray, rng) -> np.ndarray:
    """A fabric fold: pixels displaced along a wave, and shaded darker in its troughs."""
    side = pixels.shape[0]
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    angle = rng.uniform(0, math.pi)
    wavelength = rng.uniform(0.3, 0.9) * side
    phase = rng.uniform(0, 2 * math.pi)
    wave = np.sin(2 * math.pi * (x * math.cos(angle) + y * math.sin(angle)) / wavelength + phase)
    amplitude = rng.uniform(0.01, 0.04) * side
    source_x = np.clip(x + amplitude * wave * -math.sin(angle), 0, side - 1).astype(np.int32)
    source_y = np.clip(y + amplitude * wave * math.cos(angle), 0, side - 1).astype(np.int32)
    shade = 1 - rng.uniform(0.1, 0.35) * (0.5 + 0.5 * wave)
    return pixels[source_y, source_x] * shade[..., None]


def _occlude(image: Image.Image, rng) -> None:
    """An arm, hand or ball over part of the number, entering from one side."""
    side = image.width
    draw = ImageDraw.Draw(image)
    colour = rng.choice(OCCLUDER_COLOURS + JERSEY_COLOURS[:4])
    reach = rng.uniform(0.15, 0.35) * side
    thickness = rng.uniform(0.15, 0.3) * side
    along = rng.uniform(0.25, 0.75) * side
    edge = rng.choice("lrtb")
    if edge in "lr":
        x0 = -thickness if edge == "l" else side - reach
        box = (x0, along - thickness / 2, x0 + reach + thickness, along + thickness / 2)
    else:
        y0 = -thickness if edge == "t" else side - reach
        box = (along - thickness / 2, y0, along + thickness / 2, y0 + reach + thickness)
    draw.rounded_rectangle(box, radius=thickness / 2, fill=colour)


def _motion_blur(pixels: np.ndarray, rng) -> np.ndarray:
    length = rng.randint(3, max(4, pixels.shape[0] // 16))
    angle = rng.uniform(0, math.pi)
    steps = [(round(k * math.sin(angle)), round(k * math.cos(angle))) for k in range(length)]
    pad = length
    padded = np.pad(pixels, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    side = pixels.shape[0]
    return np.mean([padded[pad + dy : pad + dy + side, pad + dx : pad + dx + side] for dy, dx in steps], axis=0)


def render_crop(number: str, rng: random.Random, look: Look | None = None) -> Image.Image:
    """One broadcast-like crop of ``number`` on a jersey, drawn from ``rng`` (same seed, same crop)."""
    look = look or Look()
    canvas = look.size * 2
    jersey = rng.choice(JERSEY_COLOURS)
    ink = _contrasting(jersey, rng)
    outline = rng.choice([(0, 0, 0), (255, 255, 255), _contrasting(ink, rng)])
    image = Image.new("RGB", (canvas, canvas), jersey)
    stroke = rng.randint(2, 6) if rng.random() < look.outline_p else 0
    _draw_number(image, number, ink, outline, rng.choice(font_files(look)), stroke, rng.random() < look.shadow_p, rng)
    image = image.rotate(rng.uniform(-10, 10), resample=Image.BICUBIC, fillcolor=jersey)
    image = _perspective(image, look.perspective, jersey, rng)

    pixels = np.asarray(image, dtype=np.float32)
    if rng.random() < look.fold_p:
        pixels = _fold(pixels, rng)
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    if rng.random() < look.occlusion_p:
        _occlude(image, rng)
    # The detector's box: a little loose or tight around the number, a little off-centre.
    box_side = canvas * rng.uniform(0.75, 1.0)
    left = rng.uniform(0, canvas - box_side)
    top = rng.uniform(0, canvas - box_side)
    image = image.crop((round(left), round(top), round(left + box_side), round(top + box_side)))
    if rng.random() < look.motion_blur_p:
        image = Image.fromarray(_motion_blur(np.asarray(image, dtype=np.float32), rng).astype(np.uint8))

    # Broadcast crops are tiny in the frame: downscale hard, then upscale to the crop size, then JPEG.
    small = max(8, round(look.size * rng.uniform(*look.downscale)))
    image = image.resize((small, small), Image.BILINEAR).resize((look.size, look.size), Image.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=rng.randint(*look.jpeg_quality))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def render_illegible(number: str, rng: random.Random, look: Look | None = None) -> Image.Image:
    """A crop of a player wearing ``number`` in which it cannot be read: the back turned away (no digits), the
    number hidden by an arm, or too small and blurred to make out."""
    look = look or Look()
    kind = rng.choice(("turned", "occluded", "tiny"))
    if kind == "turned":
        return render_crop("", rng, look)
    if kind == "occluded":
        crop = render_crop(number, rng, replace(look, occlusion_p=0.0))
        draw = ImageDraw.Draw(crop)
        side, colour = crop.width, rng.choice(OCCLUDER_COLOURS)
        top = rng.uniform(0.1, 0.25) * side
        draw.rounded_rectangle((-side * 0.1, top, side * 1.1, side - top), radius=side / 6, fill=colour)
        return crop
    return render_crop(number, rng, replace(look, downscale=(0.03, 0.06), motion_blur_p=1.0))
