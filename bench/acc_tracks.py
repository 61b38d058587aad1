"""In the arena: illegible crops, calibrated confidence, one answer per player track.

    python bench/acc_tracks.py                   # about 6 minutes on a 2-core CPU

Rendered with the synthetic engine: 24 numbers; train and valid hold readable crops of each and, as 40% of
the crops, illegible ones (the back turned, the number hidden by an arm, or too small to read) labelled with
an empty suffix. test/ holds player tracks of 8-20 crops, each crop illegible with probability 0.4, with a
track_id per row. `jersey-cls fit --data.illegible true` learns the illegible class; `jersey-cls predict
--predictions.tracks track_id` reads test/ crop by crop and track by track. Reported: crop accuracy, track
accuracy by the log-probability rule (predict's tracks file) and by majority vote of the legible crops,
expected calibration error before and after the temperature on held-out test crops, accuracy at 90% coverage.
"""

import argparse
import json
import random
from pathlib import Path

from common import fit_predict, majority, read_csv, read_split, top1

from jersey_cls.numbers import ILLEGIBLE, LEGAL_NUMBERS
from jersey_cls.synth.render import Look, render_crop, render_illegible
from jersey_cls.synth.sets import PREFIX


def write(folder: Path, rows: list[tuple[str, bool, dict]], seed: str) -> None:
    """Render (number, legible, extra JSONL keys) rows into ``folder`` with annotations.jsonl."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (number, legible, extra) in enumerate(rows):
        rng = random.Random(f"{seed}-{i}")
        crop = render_crop(number, rng, Look()) if legible else render_illegible(number, rng, Look())
        crop.save(folder / f"{i:05d}.jpg", quality=95)
        lines.append(json.dumps({"image": f"{i:05d}.jpg", "prefix": PREFIX, "suffix": number if legible else "",
                                 **extra}))  # fmt: skip
    (folder / "annotations.jsonl").write_text("\n".join(lines) + "\n")


def build(root: Path, args) -> list[str]:
    numbers = random.Random(args.seed).sample(LEGAL_NUMBERS, args.numbers)
    if (root / "test" / "annotations.jsonl").exists():
        return numbers
    rng = random.Random(args.seed)
    for split, per_number in (("train", 40), ("valid", 10)):
        legible = [(n, True, {}) for n in numbers for _ in range(per_number)]
        illegible = [(rng.choice(numbers), False, {}) for _ in range(round(len(legible) * 0.4 / 0.6))]
        write(root / split, legible + illegible, f"{split}")
    tracks = []
    for track in range(args.tracks):
        number = rng.choice(numbers)
        tracks += [(number, rng.random() >= args.illegible_share, {"track_id": f"t{track:03d}"})
                   for _ in range(rng.randint(8, 20))]  # fmt: skip
    write(root / "test", tracks, "test")
    return numbers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-tracks"))
    parser.add_argument("--numbers", type=int, default=24)
    parser.add_argument("--tracks", type=int, default=60)
    parser.add_argument("--illegible-share", type=float, default=0.4, help="per test crop")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data, run = args.out / "data", args.out / "run"
    build(data, args)
    crops, _, _ = fit_predict(data, run, args.epochs, "--data.illegible", "true", reuse=True,
                              predict_flags=["--predictions.tracks", "track_id"])  # fmt: skip
    rows = read_split(data / "test")
    truth = {r["track_id"]: r["suffix"] for r in rows if r["suffix"]}  # a track's number, from its legible crops
    track_of = {r["path"]: r["track_id"] for r in rows}
    for crop in crops:
        crop["label"] = crop["label"] or ILLEGIBLE
    by_logprob = {r["track"]: r["answer"] for r in read_csv(run / "test_tracks.csv")}
    by_track: dict[str, list[str]] = {}
    for crop in crops:
        by_track.setdefault(track_of[crop["path"]], []).append(crop["pred_label"])
    voted = {track: majority(labels) or ILLEGIBLE for track, labels in by_track.items()}
    legible = [c for c in crops if c["label"] != ILLEGIBLE]
    confident = sorted(crops, key=lambda c: -float(c["pred_prob"]))[: round(0.9 * len(crops))]
    calibration = json.loads((run / "calibration.json").read_text())
    results = {
        "crops": len(crops),
        "illegible share": 1 - len(legible) / len(crops),
        "crop accuracy (number or illegible)": top1(crops),
        "crop accuracy, legible crops": top1(legible),
        "track accuracy, log-probability rule": sum(by_logprob[t] == truth[t] for t in truth) / len(truth),
        "track accuracy, majority vote": sum(voted[t] == truth[t] for t in truth) / len(truth),
        "test ECE before temperature": calibration["ece"]["test before"],
        "test ECE after temperature": calibration["ece"]["test after"],
        "temperature": calibration["temperature"],
        "crop accuracy at 90% coverage": top1(confident),
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\n{len(truth)} tracks of 8-20 crops, {args.numbers} numbers, {args.epochs} epochs")
    for name, value in results.items():
        print(f"  {name:<40} {value:.3f}" if isinstance(value, float) else f"  {name:<40} {value}")


if __name__ == "__main__":
    main()
