"""Why whole players stay unread: can one fit from scratch learn their digits at all, even from clean labels?

The set is bench/tracklet_sets.py's whole players with handwritten digit scans (train split only: 300 tracklets,
the number shown on 15-40% of a legible tracklet's frames). Variants, each one `jersey-cls fit` with base.yaml
and --data.illegible true:

    tracklets        the thumbnails as they come, labelled per tracklet (SoccerNet's layout): the default fit
    torso            each thumbnail cut to its upper torso (12-55% of its height), where the number is: the
                     digits twice as large in the input, labelled per tracklet
    torso, frames    the same crops as JSONL, each frame labelled with what it shows (the renderer's record):
                     the labels an oracle would give; the first 90% of the tracklets train, the last 10% validate
    torso, frames, no augmentation   the same with --data.augment.strength 0

Printed: each fit's best val legible-crop accuracy (the share of val frames that show their number read right)
and its last train accuracy.

    python bench/players_probe.py          # about 45 minutes on a 2-core CPU
"""

import argparse
import csv
import json
from pathlib import Path

from common import fit
from PIL import Image
from tracklet_sets import SPLITS, build

TORSO = (0.12, 0.55)  # top and bottom of the cut, as shares of the thumbnail's height


def torso_copy(data: Path, out: Path) -> Path:
    """train of ``data`` (SoccerNet's layout), each frame cut to its upper torso."""
    if (out / "train" / "train_gt.json").exists():
        return out
    for frame in sorted((data / "train" / "images").rglob("*.jpg")):
        target = out / frame.relative_to(data)
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(frame) as image:
            top, bottom = (round(share * image.height) for share in TORSO)
            image.crop((0, top, image.width, bottom)).save(target, quality=95)
    (out / "train" / "train_gt.json").write_text((data / "train" / "train_gt.json").read_text())
    return out


def frame_labels(torso: Path, shown: dict, images: Path, out: Path) -> Path:
    """JSONL splits of the torso frames, each labelled by what it shows, with its track_id; a tenth of the
    tracklets validate."""
    if (out / "valid" / "annotations.jsonl").exists():
        return out
    truth = json.loads((torso / "train" / "train_gt.json").read_text())
    tracks = sorted(truth)
    val_tracks = max(1, len(tracks) // 10)
    for split, part in (("train", tracks[:-val_tracks]), ("valid", tracks[-val_tracks:])):
        rows = []
        for track in part:
            frames = sorted((torso / "train" / "images" / track).iterdir())
            for frame, visible in zip(frames, shown[str(images / track)], strict=True):
                (out / split / track).mkdir(parents=True, exist_ok=True)
                (out / split / track / frame.name).write_bytes(frame.read_bytes())
                label = str(truth[track]) if visible and truth[track] != -1 else ""
                rows.append(
                    {"image": f"{track}/{frame.name}", "prefix": "Read the number.", "suffix": label, "track_id": track}
                )
        (out / split / "annotations.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return out


def summary(run: Path) -> tuple[float, float]:
    """(best val/legible_acc, last train/acc_top1) from the fit's metrics.csv."""
    with open(sorted((run / "logs").glob("version_*/metrics.csv"))[0], newline="") as f:
        rows = list(csv.DictReader(f))
    legible = max(float(row["val/legible_acc"]) for row in rows if row.get("val/legible_acc"))
    train = [float(row["train/acc_top1"]) for row in rows if row.get("train/acc_top1")]
    return legible, train[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--tracklets", type=int, default=300, help="train tracklets")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-players-probe"))
    args = parser.parse_args()
    out = args.out.resolve()
    root = build(out / "set", "players", "scans", dict(zip(SPLITS, (args.tracklets, 1, 1), strict=True)), args.seed)
    data = root / "data"
    shown = json.loads((root / "frames_shown.json").read_text())
    torso = torso_copy(data, out / "torso")
    frames = frame_labels(torso, shown, data / "train" / "images", out / "torso-frames")
    variants = {
        "tracklets": (data, []),
        "torso": (torso, []),
        "torso, frames": (frames, []),
        "torso, frames, no augmentation": (frames, ["--data.augment.strength", "0"]),
    }
    results = {}
    for name, (variant, flags) in variants.items():
        run = out / name.replace(", ", "-").replace(" ", "-")
        fit(variant, run, args.epochs, "--data.illegible", "true", "--onnx.enabled", "false", *flags, reuse=True)
        results[name] = summary(run)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\nwhole players, scans, seed {args.seed}, {args.epochs} epochs from scratch")
    print(f"{'':<34}{'best val legible-crop acc':>28}{'last train acc':>18}")
    for name, (legible, train) in results.items():
        print(f"{name:<34}{legible:>28.3f}{train:>18.3f}")


if __name__ == "__main__":
    main()
