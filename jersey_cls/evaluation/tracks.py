"""One answer per player track: the crops of a track read together.

The rule: each number's evidence is the sum, over the track's crops, of the probability each gives it: how many
frames show that number, by the model's own confidence. The answer is the number with the most evidence. With an
"illegible" class, a track whose answer has less evidence than the model's track threshold is illegible (-1); the
threshold is the one that reads the most validation tracks right, fitted while training (``fit_threshold``) and
saved with the model. A crop that shows nothing gives its probability to illegible and adds little to any number,
so no crop has to be judged legible first."""

import math

import numpy as np

from jersey_cls.model.bags import DEFAULT_TRACK_THRESHOLD
from jersey_cls.numbers import ILLEGIBLE

ABSTAIN = "?"


class Tracks:
    def __init__(self, class_names: list[str]) -> None:
        self.class_names = class_names
        self.illegible = class_names.index(ILLEGIBLE) if ILLEGIBLE in class_names else None
        self.numbers = [i for i in range(len(class_names)) if i != self.illegible]
        self.evidence: dict[str, np.ndarray] = {}  # summed probabilities of every class
        self.total: dict[str, int] = {}
        self.legible: dict[str, int] = {}  # crops whose likeliest class is a number
        # Per track and class: the highest probability any of its crops gave the class, and that crop.
        self.best_prob: dict[str, np.ndarray] = {}
        self.best_crop: dict[str, np.ndarray] = {}

    def add(self, track: str, probabilities: np.ndarray, path: str = "") -> None:
        self.total[track] = self.total.get(track, 0) + 1
        self.legible[track] = self.legible.get(track, 0) + int(probabilities.argmax() != self.illegible)
        best = self.best_prob.setdefault(track, np.full(len(self.class_names), -1.0))
        crops = self.best_crop.setdefault(track, np.full(len(self.class_names), "", dtype=object))
        better = probabilities > best
        best[better], crops[better] = probabilities[better], path
        self.evidence[track] = self.evidence.get(track, 0.0) + probabilities.astype(np.float64)

    def crop_reading(self, track: str, answer: str) -> str:
        """The crop of ``track`` that gave ``answer`` the highest probability."""
        return self.best_crop[track][self.class_names.index(answer)]

    def strongest(self, track: str) -> tuple[str, float]:
        """The number with the most evidence in ``track``, and its evidence."""
        numbers = self.evidence[track][self.numbers]
        best = int(numbers.argmax())
        return self.class_names[self.numbers[best]], float(numbers[best])

    def truth_share(self, track: str, truth: str) -> float:
        """How surely ``track`` reads as ``truth``: for a number, its share of the track's number evidence; for
        illegible, the crops' mean probability of it."""
        evidence = self.evidence[track]
        if truth == ILLEGIBLE and self.illegible is not None:
            return float(evidence[self.illegible] / self.total[track])
        if truth not in self.class_names:
            return 0.0
        return float(evidence[self.class_names.index(truth)] / max(1e-12, float(evidence[self.numbers].sum())))

    def answers(self, threshold: float = DEFAULT_TRACK_THRESHOLD, min_confidence: float = 0.0) -> list[dict]:
        """A row per track: its answer; the answer's evidence (frames' worth); its confidence (for a number, the
        share of the track's number evidence that is the answer's; for illegible, the crops' mean probability of
        it); the crops read as legible, and all crops read."""
        rows = []
        for track, evidence in self.evidence.items():
            number, strength = self.strongest(track)
            if self.illegible is not None and strength < threshold:
                answer, confidence = ILLEGIBLE, evidence[self.illegible] / self.total[track]
            else:
                answer, confidence = number, strength / max(1e-12, float(evidence[self.numbers].sum()))
            rows.append({"track": track, "answer": answer if confidence >= min_confidence else ABSTAIN,
                         "evidence": round(strength, 4),
                         "confidence": round(float(confidence), 6) if math.isfinite(confidence) else 0.0,
                         "crops_used": self.legible[track], "crops_total": self.total[track]})  # fmt: skip
        return rows


def fit_threshold(tracks: Tracks, truths: dict[str, str]) -> float:
    """The track threshold that answers the most of ``truths``' tracks right ({track: its true label}): among the
    thresholds that do, the middle (geometric) of the widest range, so that a new track's evidence sits as far as
    it can from where the answer flips."""
    if tracks.illegible is None:
        return DEFAULT_TRACK_THRESHOLD
    strengths, right, illegible = [], [], []
    for track, truth in truths.items():
        number, strength = tracks.strongest(track)
        strengths.append(max(strength, 1e-6))
        right.append(number == truth)
        illegible.append(truth == ILLEGIBLE)
    order = np.argsort(strengths)
    strengths = np.array(strengths)[order]
    right, illegible = np.array(right)[order], np.array(illegible)[order]
    # Threshold between strengths[k - 1] and strengths[k]: the k weakest are illegible, the rest their number.
    reads = [illegible[:k].sum() + right[k:].sum() for k in range(len(strengths) + 1)]
    best = max(reads)
    edges = np.concatenate([[strengths[0] / 4], strengths, [strengths[-1] * 4]])
    ranges, start = [], None  # runs of best thresholds: (low, high)
    for k in range(len(reads) + 1):
        if k < len(reads) and reads[k] == best:
            start = k if start is None else start
        elif start is not None:
            ranges.append((edges[start], edges[k]))
            start = None
    low, high = max(ranges, key=lambda r: math.log(r[1] / r[0]))
    return float(math.sqrt(low * high))


def soccernet_submission(rows: list[dict], every_track: list[str]) -> tuple[dict[str, int], dict[str, list[str]]]:
    """SoccerNet's submission, {player id: number}, one integer for each of ``every_track`` (-1 for illegible,
    an abstention, or a track with no readable crop), and what the format could not carry: {"00": tracks
    written as 0, "not a number": tracks written as -1}."""
    answers = {row["track"]: row["answer"] for row in rows}
    submission, lost = {}, {"00": [], "not a number": []}
    for track in every_track:
        answer = answers.get(track, ILLEGIBLE)
        if answer in (ILLEGIBLE, ABSTAIN):
            submission[track] = -1
        elif answer.isdigit():
            submission[track] = int(answer)
            if answer != str(int(answer)):
                lost["00"].append(track)
        else:
            submission[track] = -1
            lost["not a number"].append(track)
    return submission, lost
