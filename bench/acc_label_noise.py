"""The label audit against planted label noise, on real pixels, side by side in one run.

    python bench/acc_label_noise.py                    # 5% and 15% noise; about 25 minutes on a 2-core CPU
    python bench/acc_label_noise.py --noise 0.05 --epochs 10
    python bench/acc_label_noise.py --seeds 3    # each fit with seeds 42, 43, 44: test top-1 is their mean
    python bench/acc_label_noise.py --reuse      # the same --out: keep its data, finished fits and audits

Data: scikit-learn's digit scans (bench/real_digits.py's digits10: 1,257 train / 270 valid / 270 test, 10
classes, here at 32 px). A share of train's and valid's labels is flipped to another digit, seeded; test keeps
its true labels. For each noise level:
    1. `jersey-cls fit` on the noisy labels (base.yaml's recipe);
    2. `jersey-cls audit --ckpt_path best` (train read by 4 cross-fitted models);
    3. precision and recall of the audit's suspects against the planted flips, in train and in valid, at the
       audit's own cut-off (every crop it lists);
    4. `jersey-cls fit` again without the train crops the audit flagged; test top-1 of both fits, from
       `jersey-cls predict` of each best checkpoint.
With --seeds, both fits of step 1 and 4 are repeated with other seeds (the audit reads the first seed's fit), so
a difference of a crop or two between the two is seen against how much one fit moves from seed to seed.
"""

import argparse
import hashlib
import json
import random
import shutil
import statistics
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


def seed_folder(run_dir: Path, seed: int) -> Path:
    """run_dir for base.yaml's seed (42), <run_dir>-seed<N> for the others."""
    return run_dir if seed == 42 else run_dir.with_name(f"{run_dir.name}-seed{seed}")


def seeded_fits(data: Path, run_dir: Path, seeds: range, epochs: int, *flags: str, reuse: bool) -> list[tuple]:
    """fit_predict once per seed, each into its seed_folder."""
    return [
        fit_predict(data, seed_folder(run_dir, seed), epochs, *flags, "--seed_everything", str(seed), reuse=reuse)
        for seed in seeds
    ]


def precision_recall(flagged: set[str], flipped: set[str]) -> tuple[float, float]:
    hits = len(flagged & flipped)
    return hits / max(1, len(flagged)), hits / max(1, len(flipped))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-label-noise"))
    parser.add_argument("--noise", type=float, nargs="+", default=[0.05, 0.15])
    parser.add_argument("--epochs", type=int, default=15, help="of every fit, and of each audit fold")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=1, help="seeds of both fits (42, 43, ...; 42 is base.yaml's)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep --out's data, finished fits and audits as they are (whatever --epochs and --folds)",
    )
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds: at least 1")
    args.out = args.out.resolve()  # the audit writes absolute paths
    if args.out.exists() and not args.reuse:
        shutil.rmtree(args.out)
    clean = args.out / "data" / "clean"
    if not clean.exists():
        write_digits10(clean, size=32, seed=0)
    size = ["--data.image_size", "32"]
    seeds = range(42, 42 + args.seeds)
    table = []
    for share in args.noise:
        tag = f"noise{share:g}"
        noisy = args.out / "data" / tag
        shutil.rmtree(noisy, ignore_errors=True)  # planted again, the same flips
        flipped = plant_noise(clean, noisy, share, seed=0)
        run_dir = args.out / tag / "noisy"
        before = seeded_fits(noisy, run_dir, seeds, args.epochs, *size, reuse=args.reuse)
        audited = run_dir / "audit" / "seconds.txt"
        if args.reuse and audited.exists():
            audit_seconds = float(audited.read_text())
        else:
            audit_seconds = jersey("audit", *run_flags(run_dir), "--ckpt_path", "best", "--data.data_root",
                                   str(noisy), "--folds", str(args.folds), "--fold_epochs", str(args.epochs),
                                   log=run_dir / "bench.log")  # fmt: skip
            audited.write_text(f"{audit_seconds:.1f}\n")
        suspects = read_csv(run_dir / "audit" / "suspect_labels.csv")
        flagged = {split: {row["path"] for row in suspects if row["split"] == split} for split in ("train", "val")}
        truth = {split: {path for path in flipped if f"/{folder}/" in path}
                 for split, folder in (("train", "train"), ("val", "valid"))}  # fmt: skip
        cleaned = args.out / "data" / f"{tag}-cleaned"
        shutil.rmtree(cleaned, ignore_errors=True)
        removed = without(noisy, cleaned, flagged["train"])
        # A kept fit without flagged crops stands only if it left out the crops this audit flagged.
        stamp = hashlib.sha256("\n".join(sorted(flagged["train"])).encode()).hexdigest()
        for seed in seeds:
            folder = seed_folder(args.out / tag / "cleaned", seed)
            if not (folder / "flagged.sha256").is_file() or (folder / "flagged.sha256").read_text() != stamp:
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
                (folder / "flagged.sha256").write_text(stamp)
        after = seeded_fits(cleaned, args.out / tag / "cleaned", seeds, args.epochs, *size, reuse=args.reuse)
        row = {"noise": share, "seeds": list(seeds), "fit_s": round(before[0][1]), "audit_s": round(audit_seconds),
               "test_top1_noisy": [top1(rows) for rows, _, _ in before],
               "test_top1_cleaned": [top1(rows) for rows, _, _ in after], "train_removed": removed}  # fmt: skip
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
        noisy, cleaned = (row[f"test_top1_{fit}"] for fit in ("noisy", "cleaned"))
        print(f"| {row['noise']:.0%} | {accuracies(noisy)} | {accuracies(cleaned)} | {row['train_removed']} | "
              f"{row['fit_s']} | {row['audit_s']} |")  # fmt: skip


def accuracies(values: list[float]) -> str:
    """One fit's accuracy, or each seed's and their mean."""
    each = ", ".join(f"{value:.1%}" for value in values)
    return each if len(values) == 1 else f"{each}: mean {statistics.mean(values):.2%}"


if __name__ == "__main__":
    main()
