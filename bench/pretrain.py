"""Pretraining on rendered player tracklets: does it lift a fit on tracklets the engine did not draw?

The fine-tuning set is bench/tracklet_sets.py's whole players with scanned handwritten digits (the engine's fonts
never drew them), train / test / challenge. The pretraining set is `jersey-cls-synth players` (the engine's fonts
and block faces, each frame labelled with what it shows), fitted with base.yaml and PRETRAIN's flags. Then, at 30,
100 and all of the train tracklets, side by side with the same fine-tuning epochs:

    scratch      jersey-cls fit --data.data_root SUBSET --data.illegible true
    pretrained   the same with --model.init_from <pretrain run>/checkpoints/last.ckpt

each read by its own `jersey-cls predict` over test and challenge (16 frames a tracklet); the challenge's ground
truth is used only to score. A rerun with the same --out reuses what is done.

    python bench/pretrain.py            # about 100 minutes on a 2-core CPU
"""

import argparse
import json
import os
import random
import time
from pathlib import Path

from common import BASE
from common import run as run_command
from tracklet_sets import SPLITS, build
from tracklets import fit, predict, scores

# Every rendered frame carries its own label (-1 where it hides the number): nothing to relabel.
PRETRAIN = ("--data.illegible", "true", "--relabel.at", "null", "--trainer.max_epochs", "8")


def subset(data: Path, root: Path, count: int | None, seed: int) -> Path:
    """``data`` with ``count`` of its train tracklets (hard links: no copy, nothing outside the root)."""
    if count is None:
        return data
    if (root / "train" / "train_gt.json").exists():
        return root
    truth = json.loads((data / "train" / "train_gt.json").read_text())
    keep = sorted(random.Random(seed).sample(sorted(truth), count))
    for track in keep:
        (root / "train" / "images" / track).mkdir(parents=True)
        for frame in (data / "train" / "images" / track).iterdir():
            os.link(frame, root / "train" / "images" / track / frame.name)
    (root / "train" / "train_gt.json").write_text(json.dumps({t: truth[t] for t in keep}))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, nargs=3, default=[300, 100, 100], metavar=("TRAIN", "TEST", "CHALLENGE"))
    parser.add_argument("--seed", type=int, default=2, help="the fine-tuning set's seed")
    parser.add_argument("--rendered", type=int, default=1200, help="pretraining tracklets")
    parser.add_argument("--pretrain-epochs", type=int, default=None, help="default: 8")
    parser.add_argument("--epochs", type=int, default=None, help="every fine-tuning fit's; default: base.yaml's")
    parser.add_argument("--sizes", nargs="+", default=["30", "100", "all"], help="train tracklets per pair of fits")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-pretrain"))
    args = parser.parse_args()
    out = args.out.resolve()
    set_root = build(out / "set", "players", "scans", dict(zip(SPLITS, args.tracks, strict=True)), args.seed)
    data = set_root / "data"
    unseen = set(json.loads((set_root / "unseen.json").read_text()))
    truths = {"test": json.loads((data / "test" / "test_gt.json").read_text()),
              "challenge": json.loads((set_root / "challenge_gt.json").read_text())}  # fmt: skip

    rendered = out / "rendered"
    started = time.perf_counter()
    if not rendered.exists():
        run_command(["jersey-cls-synth", "players", "--out", str(rendered), "--tracklets", str(args.rendered),
                     "--test", "0", "--frames", "[8, 24]", "--shown", "[0.4, 0.8]"])  # fmt: skip
    render_seconds = time.perf_counter() - started
    pretrain = out / "pretrain"
    if not (pretrain / "fit_seconds.txt").exists():
        epochs = ["--trainer.max_epochs", str(args.pretrain_epochs)] if args.pretrain_epochs else []
        seconds = run_command(["jersey-cls", "fit", "--config", BASE, *PRETRAIN,
                               "--data.data_root", str(rendered), "--trainer.default_root_dir", str(pretrain),
                               "--trainer.enable_progress_bar", "false", "--onnx.enabled", "false", *epochs],
                              log=pretrain / "bench.log")  # fmt: skip
        (pretrain / "fit_seconds.txt").write_text(f"{seconds:.1f}\n")
    weights = pretrain / "checkpoints" / "last.ckpt"

    results, seconds = {}, {}
    for size in args.sizes:
        count = None if size == "all" else int(size)
        train = subset(data, out / f"subset-{size}", count, args.seed)
        for start, flags in (("scratch", []), ("pretrained", ["--model.init_from", str(weights)])):
            name = f"{start}-{size}"
            seconds[name] = fit(out, name, train, args.epochs, *flags)
            submissions = {split: predict(out / name, data / split, split) for split in truths}
            results[name] = {split: scores(submissions[split], truths[split], unseen) for split in truths}
    (out / "results.json").write_text(json.dumps({"results": results, "fit seconds": seconds}, indent=2))
    pretrain_seconds = float((pretrain / "fit_seconds.txt").read_text())
    print(
        f"\nwhole players, scanned digits, seed {args.seed}: {args.tracks} (train, test, challenge); pretrained "
        f"on {args.rendered} rendered tracklets ({render_seconds:.0f} s to render, {pretrain_seconds:.0f} s to "
        "fit)"
    )
    print(f"{'':<22}" + "".join(f"{name:>16}" for name in results))
    for split in truths:
        for group in ("all", "seen", "unseen", "-1"):
            print(f"{split + ' ' + group:<22}" + "".join(f"{results[n][split][group]:>16.3f}" for n in results))
    print(f"{'fit seconds':<22}" + "".join(f"{seconds[name]:>16.0f}" for name in results))


if __name__ == "__main__":
    main()
