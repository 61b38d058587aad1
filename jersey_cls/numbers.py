"""Jersey numbers as labels: the legal ones, their digits, and the order labels are listed in."""

from collections.abc import Iterable

from jersey_cls.messages import JerseyInputError

# 0-99 and 00: the 101 numbers a basketball jersey can carry. "0" and "00" are different numbers.
LEGAL_NUMBERS = ["0", "00", *(str(n) for n in range(1, 100))]
NO_TENS = 10  # the tens "digit" of a one-digit number
ILLEGIBLE = "illegible"  # the class of crops whose number cannot be read, when a run learns them


def is_legal(label: str) -> bool:
    return label in _LEGAL


def digits(label: str) -> tuple[int, int]:
    """(tens, units) of a legal number; tens is NO_TENS for a one-digit number, 0 for "00"."""
    return (NO_TENS, int(label)) if len(label) == 1 else (int(label[0]), int(label[1]))


def label_sort_key(label: str) -> tuple:
    """Natural numeric order that keeps "0" and "00" distinct: 0, 00, 1, 2, ..., 10, ..., then non-numbers."""
    if label.isdigit():
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
