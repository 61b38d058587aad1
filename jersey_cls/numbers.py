"""Jersey numbers as labels: the legal ones, and their digits."""

# 0-99 and 00: the 101 numbers a basketball jersey can carry. "0" and "00" are different numbers.
LEGAL_NUMBERS = ["0", "00", *(str(n) for n in range(1, 100))]
NO_TENS = 10  # the tens "digit" of a one-digit number
ILLEGIBLE = "illegible"  # the class of crops whose number cannot be read, when a run learns them


def is_legal(label: str) -> bool:
    return label in _LEGAL


def digits(label: str) -> tuple[int, int]:
    """(tens, units) of a legal number; tens is NO_TENS for a one-digit number, 0 for "00"."""
    return (NO_TENS, int(label)) if len(label) == 1 else (int(label[0]), int(label[1]))


_LEGAL = frozenset(LEGAL_NUMBERS)
