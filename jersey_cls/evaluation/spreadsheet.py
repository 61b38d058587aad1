"""The one writer and reader of the project's CSV files, which users open in a spreadsheet.

Labels, track ids and file names come from annotation tools, crowd workers and folder names: a cell that starts
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to a spreadsheet (OWASP's CSV injection
rule). Such a cell is written with a leading ``'``, which a spreadsheet shows as text, and so is one that
already starts with ``'``, so that ``read_rows`` gives back every original value exactly. A plain number
(``-1``, ``+0.5``) is no formula and is written as it is.
"""

import csv
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def cell(value: Any) -> Any:
    """``value`` as a CSV cell a spreadsheet cannot run."""
    if isinstance(value, os.PathLike):  # written as its text, which may start with "="
        value = os.fspath(value)
    if isinstance(value, str) and value.startswith((*FORMULA_STARTS, QUOTE)) and not NUMBER.fullmatch(value):
        return QUOTE + value
    return value


def original(text: str) -> str:
    """The value ``cell`` was given, from the text it wrote."""
    return text[1:] if text.startswith(QUOTE) else text


class DictWriter(csv.DictWriter):
    """csv.DictWriter whose cells, header included (writeheader writes it as a row), are ``cell``'s."""

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({key: cell(value) for key, value in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for row in rowdicts:
            self.writerow(row)


def write_rows(path: Path, header: list[str], rows: Iterable[Iterable[Any]]) -> Path:
    """A CSV file of ``rows`` under ``header``."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([cell(name) for name in header])
        writer.writerows([cell(value) for value in row] for row in rows)
    return path


def write_dicts(path: Path, rows: list[Mapping[str, Any]], fieldnames: list[str] | None = None) -> Path:
    """A CSV file of ``rows``, one column per key (the first row's, or ``fieldnames``)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = DictWriter(f, fieldnames=fieldnames or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_rows(f: TextIO) -> list[dict[str, str]]:
    """The rows of a CSV file this module wrote, every cell and column name as it was given."""
    return [{original(key): original(value) for key, value in row.items()} for row in csv.DictReader(f)]
