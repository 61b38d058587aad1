"""Contact sheets: a grid of crops, each captioned, as jersey-cls-synth shows what it rendered and evaluation
shows what the model read."""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from jersey_cls.synth.render import builtin_font

TILE, CAPTION, COLUMNS = 96, 18, 8


def contact_sheet(crops: list[Image.Image], captions: list[str], path: Path, title: str = "",
                  colours: list[str] | None = None) -> Path:  # fmt: skip
    """``crops`` in a PNG grid, eight a row, each above its caption (in its colour, black by default), under an
    optional title."""
    rows = max(1, -(-len(crops) // COLUMNS))
    top = 24 if title else 0
    sheet = Image.new("RGB", (COLUMNS * TILE, top + rows * (TILE + CAPTION)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.truetype(builtin_font("DejaVuSans.ttf"), 11)
    if title:
        draw.text((COLUMNS * TILE / 2, top / 2), title, fill="black", font=font, anchor="mm")
    for k, (crop, caption) in enumerate(zip(crops, captions, strict=True)):
        x, y = (k % COLUMNS) * TILE, top + (k // COLUMNS) * (TILE + CAPTION)
        scale = (TILE - 4) / max(crop.size)  # a tall player thumbnail keeps its shape
        tile = crop.convert("RGB").resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))),
                                          Image.NEAREST)  # fmt: skip
        sheet.paste(tile, (x + (TILE - tile.width) // 2, y + (TILE - tile.height) // 2))
        colour = colours[k] if colours else "black"
        draw.text((x + TILE / 2, y + TILE + CAPTION / 2), caption, fill=colour, font=font, anchor="mm")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
