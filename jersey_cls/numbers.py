"""Jersey numbers as labels: the legal ones, their digits, and the order labels are listed in."""

import unicodedata
from collections.abc import Iterable

from jersey_cls.messages import JerseyInputError

# 0-99 and 00: the 101 numbers a basketball jersey can carry. "0" and "00" are different numbers.
LEGAL_NUMBERS = ["0", "00", *(str(n) for n in range(1, 100))]
NO_TENS = 10  # the tens "digit" of a one-digit number
ILLEGIBLE = "illegible"  # the class of crops whose number cannot be read, when a run learns them


def is_legal(label: str) -> bool:
    return label in _LEGAL


def canonical_label(text: str) -> str:
    """A label as every layout reads it: without surrounding space, and a number in any script's digits (a
    full-width ３, an Arabic-Indic ٣, a superscript ²) written in ASCII digits, leading zeros kept, so that it
    is the same class as its ASCII twin and "٠٠" is "00"."""
    label = unicodedata.normalize("NFKC", text).strip()
    if label.isdecimal() and not label.isascii():
        label = "".join(str(unicodedata.decimal(char)) for char in label)
    return label


def soccernet_number(value: object) -> str | None:
    """A SoccerNet ground-truth value as a label: the integers 0-99 and -1 (never visible) that the benchmark
    defines, and the same written as strings in ASCII digits, "00" included (an integer cannot tell it from 0);
    None for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if -1 <= value <= 99 else None
    if isinstance(value, str) and (is_legal(value.strip()) or value.strip() == "-1"):
        return value.strip()
    return None


def digits(label: str) -> tuple[int, int]:
    """(tens, units) of a legal number; tens is NO_TENS for a one-digit number, 0 for "00"."""
    return (NO_TENS, int(label)) if len(label) == 1 else (int(label[0]), int(label[1]))


def label_sort_key(label: str) -> tuple:
    """Natural numeric order that keeps "0" and "00" distinct: 0, 00, 1, 2, ..., 10, ..., then non-numbers."""
    if label.isascii() and label.isdigit():
        return (0, int(label), len(label), label)
    return (1, 0, 0, label)


def require_numbers(labels: Iterable[str], where: str) -> None:
    """Refuse labels that are not jersey numbers, as the digits head reads only those."""
    others = sorted({label for label in labels if not is_legal(label)}, key=label_sort_key)
    if others:
        raise JerseyInputError(
            f"--model.head digits reads the numbers 0-99 and 00, and {where} has other labels: {others[:10]}. "
            "Relabel or remove them, use --data.illegible true for illegible crops, or use --model.head classes."
        )


_LEGAL = frozenset(LEGAL_NUMBERS)
