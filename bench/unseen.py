"""Unseen-number benchmark: can a head read jersey numbers that train never showed it?

    python bench/unseen.py                      # about 20 minutes on a 2-core CPU

Holds out a random share of the 101 legal numbers from train, trains the classes head and the digits head with
the real `jersey-cls fit` on the rest, then reads a test split of fresh crops of all 101 numbers with
`jersey-cls predict` and reports top-1 on seen and on held-out numbers. Nothing about the held-out numbers
reaches training or checkpoint selection: train/ and valid/ hold seen numbers only; test/ is read once, at the end.
All crops come from the synthetic engine (jersey_cls/data/synthetic.py), with its default look.
"""

import argparse
import csv
import json
import random
import subprocess
import sys
from pathlib import Path

from jersey_cls.data.synthetic import Look, render_set
from jersey_cls.numbers import LEGAL_NUMBERS, digits

REPO = Path(__file__).resolve().parents[1]
BASE = str(REPO / "configs" / "base.yaml")


def held_out_numbers(share: float, seed: int) -> list[str]:
    """A random ``share`` of the legal numbers, keeping only those whose tens (or "none") and units digit each
    still appear, in that place, in some train number: a digit never seen in its place cannot be read."""
    rng = random.Random(seed)
    held = set(rng.sample(LEGAL_NUMBERS, round(share * len(LEGAL_NUMBERS))))
    seen = [n for n in LEGAL_NUMBERS if n not in held]
    tens_seen, units_seen = {digits(n)[0] for n in seen}, {digits(n)[1] for n in seen}
    return [n for n in LEGAL_NUMBERS if n in held and digits(n)[0] in tens_seen and digits(n)[1] in units_seen]


def render_data(root: Path, held: list[str], args) -> None:
    seen = [n for n in LEGAL_NUMBERS if n not in held]
    look = Look(size=args.crop_size)
    plan = {"train": (seen, args.train_per_number), "valid": (seen, args.val_per_number),
            "test": (LEGAL_NUMBERS, args.test_per_number)}  # fmt: skip
    for seed, (split, (numbers, count)) in enumerate(plan.items(), start=100):
        if not (root / split / "annotations.jsonl").exists():
            render_set(root / split, dict.fromkeys(numbers, count), look, seed)


def jersey_cls(*args: str, log: Path) -> None:
    command = ["jersey-cls", *args, "--trainer.enable_progress_bar", "false"]
    print("  $", " ".join(command), flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        if subprocess.run(command, stdout=f, stderr=subprocess.STDOUT).returncode != 0:
            sys.exit(f"bench: the command above failed; its output is in {log}")


def train_and_read(head: str, data: Path, out: Path, args) -> list[dict]:
    run = out / head
    common = ["--config", BASE, "--trainer.default_root_dir", str(run), "--data.image_size", str(args.image_size)]
    if not (run / "export" / "labels.json").exists():  # rerunning the bench reuses a finished fit
        jersey_cls("fit", *common, "--data.data_root", str(data), "--model.head", head,
                   "--model.backbone", args.backbone, "--trainer.max_epochs", str(args.epochs),
                   "--ckpt_path", "last", log=run / "bench.log")  # fmt: skip
    best = max((run / "checkpoints").glob("best-*.ckpt"), key=lambda p: float(p.stem.rsplit("acc=", 1)[1]))
    test = ["--data.predict_path", str(data / "test")]
    jersey_cls("predict", *common, "--ckpt_path", str(best), *test, "--predictions.path", str(run / "test.csv"),
               log=run / "bench.log")  # fmt: skip
    with open(run / "test.csv", newline="") as f:
        return list(csv.DictReader(f))


def top1(rows: list[dict], numbers: set[str]) -> float:
    picked = [row for row in rows if row["label"] in numbers]
    return sum(row["pred_label"] == row["label"] for row in picked) / max(1, len(picked))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-unseen"), help="data and runs go here")
    parser.add_argument("--holdout", type=float, default=0.2, help="share of the 101 numbers held out of train")
    parser.add_argument("--seed", type=int, default=0, help="which numbers are held out")
    parser.add_argument("--train-per-number", type=int, default=40)
    parser.add_argument("--val-per-number", type=int, default=8)
    parser.add_argument("--test-per-number", type=int, default=20)
    parser.add_argument("--crop-size", type=int, default=96)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()

    held = held_out_numbers(args.holdout, args.seed)
    seen = set(LEGAL_NUMBERS) - set(held)
    print(f"held out of train ({len(held)} numbers): {' '.join(held)}", flush=True)
    data = args.out / "data"
    render_data(data, held, args)
    results = {}
    for head in ("classes", "digits"):
        rows = train_and_read(head, data, args.out, args)
        per_number = {number: top1(rows, {number}) for number in held}
        results[head] = {"seen": top1(rows, seen), "unseen": top1(rows, set(held)), "per_unseen_number": per_number}
    record = {"held_out": held, "args": vars(args) | {"out": str(args.out)}, "top1": results}
    (args.out / "unseen.json").write_text(json.dumps(record, indent=2))
    print(f"\n{'head':<8} {'seen numbers':>13} {'unseen numbers':>15}   test top-1, {args.test_per_number} crops each")
    for head, r in results.items():
        print(f"{head:<8} {r['seen']:>13.1%} {r['unseen']:>15.1%}")
    per_number = results["digits"]["per_unseen_number"]
    print("digits head, per unseen number:", ", ".join(f"{n} {a:.0%}" for n, a in per_number.items()))
    print(
        f"unseen-number top-1: classes-head {results['classes']['unseen']:.1%}, "
        f"digits-head {results['digits']['unseen']:.1%}"
    )


if __name__ == "__main__":
    sys.exit(main())
