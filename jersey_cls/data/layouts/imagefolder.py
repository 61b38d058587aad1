"""ImageFolder: ``<split>/<label>/<image>``, the folder's name is the label. A sub-folder that holds a ``.jsonl``
(``<split>/synthetic/`` from jersey-cls-synth) is read as JSONL, so rendered top-ups sit next to real data."""

from pathlib import Path

from jersey_cls.data.layouts.jsonl import read_jsonl
from jersey_cls.data.layouts.rows import IMAGE_SUFFIXES, Row


def read_imagefolder(split_dir: Path) -> tuple[str, list[Row]]:
    """(layout, rows): "imagefolder", "jsonl" or "imagefolder+jsonl", by what the sub-folders hold."""
    label_dirs = sorted(child for child in split_dir.iterdir() if child.is_dir())
    jsonl_parts = {folder: sorted(folder.rglob("*.jsonl")) for folder in label_dirs}
    folders, jsonl = not all(jsonl_parts.values()), any(jsonl_parts.values())
    rows = []
    for folder, jsonl_files in jsonl_parts.items():
        for jsonl_file in jsonl_files:
            rows += read_jsonl(jsonl_file)
        if not jsonl_files:
            rows += images_of(folder, folder.name)
    return ("imagefolder+jsonl" if folders and jsonl else "jsonl" if jsonl else "imagefolder"), rows


def images_of(folder: Path, label: str | None) -> list[Row]:
    """Every image under ``folder``, labelled ``label``; other files are rows with a problem."""
    rows = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            rows.append(Row(str(path), label, source=str(path)))
        elif path.is_file() and path.suffix.lower() != ".jsonl":
            rows.append(Row(problem=("not an image file", str(path))))
    return rows
