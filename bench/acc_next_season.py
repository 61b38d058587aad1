"""Next season: does starting from last season's model beat starting from scratch, on old and new numbers?

    python bench/acc_next_season.py              # about 15 minutes on a 2-core CPU

Real pixels: jersey numbers composed from scikit-learn's handwritten digit scans (bench/real_digits.py).
Season A trains on 60% of the 101 numbers, 30 crops each. Season B adds 20% more numbers with only 10 crops
each (and a fresh batch of the old ones), and trains twice for the same epochs: once with
`--model.init_from` A's best checkpoint, once from scratch. Both are read on a test split of fresh crops of
every season-B number with `jersey-cls predict`; the script reports top-1 on old and on new numbers.
"""

import argparse
import json
import random
from pathlib import Path

from common import best_checkpoint, fit, fit_predict, top1
from real_digits import compose, digit_scans, write_split

from jersey_cls.numbers import LEGAL_NUMBERS


def write_season(root: Path, numbers: dict[str, int], test_numbers: list[str], seed: int) -> None:
    """train/ with ``numbers[n]`` crops of each number, valid/ with 5, test/ with 10 of each test number."""
    if (root / "test" / "annotations.jsonl").exists():
        return
    pools = digit_scans(0)  # the same scan split every season: test scans are never trained on
    plan = {"train": numbers, "valid": dict.fromkeys(numbers, 5), "test": dict.fromkeys(test_numbers, 10)}
    for split, counts in plan.items():
        rng = random.Random(f"{seed}-{split}")
        crops = [(compose(n, pools[split], rng, 64), n) for n, count in counts.items() for _ in range(count)]
        write_split(root / split, crops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-next-season"))
    parser.add_argument("--epochs-a", type=int, default=15)
    parser.add_argument("--epochs-b", type=int, default=5, help="the same for both season-B runs")
    parser.add_argument("--head", default="classes", choices=["classes", "digits"])
    args = parser.parse_args()
    numbers = random.Random(0).sample(LEGAL_NUMBERS, len(LEGAL_NUMBERS))
    old, new = numbers[: round(0.6 * len(numbers))], numbers[round(0.6 * len(numbers)) : round(0.8 * len(numbers))]
    write_season(args.out / "data" / "a", dict.fromkeys(old, 30), old, seed=1)
    write_season(args.out / "data" / "b", {**dict.fromkeys(old, 30), **dict.fromkeys(new, 10)}, old + new, seed=2)
    head = ["--model.head", args.head]
    fit(args.out / "data" / "a", args.out / "a", args.epochs_a, *head, reuse=True)  # a rerun keeps season A
    best_a = str(best_checkpoint(args.out / "a")[0])
    results = {}
    for name, flags in (("from season A", ["--model.init_from", best_a]), ("from scratch", [])):
        rows, *seconds = fit_predict(args.out / "data" / "b", args.out / name.replace(" ", "_"), args.epochs_b,
                                     *head, *flags)  # fmt: skip
        results[name] = {"old": top1(rows, set(old)), "new": top1(rows, set(new)), "seconds": sum(seconds)}
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\nseason B, {args.epochs_b} epochs, {args.head} head: {len(old)} old numbers (30 crops each), "
          f"{len(new)} new (10 each)")  # fmt: skip
    print(f"{'start':<15} {'old numbers':>12} {'new numbers':>12} {'fit+predict s':>14}")
    for name, r in results.items():
        print(f"{name:<15} {r['old']:>12.1%} {r['new']:>12.1%} {r['seconds']:>14.0f}")


if __name__ == "__main__":
    main()
