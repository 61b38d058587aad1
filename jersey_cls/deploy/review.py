"""What to label next: the crops (or tracks) the model is least sure of, as a Roboflow JSONL split whose labels
are the model's guesses, so a person corrects instead of typing.

The rule: least sure = the lowest probability of the model's likeliest answer (for a track, the track answer's
confidence), ties broken by path. A track is shown by the crop that gave its answer the highest probability."""

import json
import shutil
from pathlib import Path

from jersey_cls.numbers import ILLEGIBLE

PROMPT = "Read the number."  # Roboflow's JSONL "prefix"; jersey-cls reads "image" and "suffix"


def least_sure(rows: list[dict], key: str, n: int) -> list[dict]:
    return sorted(rows, key=lambda row: (float(row[key]), str(row.get("path", row.get("track")))))[:n]


def write_review(folder: Path, items: list[tuple[str, str, float, dict]]) -> Path:
    """``items``: (image path, the model's guess, its probability, other keys) in review order. Copies each image
    into ``folder`` (or ``folder``-2, -3, ... rather than touch one a person may be correcting) and writes
    ``annotations.jsonl`` there; an "illegible" guess is an empty label."""
    stem, n = folder.name, 2
    while folder.exists():
        folder, n = folder.with_name(f"{stem}-{n}"), n + 1
    folder.mkdir(parents=True)
    lines = []
    for rank, (path, guess, probability, fields) in enumerate(items, start=1):
        name = f"{rank:04d}_{Path(path).name}"  # SoccerNet names every track's frames alike
        shutil.copyfile(path, folder / name)
        row = {"image": name, "prefix": PROMPT, "suffix": "" if guess == ILLEGIBLE else guess}
        lines.append(json.dumps(row | {"confidence": round(probability, 6), "source": path} | fields))
    annotations = folder / "annotations.jsonl"
    annotations.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return annotations


def crops_to_review(predictions: list[dict], n: int) -> list[tuple[str, str, float, dict]]:
    """The ``n`` least-sure readable crops of predict's rows (a guess is the likeliest label, even where predict
    abstained)."""
    readable = [row for row in predictions if not row.get("error")]
    chosen = least_sure(readable, "top1_prob", n)
    return [(row["path"], row["top1_label"], float(row["top1_prob"]), {}) for row in chosen]


def tracks_to_review(tracks: list[dict], crop_reading, n: int) -> list[tuple[str, str, float, dict]]:
    """The ``n`` least-sure tracks of predict's track answers, each as ``crop_reading(track, answer)``."""
    return [(crop_reading(row["track"], row["answer"]), row["answer"], float(row["confidence"]),
             {"track_id": row["track"]}) for row in least_sure(tracks, "confidence", n)]  # fmt: skip
