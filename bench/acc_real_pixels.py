"""Accuracy on real pixels: the default recipe against a plain PyTorch loop and a classical baseline, side by side.

    python bench/acc_real_pixels.py                        # about 35 minutes on a 2-core CPU
    python bench/acc_real_pixels.py --sets digits10 --epochs 15
    python bench/acc_real_pixels.py --sets synthetic --contenders jersey-cls "jersey-cls classes"
    python bench/acc_real_pixels.py --sets choose --contenders jersey-cls --tag aug0.25 \
        --flags --data.augment.strength 0.25

Data:
    numbers    101 jersey numbers composed from real digit scans (bench/real_digits.py; scikit-learn's scans of
               handwritten digits, never jersey-cls's own renderer), 30 train crops per seen number; 20% of the
               numbers held out of train and valid. test has 10 fresh crops of every number.
    choose     the same, from the first half of the scans only: the part recipe defaults are chosen on.
    confirm    the same, from the second half of the scans, with another 20% of the numbers held out: a part
               that plays no role in choosing, where the chosen recipe is confirmed.
    digits10   the 8x8 scans themselves, upscaled: 10 classes, 1,257 train / 270 valid / 270 test.
    embedded   the embedded synthetic set, so the newcomer's default does not regress.
    synthetic  (not run by default) the 101 numbers rendered by the synthetic engine at 96 px, 40 train and 8
               valid crops of each seen number, the same 20% held out; test has 20 fresh crops of every number.

Contenders, run one after the other in one invocation, each timed by its own wall clock:
    jersey-cls          `jersey-cls fit --config configs/base.yaml --data.data_root D` as shipped (--model.head
                        auto: the digits head on number sets), then `jersey-cls predict` of its best checkpoint
                        on test/
    jersey-cls classes  the same with --model.head classes, the default before auto
    plain loop          bench/baseline.py's loop with its PLAIN recipe: torchvision ResNet18 from scratch, no
                        augmentation, AdamW 1e-3, batch 32, the same epochs; the final weights are tested
    svc                 scikit-learn SVC on 100 PCA components of grey 32x32 pixels
Reported: test top-1 on the numbers train saw and on those held out of it.
"""

import argparse
import json
import time
from functools import partial
from pathlib import Path

import numpy as np
from baseline import PLAIN, Loop
from common import fit_predict, read_split, top1
from PIL import Image
from real_digits import held_out_numbers, write_digits10, write_numbers

from jersey_cls.numbers import LEGAL_NUMBERS
from jersey_cls.synth.render import Look
from jersey_cls.synth.sets import embedded_dataset, render_set


def build(name: str, out: Path) -> Path:
    root = out / "data" / name
    if name == "embedded":
        return embedded_dataset()
    if (root / "test" / "annotations.jsonl").exists():
        return root
    held = held_out_numbers(0.2, 1 if name == "confirm" else 0)
    if name in ("numbers", "choose", "confirm"):
        half = {"choose": 0, "confirm": 1}.get(name)
        write_numbers(root, held, {"train": 30, "valid": 5, "test": 10}, size=64, seed=0, half=half)
    elif name == "digits10":
        write_digits10(root, size=64, seed=0)
    else:
        seen = [n for n in LEGAL_NUMBERS if n not in held]
        plan = {"train": (seen, 40), "valid": (seen, 8), "test": (LEGAL_NUMBERS, 20)}
        for seed, (split, (numbers, count)) in enumerate(plan.items(), start=100):
            render_set(root / split, dict.fromkeys(numbers, count), Look(size=96), seed)
    return root


def jersey_cls(data: Path, run_dir: Path, epochs: int, *flags: str) -> tuple[list[dict], float]:
    """Fit with the default recipe, then predict test/ with the best checkpoint: (predictions, fit seconds)."""
    rows, seconds, _ = fit_predict(data, run_dir, epochs, *flags)
    return rows, seconds


def plain_loop(data: Path, epochs: int) -> tuple[list[dict], float]:
    """The hand-written loop at the PLAIN recipe: (predictions, seconds from reading train/ to the last step)."""
    started = time.perf_counter()
    train = read_split(data / "train")
    classes = sorted({row["suffix"] for row in train})
    loop = Loop(PLAIN, [(row["path"], classes.index(row["suffix"])) for row in train], len(classes))
    for _ in range(epochs):
        loop.train_epoch()
    seconds = time.perf_counter() - started
    test = read_split(data / "test")
    predicted = loop.predict([(row["path"], 0) for row in test])  # the targets go unread
    return [{"label": row["suffix"], "pred_label": classes[i]} for row, i in zip(test, predicted, strict=True)], (
        seconds
    )


def svc(data: Path) -> tuple[list[dict], float]:
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC

    def grey(rows):
        return np.stack([np.asarray(Image.open(r["path"]).convert("L").resize((32, 32))).ravel() / 255 for r in rows])

    started = time.perf_counter()
    train, test = read_split(data / "train"), read_split(data / "test")
    model = make_pipeline(PCA(100, random_state=0), SVC()).fit(grey(train), [row["suffix"] for row in train])
    seconds = time.perf_counter() - started
    predicted = model.predict(grey(test))
    return [{"label": row["suffix"], "pred_label": pred} for row, pred in zip(test, predicted, strict=True)], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-real"), help="data, runs and results go here")
    parser.add_argument("--sets", nargs="+", default=["numbers", "digits10", "embedded"],
                        choices=["numbers", "choose", "confirm", "digits10", "embedded", "synthetic"])  # fmt: skip
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--contenders", nargs="+", default=None, choices=["jersey-cls", "jersey-cls classes",
                        "plain loop", "svc"], help="a subset, e.g. jersey-cls 'plain loop'")  # fmt: skip
    parser.add_argument("--tag", default="", help="names the runs of these --flags apart from the default's")
    parser.add_argument("--flags", nargs=argparse.REMAINDER, default=[], help="extra flags for both jersey-cls fits")
    args = parser.parse_args()
    results = []
    for name in args.sets:
        data = build(name, args.out)
        seen = {row["suffix"] for row in read_split(data / "train")}
        unseen = {row["suffix"] for row in read_split(data / "test")} - seen
        run_dir = args.out / name
        tag = f"{args.tag}-" if args.tag else ""
        contenders = {
            "jersey-cls": partial(jersey_cls, data, run_dir / f"{tag}default", args.epochs, *args.flags),
            "jersey-cls classes": partial(
                jersey_cls, data, run_dir / f"{tag}classes", args.epochs, "--model.head", "classes", *args.flags
            ),
        }
        if name != "embedded":
            contenders["plain loop"] = partial(plain_loop, data, args.epochs)
            contenders["svc"] = partial(svc, data)
        if args.contenders:
            contenders = {name: measure for name, measure in contenders.items() if name in args.contenders}
        for contender, measure in contenders.items():
            run_dir.mkdir(parents=True, exist_ok=True)
            rows, seconds = measure()
            result = {"set": name, "contender": contender, "seen": top1(rows, seen), "seconds": seconds}
            if unseen:
                result["unseen"] = top1(rows, unseen)
            results.append(result)
            print(json.dumps(result), flush=True)
    name = f"results{'-' + args.tag if args.tag else ''}{'-subset' if args.contenders else ''}.json"
    (args.out / name).write_text(json.dumps(results, indent=2))
    print(f"\n{'set':<10} {'contender':<18} {'seen top-1':>10} {'unseen':>8} {'fit s':>7} {'x plain':>8}")
    for r in results:
        plain = next((p for p in results if p["set"] == r["set"] and p["contender"] == "plain loop"), None)
        ratio = f"{r['seconds'] / plain['seconds']:.2f}" if plain else "-"
        held = f"{r['unseen']:.1%}" if "unseen" in r else "-"
        print(f"{r['set']:<10} {r['contender']:<18} {r['seen']:>10.1%} {held:>8} {r['seconds']:>7.0f} {ratio:>8}")


if __name__ == "__main__":
    main()
