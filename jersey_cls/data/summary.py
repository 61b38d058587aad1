"""What a dataset holds: per-split and per-class counts, the imbalance, the classes each split lacks."""

from collections import Counter
from pathlib import Path

from jersey_cls.data.layouts import Split
from jersey_cls.numbers import label_sort_key


def summarize(splits: dict[str, Split], class_names: list[str], data_root: Path) -> dict:
    counts = {name: Counter(label for _, label in split.samples) for name, split in splits.items()}
    train = counts["train"]
    others = {name: c for name, c in counts.items() if name != "train"}
    return {
        "data_root": str(data_root),
        "layout": {name: split.layout for name, split in splits.items()},
        "images": {name: sum(c.values()) for name, c in counts.items()},
        "classes": len(class_names),
        "imbalance_ratio": max(train.values()) / min(train.values()),
        "missing_from": {name: [label for label in class_names if not c[label]] for name, c in others.items()},
        "not_in_train": {name: sorted(set(c) - set(train), key=label_sort_key) for name, c in others.items()},
        "skipped": {name: {k: len(v) for k, v in split.skipped.items()} for name, split in splits.items()},
        "per_class": {label: {name: c[label] for name, c in counts.items()} for label in class_names},
    }
