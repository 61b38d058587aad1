"""Read any image a dataset may hold as 8-bit RGB."""

import numpy as np
from PIL import Image

SIXTEEN_BIT_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}


def load_rgb(path: str) -> Image.Image:
    """8-bit RGB from L, LA, P, RGBA, CMYK, 16-bit and the rest; raises OSError/ValueError when undecodable.

    Plain ``convert("RGB")`` clips 16-bit greys to white and keeps the colour under transparent pixels;
    here 16-bit values are scaled to 8 bits and transparency is composited over black.
    """
    with Image.open(path) as image:
        image.load()  # decodes fully, so truncated files fail here rather than mid-batch
        if image.mode in SIXTEEN_BIT_MODES:
            values = np.asarray(image, dtype=np.float64)
            scale = 257.0 if values.max() > 255 else 1.0
            image = Image.fromarray(np.clip(values / scale, 0, 255).astype(np.uint8), mode="L")
        if image.mode == "P":
            image = image.convert("RGBA")
        if image.mode in ("RGBA", "LA", "PA"):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
            image = Image.alpha_composite(background, rgba)
        return image.convert("RGB")


def median_aspect(paths: list[str], sample: int = 200) -> float:
    """The median height / width of up to ``sample`` of ``paths``, evenly spread, read from their headers
    alone; 1 when none can be read."""
    step = max(1, len(paths) // sample)
    aspects = []
    for path in paths[::step][:sample]:
        try:
            with Image.open(path) as image:
                aspects.append(image.height / image.width)
        except (OSError, ValueError, ZeroDivisionError):
            continue
    return float(np.median(aspects)) if aspects else 1.0


def input_shape(side: int, aspect: float) -> list[int]:
    """The model's input, [height, width], for crops of ``aspect`` (height / width): a square of ``side`` for
    crops within a quarter of square, else the crops' shape with as many pixels as that square (multiples of 4)."""
    if 0.8 <= aspect <= 1.25:
        return [side, side]
    return [max(4, round(side * aspect**0.5 / 4) * 4), max(4, round(side / aspect**0.5 / 4) * 4)]
