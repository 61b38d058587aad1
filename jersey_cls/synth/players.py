"""Whole players as a broadcast tracker crops them: a small, tall thumbnail of one player on the pitch, seen from
the back (the number readable), or turned, covered, blurred or too far for the number to be read.

A tracklet keeps its player (kit, skin, build, the number's font and size) and changes view and blur from frame to
frame; ``render_player`` draws one frame of it."""

import io
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from jersey_cls.synth.render import JERSEY_COLOURS, OCCLUDER_COLOURS, _contrasting, font_files

SKINS = [(224, 172, 138), (198, 134, 66), (141, 85, 36), (92, 51, 23), (236, 188, 160)]
HAIRS = [(20, 15, 10), (60, 40, 20), (120, 80, 40), (200, 170, 100), (30, 30, 30)]
GRASS = [(46, 112, 48), (58, 128, 60), (40, 96, 44), (70, 140, 64), (52, 104, 56)]
# How a frame hides the number: the player faces the camera, stands side-on, is covered by an arm or another
# player, or is blurred or small beyond reading.
HIDDEN_VIEWS = ("front", "side", "covered", "blurred")
SCALE = 4  # frames are drawn this many times larger, then shrunk: edges come out anti-aliased like a camera's

# A number as an alpha mask: (number, rng, width, height) -> float array (height, width) in 0-1.
DigitsMask = Callable[[str, random.Random, int, int], np.ndarray]


@dataclass
class Player:
    """What stays the same across one tracklet's frames."""

    number: str
    jersey: tuple[int, int, int]
    ink: tuple[int, int, int]
    outline: tuple[int, int, int] | None
    shorts: tuple[int, int, int]
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    grass: tuple[int, int, int]
    font: str
    build: float  # shoulder width, as a share of the frame's width
    number_height: float  # the number's height, as a share of the torso's
    width: int  # the thumbnail's width in pixels; its height follows from ``aspect``
    aspect: float


@dataclass
class PlayerLook:
    """How player thumbnails look. Ranges are sampled uniformly.

    Args:
        width: The thumbnail's width in pixels, per tracklet.
        aspect: Height over width, per tracklet (broadcast thumbnails are about 2).
        number_height: The number's height on the back, as a share of the torso's height.
        fonts: Extra .ttf/.otf files, used alongside the built-in families.
        motion_blur_p: Probability of motion blur on a frame that shows the number.
        jpeg_quality: JPEG quality range of the final compression.
    """

    width: tuple[int, int] = (42, 60)
    aspect: tuple[float, float] = (1.9, 2.4)
    number_height: tuple[float, float] = (0.3, 0.5)
    fonts: list[str] = field(default_factory=list)
    motion_blur_p: float = 0.3
    jpeg_quality: tuple[int, int] = (30, 85)


def new_player(number: str, rng: random.Random, look: PlayerLook | None = None) -> Player:
    look = look or PlayerLook()
    jersey = rng.choice(JERSEY_COLOURS)
    ink = _contrasting(jersey, rng)
    return Player(
        number=number,
        jersey=jersey,
        ink=ink,
        outline=rng.choice([None, None, (0, 0, 0), (255, 255, 255), _contrasting(ink, rng)]),
        shorts=rng.choice([jersey, (20, 20, 20), (240, 240, 240), rng.choice(JERSEY_COLOURS)]),
        skin=rng.choice(SKINS),
        hair=rng.choice(HAIRS),
        grass=rng.choice(GRASS),
        font=rng.choice(font_files(look)),  # type: ignore[arg-type]
        build=rng.uniform(0.55, 0.75),
        number_height=rng.uniform(*look.number_height),
        width=rng.randint(*look.width),
        aspect=rng.uniform(*look.aspect),
    )


def font_mask(player: Player) -> DigitsMask:
    """The number in the player's font, filling a box (the tracklet's lettering)."""

    def mask(number: str, rng: random.Random, width: int, height: int) -> np.ndarray:
        font = ImageFont.truetype(player.font, size=max(8, int(height * 1.25)))
        layer = Image.new("L", (int(font.getlength(number)) + height, int(height * 1.6)), 0)
        ImageDraw.Draw(layer).text((height // 2, layer.height // 2), number, font=font, fill=255, anchor="lm")
        box = layer.getbbox() or (0, 0, 1, 1)
        return np.asarray(layer.crop(box).resize((width, height), Image.BILINEAR), dtype=np.float32) / 255

    return mask


def render_player(
    player: Player,
    rng: random.Random,
    view: str = "back",
    look: PlayerLook | None = None,
    digits: DigitsMask | None = None,
) -> Image.Image:
    """One frame of ``player``: ``view`` "back" shows the number; one of HIDDEN_VIEWS hides it. ``digits`` draws
    the number (default: the player's font)."""
    look = look or PlayerLook()
    width = max(16, round(player.width * rng.uniform(0.93, 1.07)))
    height = round(width * player.aspect)
    w, h = width * SCALE, height * SCALE
    pixels = _pitch(player.grass, w, h, rng)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    cx = w / 2 + rng.uniform(-0.06, 0.06) * w
    top = h * rng.uniform(0.02, 0.06)
    head = h * 0.11
    shoulders = w * player.build * (rng.uniform(0.45, 0.6) if view == "side" else rng.uniform(0.75, 1.05))
    torso_top, torso_bottom = top + head * 1.05, top + h * 0.5
    hips = shoulders * 0.82
    legs_top, feet = torso_bottom + h * 0.13, h * rng.uniform(0.95, 0.99)
    stride = rng.uniform(-0.12, 0.12) * w
    for side in (-1, 1):  # legs, then socks
        x = cx + side * hips * 0.22
        draw.line([(x, legs_top), (x + side * stride, feet)], fill=player.skin, width=round(hips * 0.28))
        draw.line([(x + side * stride * 0.55, feet - h * 0.15), (x + side * stride, feet)], fill=player.jersey,
                  width=round(hips * 0.3))  # fmt: skip
    draw.rectangle((cx - hips / 2, torso_bottom - h * 0.02, cx + hips / 2, legs_top), fill=player.shorts)
    arm = rng.uniform(-25, 35)
    for side in (-1, 1):
        _limb(draw, cx + side * shoulders / 2, torso_top + head * 0.2, side * arm, h * 0.33, w * 0.1, player)
    draw.polygon([(cx - shoulders / 2, torso_top), (cx + shoulders / 2, torso_top), (cx + hips / 2, torso_bottom),
                  (cx - hips / 2, torso_bottom)], fill=player.jersey)  # fmt: skip
    draw.ellipse((cx - head * 0.42, top, cx + head * 0.42, top + head), fill=player.skin)
    hair_cover = 0.75 if view in ("back", "covered", "blurred") else 0.3
    draw.chord((cx - head * 0.44, top - head * 0.03, cx + head * 0.44, top + head * (0.4 + hair_cover)), 180, 360,
               fill=player.hair)  # fmt: skip
    torso = (cx - hips / 2, torso_top + (torso_bottom - torso_top) * 0.12, cx + hips / 2, torso_bottom)
    if view in ("back", "covered", "blurred"):
        _print_number(image, player, torso, rng, digits or font_mask(player))
    elif view == "front" and rng.random() < 0.5:  # a small chest number, too small to read at broadcast size
        chest = (cx + shoulders * 0.05, torso[1], cx + shoulders * 0.3, torso[1] + (torso[3] - torso[1]) * 0.25)
        _print_number(image, player, chest, rng, digits or font_mask(player))
    if view == "covered":
        _cover(image, torso, rng)
    if rng.random() < 0.35:  # another player at the edge of the box
        _intruder(image, rng)
    image = image.rotate(rng.uniform(-6, 6), resample=Image.BICUBIC, fillcolor=player.grass)
    blurred = view == "blurred" or rng.random() < look.motion_blur_p
    if blurred:
        strength = rng.uniform(1.0, 1.6) if view == "blurred" else rng.uniform(0.05, 0.2)
        image = _motion_blur(image, strength * (torso[3] - torso[1]) * player.number_height, rng)
    # The broadcast's own softness; a blurred frame is sometimes a far player besides.
    shrink = rng.uniform(0.25, 0.4) if view == "blurred" and rng.random() < 0.5 else rng.uniform(0.6, 1.0)
    small = (max(4, round(width * shrink)), max(8, round(height * shrink)))
    image = image.resize(small, Image.BOX).resize((width, height), Image.BILINEAR)
    light = rng.uniform(0.7, 1.25), rng.uniform(0.7, 1.2)  # brightness, contrast
    pixels = np.asarray(image, dtype=np.float32)
    pixels = (pixels - pixels.mean()) * light[1] + pixels.mean() * light[0]
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=rng.randint(*look.jpeg_quality))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _pitch(grass, w: int, h: int, rng: random.Random) -> np.ndarray:
    """Grass with mowing stripes and sometimes a white line."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    angle, period = rng.uniform(0, math.pi), rng.uniform(0.5, 1.5) * h
    stripes = 1 + 0.08 * np.sign(np.sin(2 * math.pi * (x * math.cos(angle) + y * math.sin(angle)) / period))
    pixels = np.array(grass, dtype=np.float32) * stripes[..., None]
    pixels += np.random.default_rng(rng.randrange(2**32)).normal(0, 6, pixels.shape)
    if rng.random() < 0.3:
        x0 = rng.uniform(0, w)
        slope = rng.uniform(-1, 1)
        on_line = np.abs(x - (x0 + slope * y)) < w * 0.03
        pixels[on_line] = pixels[on_line] * 0.3 + 0.7 * 235
    return pixels.clip(0, 255).astype(np.uint8)


def _limb(draw: ImageDraw.ImageDraw, x: float, y: float, angle: float, length: float, width: float, player) -> None:
    """A sleeve then a bare forearm, swung ``angle`` degrees outwards from hanging straight down."""
    radians = math.radians(angle)
    dx, dy = math.sin(radians) * length, math.cos(radians) * length
    draw.line([(x, y), (x + dx * 0.4, y + dy * 0.4)], fill=player.jersey, width=round(width * 1.1))
    draw.line([(x + dx * 0.4, y + dy * 0.4), (x + dx, y + dy)], fill=player.skin, width=round(width * 0.8))


def _print_number(image: Image.Image, player: Player, box, rng: random.Random, digits: DigitsMask) -> None:
    left, top, right, bottom = box
    height = (bottom - top) * player.number_height
    width = min((right - left) * 0.85, height * (0.62 if len(player.number) == 1 else 1.15) * rng.uniform(0.9, 1.1))
    alpha = digits(player.number, rng, max(2, round(width)), max(2, round(height)))
    x = round((left + right) / 2 - alpha.shape[1] / 2)
    y = round(top + (bottom - top - height) * rng.uniform(0.25, 0.45))
    mask = Image.fromarray((alpha * 255).astype(np.uint8))
    if player.outline is not None:
        grown = mask.filter(ImageFilter.MaxFilter(2 * max(1, round(height / 14)) + 1))
        image.paste(Image.new("RGB", grown.size, player.outline), (x, y), grown)
    image.paste(Image.new("RGB", mask.size, player.ink), (x, y), mask)


def _cover(image: Image.Image, torso, rng: random.Random) -> None:
    """An arm, or another player's body, across most of the number."""
    left, top, right, bottom = torso
    draw = ImageDraw.Draw(image)
    colour = rng.choice(OCCLUDER_COLOURS + JERSEY_COLOURS)
    y0 = top + (bottom - top) * rng.uniform(0.05, 0.2)
    y1 = top + (bottom - top) * rng.uniform(0.75, 1.0)
    draw.rounded_rectangle((left - (right - left) * 0.2, y0, right + (right - left) * 0.2, y1),
                           radius=(y1 - y0) / 4, fill=colour)  # fmt: skip


def _intruder(image: Image.Image, rng: random.Random) -> None:
    """Part of another player cut by the edge of the box."""
    w, h = image.size
    draw = ImageDraw.Draw(image)
    side = rng.choice((-1, 1))
    x = (0 if side < 0 else w) + side * rng.uniform(0.0, 0.12) * w
    y0 = rng.uniform(0.1, 0.5) * h
    draw.rounded_rectangle((x - 0.22 * w, y0, x + 0.22 * w, y0 + 0.45 * h), radius=0.08 * w,
                           fill=rng.choice(JERSEY_COLOURS))  # fmt: skip


def _motion_blur(image: Image.Image, length: float, rng: random.Random) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32)
    steps = max(2, round(length))
    angle = rng.uniform(0, math.pi)
    height, width = pixels.shape[:2]
    pad = steps + 1
    padded = np.pad(pixels, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    shifts = [(round(k * math.sin(angle)), round(k * math.cos(angle))) for k in range(steps)]
    mean = np.mean([padded[pad + dy : pad + dy + height, pad + dx : pad + dx + width] for dy, dx in shifts], axis=0)
    return Image.fromarray(mean.clip(0, 255).astype(np.uint8))
