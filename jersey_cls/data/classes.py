"""The class list a run learns, derived from train's labels, and what illegible crops become."""

import warnings
from collections import Counter
from pathlib import Path

from jersey_cls.data.layouts import UNREADABLE, Split
from jersey_cls.messages import JerseyInputError, JerseyWarning
from jersey_cls.numbers import ILLEGIBLE, LEGAL_NUMBERS, canonical_label, is_legal, label_sort_key, require_numbers


def class_list(counts: Counter, all_numbers: bool | None, illegible: bool, where: str) -> list[str]:
    """Train's labels in numeric order (``all_numbers``: the 101 legal numbers; None: so when every label is
    one), then "illegible" when the run learns it."""
    labels = [label for label in counts if label != ILLEGIBLE]
    if len(labels) < 2:
        raise JerseyInputError(
            f"{where}: train has {len(labels)} label ({', '.join(labels)}); a classifier needs at least two. "
            "Add crops of other numbers, or check that the labels were read from the right key or folder."
        )
    if all_numbers is None:
        all_numbers = all(is_legal(label) for label in labels)
    if all_numbers:
        require_numbers(labels, f"{where}: train")
        labels = list(LEGAL_NUMBERS)
    return sorted(labels, key=label_sort_key) + ([ILLEGIBLE] if illegible else [])


def class_weights(counts: Counter, class_names: list[str]) -> list[float]:
    """Inverse frequency in train, scaled to mean 1 so the loss scale matches the unweighted loss."""
    total = sum(counts.values())
    return [total / (len(class_names) * max(1, counts[name])) for name in class_names]


def with_illegible(split: Split, illegible_labels: tuple[str, ...]) -> Split:
    """Empty-label rows and illegible labels become the "illegible" class; a row that names the number of an image
    also listed with an empty label wins."""
    labels = {canonical_label(label) for label in illegible_labels} | {ILLEGIBLE}  # read as the rows' labels are
    split.samples = [(path, ILLEGIBLE if label in labels else label) for path, label in split.samples]
    labelled = {path for path, _ in split.samples}
    split.samples += [(path, ILLEGIBLE) for path in dict.fromkeys(split.unlabelled) if path not in labelled]
    for reason in UNREADABLE:
        split.skipped.pop(reason, None)
    return split


def indexed(split: Split, class_names: list[str], warn: bool) -> list[tuple[str, int]]:
    """Samples with class indices; labels the class list lacks cannot be scored and are left out (``warn``: say so,
    when no data doctor has reported them)."""
    index = {name: i for i, name in enumerate(class_names)}
    unknown = Counter(label for _, label in split.samples if label not in index)
    if unknown and warn:
        warnings.warn(
            f"{Path(split.root)}: {sum(unknown.values())} images have labels absent from train and are left out: "
            f"{sorted(unknown, key=label_sort_key)}",
            JerseyWarning,
            stacklevel=3,
        )
    return [(path, index[label]) for path, label in split.samples if label in index]
