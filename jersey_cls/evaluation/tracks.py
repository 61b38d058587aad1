"""One answer per player track: the crops of a track read together.

The rule: the crops judged legible (their answer is not "illegible") vote with their log-probabilities, summed
over the track, which is the likeliest number if the crops are independent readings of it; a track with no
legible crop is "illegible". Its confidence is the summed evidence's softmax over the numbers."""

import math

import numpy as np

from jersey_cls.numbers import ILLEGIBLE

ABSTAIN = "?"


class Tracks:
    def __init__(self, class_names: list[str]) -> None:
        self.class_names = class_names
        self.illegible = class_names.index(ILLEGIBLE) if ILLEGIBLE in class_names else None
        self.evidence: dict[str, np.ndarray] = {}  # summed log-probabilities of the legible crops
        self.used: dict[str, int] = {}
        self.total: dict[str, int] = {}
        self.illegible_prob: dict[str, float] = {}
        # Per track and class: the highest probability any of its crops gave the class, and that crop.
        self.best_prob: dict[str, np.ndarray] = {}
        self.best_crop: dict[str, np.ndarray] = {}

    def add(self, track: str, probabilities: np.ndarray, path: str = "") -> None:
        self.total[track] = self.total.get(track, 0) + 1
        best = self.best_prob.setdefault(track, np.full(len(self.class_names), -1.0))
        crops = self.best_crop.setdefault(track, np.full(len(self.class_names), "", dtype=object))
        better = probabilities > best
        best[better], crops[better] = probabilities[better], path
        self.evidence.setdefault(track, np.zeros(len(self.class_names)))
        self.used.setdefault(track, 0)
        if self.illegible is not None:
            self.illegible_prob[track] = self.illegible_prob.get(track, 0.0) + float(probabilities[self.illegible])
            if probabilities.argmax() == self.illegible:
                return
        self.evidence[track] += np.log(np.clip(probabilities, 1e-12, 1.0))
        self.used[track] += 1

    def crop_reading(self, track: str, answer: str) -> str:
        """The crop of ``track`` that gave ``answer`` the highest probability."""
        return self.best_crop[track][self.class_names.index(answer)]

    def answers(self, min_confidence: float = 0.0) -> list[dict]:
        rows = []
        for track, evidence in self.evidence.items():
            if self.used[track] == 0:
                answer, confidence = ILLEGIBLE, self.illegible_prob.get(track, 0.0) / self.total[track]
            else:
                numbers = evidence if self.illegible is None else np.delete(evidence, self.illegible)
                names = [n for i, n in enumerate(self.class_names) if i != self.illegible]
                shifted = numbers - numbers.max()
                posterior = np.exp(shifted) / np.exp(shifted).sum()
                answer, confidence = names[int(posterior.argmax())], float(posterior.max())
            rows.append({"track": track, "answer": answer if confidence >= min_confidence else ABSTAIN,
                         "confidence": round(confidence, 6) if math.isfinite(confidence) else 0.0,
                         "crops_used": self.used[track], "crops_total": self.total[track]})  # fmt: skip
        return rows


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
