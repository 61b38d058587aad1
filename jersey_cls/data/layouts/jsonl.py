"""Roboflow's JSONL export: ``<split>/**/*.jsonl`` with lines ``{"image": ..., "suffix": "23"}``; every ``.jsonl``
under a split is read together, image paths are relative to their ``.jsonl`` file."""

import json
from pathlib import Path

from jersey_cls.data.layouts.rows import Row
from jersey_cls.messages import JerseyInputError

KEYS = ("image", "suffix")  # the image file and its label


def read_jsonl(jsonl_file: Path) -> list[Row]:
    rows, other_keys = [], set()
    for line_number, line in enumerate(jsonl_file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{jsonl_file}:{line_number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            rows.append(Row(problem=("malformed JSONL line", f"{where}: not JSON ({error.msg})")))
            continue
        if not isinstance(row, dict) or not all(key in row for key in KEYS):
            keys = sorted(row) if isinstance(row, dict) else type(row).__name__
            other_keys.add(str(keys))
            problem = ("malformed JSONL line", f"{where}: has {keys}, expected the keys {list(KEYS)}")
            # An image without a label is no training row, and a crop predict can still read.
            image = str(jsonl_file.parent / str(row.pop("image"))) if isinstance(row, dict) and "image" in row else ""
            rows.append(Row(image, None, row if isinstance(row, dict) else {}, where, problem))
            continue
        label = str(row.pop("suffix")).strip() or None
        rows.append(Row(str(jsonl_file.parent / str(row.pop("image"))), label, row, where))
    if other_keys and all(row.problem for row in rows):
        raise JerseyInputError(
            f"{jsonl_file}: no row has the keys {list(KEYS)} of Roboflow's JSONL export (found: "
            f"{', '.join(sorted(other_keys))}). Rename the keys: image is the image file, relative to the .jsonl "
            "file, and suffix is its label; or lay the split out as ImageFolder (<split>/<label>/<image>)."
        )
    return rows
