"""Accuracy on real pixels: the default recipe against a plain PyTorch loop and a classical baseline, side by side.

    python bench/real_pixels.py                        # about 35 minutes on a 2-core CPU
    python bench/real_pixels.py --sets digits10 --epochs 15

Data (bench/real_digits.py; scikit-learn's scans of handwritten digits, never jersey-cls's own renderer):
    numbers   101 jersey numbers composed from real digit scans, 30 train crops per seen number; 20 numbers held
              out of train and valid. test has 10 fresh crops of every number.
    digits10  the 8x8 scans themselves, upscaled: 10 classes, 1,257 train / 270 valid / 270 test.
    embedded  the embedded synthetic set, so the newcomer's default does not regress.

Contenders, run one after the other in one invocation, each timed by its own wall clock:
    jersey-cls          `jersey-cls fit --config configs/base.yaml --data.data_root D` (classes head), then
                        `jersey-cls predict` of its best checkpoint on test/
    jersey-cls digits   the same with --model.head digits (numbers only: it reads held-out numbers)
    plain loop          torchvision ResNet18 from scratch, no augmentation, AdamW 1e-3, batch 32, the same epochs
    svc                 scikit-learn SVC on 100 PCA components of grey 32x32 pixels
"""

import argparse
import csv
import json
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_digits import held_out_numbers, write_digits10, write_numbers  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BASE = str(REPO / "configs" / "base.yaml")


def read_split(folder: Path) -> list[tuple[Path, str]]:
    rows = [json.loads(line) for line in (folder / "annotations.jsonl").read_text().splitlines()]
    return [(folder / row["image"], row["suffix"]) for row in rows]


def build(name: str, out: Path) -> Path:
    root = out / "data" / name
    if (root / "test" / "annotations.jsonl").exists():
        return root
    if name == "numbers":
        write_numbers(root, held_out_numbers(0.2, 0), {"train": 30, "valid": 5, "test": 10}, size=64, seed=0)
    elif name == "digits10":
        write_digits10(root, size=64, seed=0)
    else:
        from jersey_cls.data.synthetic import embedded_dataset

        return embedded_dataset()
    return root


def jersey_cls(data: Path, run: Path, epochs: int, *flags: str) -> tuple[list[dict], float]:
    """Fit with the default recipe, then predict test/ with the best checkpoint: (predictions, fit seconds)."""
    common = ["--config", BASE, "--trainer.default_root_dir", str(run), "--trainer.enable_progress_bar", "false"]
    log = open(run.parent / f"{run.name}.log", "w")  # noqa: SIM115 - closed below
    started = time.perf_counter()
    fit = ["jersey-cls", "fit", *common, "--data.data_root", str(data), "--trainer.max_epochs", str(epochs), *flags]
    if subprocess.run(fit, stdout=log, stderr=subprocess.STDOUT).returncode:
        sys.exit(f"bench: {' '.join(fit)} failed; see {log.name}")
    seconds = time.perf_counter() - started
    predict = ["jersey-cls", "predict", *common, "--ckpt_path", "best", "--data.predict_path", str(data / "test")]
    predict += ["--predictions.path", str(run / "test.csv")]
    if subprocess.run(predict, stdout=log, stderr=subprocess.STDOUT).returncode:
        sys.exit(f"bench: {' '.join(predict)} failed; see {log.name}")
    log.close()
    with open(run / "test.csv", newline="") as f:
        return [{"label": r["label"], "pred": r["pred_label"]} for r in csv.DictReader(f)], seconds


def plain_loop(data: Path, epochs: int) -> tuple[list[dict], float]:
    """What a user writes by hand: a Dataset and DataLoader (2 workers), torchvision ResNet18 from scratch, no
    augmentation, AdamW 1e-3, batch 32, cross-entropy; the final weights are tested."""
    import torch
    import torch.nn.functional as F
    import torchvision
    from torchvision.transforms import v2

    torch.manual_seed(0)
    started = time.perf_counter()
    train = read_split(data / "train")
    classes = sorted({label for _, label in train})
    to_input = v2.Compose([v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True),
                           v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])  # fmt: skip

    class Crops(torch.utils.data.Dataset):
        def __init__(self, samples):
            self.samples = samples

        def __len__(self):
            return len(self.samples)

        def __getitem__(self, i):
            path, label = self.samples[i]
            return to_input(Image.open(path).convert("RGB")), classes.index(label) if label in classes else -1

    loader = torch.utils.data.DataLoader(Crops(train), batch_size=32, shuffle=True, num_workers=2)
    model = torchvision.models.resnet18(num_classes=len(classes))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(epochs):
        for images, targets in loader:
            loss = F.cross_entropy(model(images), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - started
    test = read_split(data / "test")
    model.eval()
    predicted = []
    with torch.no_grad():
        for images, _ in torch.utils.data.DataLoader(Crops(test), batch_size=256, num_workers=2):
            predicted += model(images).argmax(1).tolist()
    return [{"label": label, "pred": classes[i]} for (_, label), i in zip(test, predicted, strict=True)], seconds


def svc(data: Path) -> tuple[list[dict], float]:
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC

    def grey(samples):
        return np.stack([np.asarray(Image.open(p).convert("L").resize((32, 32))).ravel() / 255 for p, _ in samples])

    started = time.perf_counter()
    train, test = read_split(data / "train"), read_split(data / "test")
    model = make_pipeline(PCA(100, random_state=0), SVC()).fit(grey(train), [label for _, label in train])
    seconds = time.perf_counter() - started
    return [{"label": label, "pred": pred} for (_, label), pred in zip(test, model.predict(grey(test)), strict=True)], (
        seconds
    )


def top1(rows: list[dict], labels: set[str]) -> float:
    picked = [row for row in rows if row["label"] in labels]
    return sum(row["pred"] == row["label"] for row in picked) / max(1, len(picked))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-real"), help="data, runs and results go here")
    parser.add_argument("--sets", nargs="+", default=["numbers", "digits10", "embedded"])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--contenders", nargs="+", default=None, choices=["jersey-cls", "jersey-cls digits",
                        "plain loop", "svc"], help="a subset, e.g. jersey-cls 'plain loop'")  # fmt: skip
    parser.add_argument("--flags", nargs=argparse.REMAINDER, default=[], help="extra flags for both jersey-cls fits")
    args = parser.parse_args()
    results = []
    for name in args.sets:
        data = build(name, args.out)
        seen = {label for _, label in read_split(data / "train")}
        everything = {label for _, label in read_split(data / "test")}
        run = args.out / name
        contenders = {"jersey-cls": partial(jersey_cls, data, run / "classes", args.epochs, *args.flags)}
        if name == "numbers":
            contenders["jersey-cls digits"] = partial(
                jersey_cls, data, run / "digits", args.epochs, "--model.head", "digits", *args.flags
            )
        if name != "embedded":
            contenders["plain loop"] = partial(plain_loop, data, args.epochs)
            contenders["svc"] = partial(svc, data)
        if args.contenders:
            contenders = {name: measure for name, measure in contenders.items() if name in args.contenders}
        for contender, measure in contenders.items():
            run.mkdir(parents=True, exist_ok=True)
            rows, seconds = measure()
            result = {"set": name, "contender": contender, "seen": top1(rows, seen), "seconds": seconds}
            if everything - seen:
                result["unseen"] = top1(rows, everything - seen)
            results.append(result)
            print(json.dumps(result), flush=True)
    name = "results-subset.json" if args.contenders else "results.json"
    (args.out / name).write_text(json.dumps(results, indent=2))
    print(f"\n{'set':<10} {'contender':<18} {'seen top-1':>10} {'unseen':>8} {'fit s':>7} {'x plain':>8}")
    for r in results:
        plain = next((p for p in results if p["set"] == r["set"] and p["contender"] == "plain loop"), None)
        ratio = f"{r['seconds'] / plain['seconds']:.2f}" if plain else "-"
        unseen = f"{r['unseen']:.1%}" if "unseen" in r else "-"
        print(f"{r['set']:<10} {r['contender']:<18} {r['seen']:>10.1%} {unseen:>8} {r['seconds']:>7.0f} {ratio:>8}")


if __name__ == "__main__":
    main()
