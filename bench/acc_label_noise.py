"""The label audit against planted label noise, on real pixels, side by side in one run.

    python bench/acc_label_noise.py                    # 5% and 15% noise; about 25 minutes on a 2-core CPU
    python bench/acc_label_noise.py --noise 0.05 --epochs 10
    python bench/acc_label_noise.py --reuse      # the same --out: keep its data and noisy fits, audit again

Data: scikit-learn's digit scans (bench/real_digits.py's digits10: 1,257 train / 270 valid / 270 test, 10
classes, here at 32 px). A share of train's and valid's labels is flipped to another digit, seeded; test keeps
its true labels. For each noise level:
    1. `jersey-cls fit` on the noisy labels (base.yaml's recipe);
    2. `jersey-cls audit --ckpt_path best` (train read by 4 cross-fitted models);
    3. precision and recall of the audit's suspects against the planted flips, in train and in valid, at the
       audit's own cut-off (every crop it lists);
    4. `jersey-cls fit` again without the train crops the audit flagged; test top-1 of both fits, from
       `jersey-cls predict` of each best checkpoint.
"""

import argparse
import json
import random
import shutil
from pathlib import Path

from common import fit_predict, jersey, read_csv, run_flags, top1
from real_digits import write_digits10


def plant_noise(clean: Path, noisy: Path, share: float, seed: int) -> set[str]:
    """A copy of ``clean`` with ``share`` of train's and valid's labels flipped to another digit; the paths of
    the flipped crops."""
    shutil.copytree(clean, noisy)
    flipped = set()
    for split in ("train", "valid"):
        jsonl = noisy / split / "annotations.jsonl"
        rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
        rng = random.Random(f"{seed}-{split}")
        for i in rng.sample(range(len(rows)), round(share * len(rows))):
            rows[i]["suffix"] = rng.choice([d for d in "0123456789" if d != rows[i]["suffix"]])
            flipped.add(str(noisy / split / rows[i]["image"]))
        jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return flipped


def without(noisy: Path, cleaned: Path, flagged: set[str]) -> int:
    """A copy of ``noisy`` whose train split leaves out the ``flagged`` crops; how many were left out."""
    shutil.copytree(noisy, cleaned)
    jsonl = cleaned / "train" / "annotations.jsonl"
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    kept = [row for row in rows if str(noisy / "train" / row["image"]) not in flagged]
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in kept))
    return len(rows) - len(kept)


def precision_recall(flagged: set[str], flipped: set[str]) -> tuple[float, float]:
    hits = len(flagged & flipped)
    return hits / max(1, len(flagged)), hits / max(1, len(flipped))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-label-noise"))
    parser.add_argument("--noise", type=float, nargs="+", default=[0.05, 0.15])
    parser.add_argument("--epochs", type=int, default=15, help="of every fit, and of each audit fold")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--reuse", action="store_true", help="keep --out's data and finished noisy fits")
    args = parser.parse_args()
    args.out = args.out.resolve()  # the audit writes absolute paths
    if args.out.exists() and not args.reuse:
        shutil.rmtree(args.out)
    clean = args.out / "data" / "clean"
    if not clean.exists():
        write_digits10(clean, size=32, seed=0)
    size = ["--data.image_size", "32"]
    table = []
    for share in args.noise:
        tag = f"noise{share:g}"
        noisy = args.out / "data" / tag
        shutil.rmtree(noisy, ignore_errors=True)  # planted again, the same flips
        flipped = plant_noise(clean, noisy, share, seed=0)
        run_dir = args.out / tag / "noisy"
        before, fit_seconds, _ = fit_predict(noisy, run_dir, args.epochs, *size, reuse=args.reuse)
        audit_seconds = jersey("audit", *run_flags(run_dir), "--ckpt_path", "best", "--data.data_root", str(noisy),
                               "--folds", str(args.folds), "--fold_epochs", str(args.epochs),
                               log=run_dir / "bench.log")  # fmt: skip
        suspects = read_csv(run_dir / "audit" / "suspect_labels.csv")
        flagged = {split: {row["path"] for row in suspects if row["split"] == split} for split in ("train", "val")}
        truth = {split: {path for path in flipped if f"/{folder}/" in path}
                 for split, folder in (("train", "train"), ("val", "valid"))}  # fmt: skip
        for stale in (args.out / "data" / f"{tag}-cleaned", args.out / tag / "cleaned"):
            shutil.rmtree(stale, ignore_errors=True)
        removed = without(noisy, args.out / "data" / f"{tag}-cleaned", flagged["train"])
        after, _, _ = fit_predict(args.out / "data" / f"{tag}-cleaned", args.out / tag / "cleaned", args.epochs, *size)
        row = {"noise": share, "fit_s": round(fit_seconds), "audit_s": round(audit_seconds),
               "test_top1_noisy": top1(before), "test_top1_cleaned": top1(after), "train_removed": removed}  # fmt: skip
        for split in ("train", "val"):
            precision, recall = precision_recall(flagged[split], truth[split])
            row |= {f"{split}_flipped": len(truth[split]), f"{split}_flagged": len(flagged[split]),
                    f"{split}_precision": precision, f"{split}_recall": recall}  # fmt: skip
        table.append(row)
        print(json.dumps(row), flush=True)
    (args.out / "results.json").write_text(json.dumps(table, indent=1) + "\n")
    print("\n| noise | split | flipped | flagged | precision | recall |\n|---|---|---|---|---|---|")
    for row in table:
        for split in ("train", "val"):
            print(f"| {row['noise']:.0%} | {split} | {row[f'{split}_flipped']} | {row[f'{split}_flagged']} | "
                  f"{row[f'{split}_precision']:.1%} | {row[f'{split}_recall']:.1%} |")  # fmt: skip
    print("\n| noise | test top-1, noisy train | without the flagged train crops | removed | fit s | audit s |")
    print("|---|---|---|---|---|---|")
    for row in table:
        print(f"| {row['noise']:.0%} | {row['test_top1_noisy']:.1%} | {row['test_top1_cleaned']:.1%} | "
              f"{row['train_removed']} | {row['fit_s']} | {row['audit_s']} |")  # fmt: skip


if __name__ == "__main__":
    main()
