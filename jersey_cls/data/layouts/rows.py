"""What every layout reader gives: the rows of a split, each an image with its label, its other keys, or what
is wrong with it. Training (layouts.read_split_dir) and predict (layouts.read_predict_inputs) read the same rows
and differ only in what they keep."""

from dataclasses import dataclass, field

from jersey_cls.numbers import canonical_label

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
TRACK_KEY = "track_id"  # the key of a row's player track, in JSONL rows and for SoccerNet's tracklet folders


@dataclass
class Row:
    """One image of a split: ``label`` is None where the number cannot be read (an empty label, SoccerNet's -1)
    or is not known (a challenge split); ``fields`` are the row's other keys (its track_id); ``problem`` is
    (kind, detail) when the row names no usable image, as the data doctor reports it."""

    path: str = ""
    label: str | None = None
    fields: dict = field(default_factory=dict)
    source: str = ""  # where the row is written, for reports: a JSONL file and line, or the image itself
    problem: tuple[str, str] | None = None
    unreadable: str = "empty label"  # how a row without a label is counted

    def __post_init__(self) -> None:
        if self.label is not None:
            self.label = canonical_label(self.label) or None
