"""SoccerNet's jersey task in miniature: tracklet folders in; crop accuracy, track accuracy and the submission out.

    python bench/soccernet.py                     # about 45 minutes on a 2-core CPU

Data, rendered once by the synthetic engine into <out>/data in SoccerNet's layout (<split>/images/<player id>/,
<split>/<split>_gt.json): train, test and challenge (whose ground truth is kept apart, in <out>/challenge_gt.json,
to score its submission). Tracklets of 30 to 300 frames; 20% of them never show their number (-1); a legible
tracklet shows it on a random 20-45% of its frames, and on the others the player is turned, the number hidden by
an arm, or too small to read. Numbers 0 to 99. <out>/frames_shown.json records which frames show their number.

Contenders, one after the other in one invocation, on the same frames (--frames per train tracklet):
    naive      every frame takes its tracklet's number (-1: illegible):
               `jersey-cls fit --data.illegible true --data.frames_per_track F`
    refined    a second fit in which the train frames that the naive model reads as illegible are illegible:
               `jersey-cls predict` of the naive model over train/, then `fit ... --data.frame_labels <its CSV>`
Each is read on test with predict's track rule (its tracks file and submission) and with a majority vote of the
frames read as legible. Then the refined model reads test with 4 to all frames per tracklet: track accuracy and
seconds per tracklet.
"""

import argparse
import json
import random
from multiprocessing import Pool
from pathlib import Path

from common import BASE, jersey, majority, read_csv

from jersey_cls.numbers import ILLEGIBLE
from jersey_cls.synth.render import Look, render_crop, render_illegible

LOOK = Look(size=64)


def render_track(job: tuple) -> list[bool]:
    """Render one tracklet's frames into ``folder``; returns, per frame, whether it shows the number."""
    folder, number, frames, shown_share, seed = job
    rng = random.Random(seed)
    shown = set(rng.sample(range(frames), round(shown_share * frames))) if number != -1 else set()
    folder.mkdir(parents=True, exist_ok=True)
    for frame in range(frames):
        frame_rng = random.Random(f"{seed}-{frame}")
        visible = str(number) if number != -1 else str(rng.randrange(100))
        crop = render_crop(visible, frame_rng, LOOK) if frame in shown else render_illegible(visible, frame_rng, LOOK)
        crop.save(folder / f"{frame:04d}.jpg", quality=90)
    return [frame in shown for frame in range(frames)]


def build(out: Path, tracks: dict[str, int], seed: int) -> None:
    data = out / "data"
    if (out / "frames_shown.json").exists():
        return
    rng = random.Random(seed)
    jobs, truth = [], {}
    for split, count in tracks.items():
        truth[split] = {}
        for player in range(count):
            number = -1 if rng.random() < 0.2 else rng.randrange(100)
            truth[split][str(player)] = number
            folder = data / split / "images" / str(player)
            jobs.append((folder, number, rng.randint(30, 300), rng.uniform(0.2, 0.45), f"{seed}-{split}-{player}"))
    with Pool(2) as pool:
        shown = pool.map(render_track, jobs, chunksize=4)
    for split, players in truth.items():
        gt = out / "challenge_gt.json" if split == "challenge" else data / split / f"{split}_gt.json"
        gt.write_text(json.dumps(players))
    (out / "frames_shown.json").write_text(
        json.dumps({str(job[0]): flags for job, flags in zip(jobs, shown, strict=True)})
    )


def score(submission: dict[str, int], truth: dict[str, int]) -> float:
    """SoccerNet's track accuracy: the share of players whose number is exactly right, -1 included."""
    return sum(submission.get(player) == number for player, number in truth.items()) / len(truth)


def majority_number(crops: list[dict]) -> int:
    answer = majority(crop["pred_label"] for crop in crops)
    return -1 if answer is None else int(answer)


def read_test(log: Path, out: Path, run: Path, name: str, frames: int | None, split: str = "test") -> dict:
    """Predict ``split`` with ``run``'s best checkpoint reading ``frames`` per tracklet (None: all)."""
    data = out / "data" / split
    truth = json.loads((out / "challenge_gt.json" if split == "challenge" else data / f"{split}_gt.json").read_text())
    path = run / "predictions" / f"{name}.csv"
    thin = ["--data.frames_per_track", str(frames) if frames else "null"]  # null: every frame
    seconds = jersey("predict", "--ckpt_path", "best", "--trainer.default_root_dir", str(run), "--data.predict_path",
                     str(data), "--predictions.path", str(path), *thin,
                     "--predictions.top_k", "200", log=log)  # fmt: skip  # every class's probability, for other rules
    crops = read_csv(path)
    submission = json.loads(path.with_name(f"{name}_submission.json").read_text())
    by_track: dict[str, list[dict]] = {}
    for crop in crops:
        by_track.setdefault(Path(crop["path"]).parent.name, []).append(crop)
    return {
        "track accuracy": score(submission, truth),
        "track accuracy, majority vote": score({t: majority_number(c) for t, c in by_track.items()}, truth),
        "crops read": len(crops),
        "seconds": seconds,
        "tracks": len(truth),
    }


def crop_accuracy(crops: list[dict], shown: dict[str, bool]) -> float:
    """A frame's truth is its number where it shows it, else illegible."""
    right = 0
    for crop in crops:
        label = crop["label"] if shown[crop["path"]] and crop["label"] not in ("", "-1") else ILLEGIBLE
        right += crop["pred_label"] == label
    return right / len(crops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-soccernet"))
    parser.add_argument("--tracks", type=int, nargs=3, default=[240, 120, 60], metavar=("TRAIN", "TEST", "CHALLENGE"))
    parser.add_argument("--frames", type=int, default=24, help="frames read per train tracklet")
    parser.add_argument("--test-frames", type=int, default=32, help="frames read per test tracklet by both contenders")
    parser.add_argument("--curve", type=int, nargs="*", default=[4, 8, 16, 32, 64, 0], help="0: every frame")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = args.out.resolve()
    build(out, dict(zip(("train", "test", "challenge"), args.tracks, strict=True)), args.seed)
    shown = {}
    for folder, flags in json.loads((out / "frames_shown.json").read_text()).items():
        shown.update({str(Path(folder) / f"{frame:04d}.jpg"): flag for frame, flag in enumerate(flags)})
    data = out / "data"
    flags = ["--config", BASE, "--data.data_root", str(data), "--data.illegible", "true", "--model.head", "digits",
              "--data.frames_per_track", str(args.frames), "--trainer.max_epochs", str(args.epochs),
              "--trainer.enable_progress_bar", "false", "--onnx.enabled", "false"]  # fmt: skip
    results: dict[str, dict] = {}
    log = out / "bench.log"
    naive, refined = out / "naive", out / "refined"
    fits = {"naive": [], "refined": ["--data.frame_labels", str(naive / "predictions" / "train.csv")]}
    for name, extra in fits.items():
        run = out / name
        if not (run / "fit_seconds.txt").exists():  # a rerun of the bench reuses finished fits
            if name == "refined":  # the naive model's reading of the train frames it trained on
                jersey("predict", "--ckpt_path", "best", "--trainer.default_root_dir", str(naive),
                       "--data.predict_path", str(data / "train"), "--data.frames_per_track", str(args.frames),
                       "--predictions.path", str(naive / "predictions" / "train.csv"), log=log)  # fmt: skip
            seconds = jersey("fit", *flags, "--trainer.default_root_dir", str(run), *extra, log=log)
            (run / "fit_seconds.txt").write_text(f"{seconds:.0f}\n")
        result = read_test(log, out, run, "test", args.test_frames)
        result["crop accuracy"] = crop_accuracy(read_csv(run / "predictions" / "test.csv"), shown)
        result["challenge track accuracy"] = read_test(log, out, run, "challenge", args.test_frames,
                                                       "challenge")["track accuracy"]  # fmt: skip
        result["fit seconds"] = float((run / "fit_seconds.txt").read_text())
        results[name] = result
    relabelled = read_csv(naive / "predictions" / "train.csv")
    unread = [crop for crop in relabelled if crop["pred_label"] == ILLEGIBLE and crop["label"] not in ("", "-1")]
    results["refined"]["frames made illegible"] = len(unread)
    results["refined"]["of them, not showing the number"] = sum(not shown[c["path"]] for c in unread) / max(
        1, len(unread)
    )
    legible_hidden = [c for c in relabelled if c["label"] not in ("", "-1") and not shown[c["path"]]]
    results["refined"]["hidden frames of legible tracklets found"] = sum(
        c["pred_label"] == ILLEGIBLE for c in legible_hidden
    ) / max(1, len(legible_hidden))
    start_up = jersey("predict", "--ckpt_path", "best", "--trainer.default_root_dir", str(refined),
                      "--data.predict_path", str(data / "test" / "images" / "0" / "0000.jpg"),
                      "--predictions.path", str(refined / "predictions" / "start-up.csv"), log=log)  # fmt: skip
    curve = {}
    for frames in args.curve:
        point = read_test(log, out, refined, f"curve-{frames}", frames or None)
        point["seconds per tracklet"] = (point["seconds"] - start_up) / point["tracks"]
        curve[frames or "all"] = point
    (out / "results.json").write_text(json.dumps({"contenders": results, "curve": curve}, indent=2))
    print(f"\n{args.tracks} tracklets (train, test, challenge); {args.frames} frames per train tracklet, "
          f"{args.test_frames} per test tracklet; {args.epochs} epochs")  # fmt: skip
    keys = list(results["naive"])
    print(f"{'':<45}" + "".join(f"{name:>12}" for name in results))
    for key in keys + [k for k in results["refined"] if k not in keys]:
        cells = [results[name].get(key) for name in results]
        print(f"{key:<45}" + "".join(f"{c:>12.3f}" if isinstance(c, float) else f"{c!s:>12}" for c in cells))
    print(f"\nrefined model, frames read per test tracklet (start-up {start_up:.1f} s taken off):")
    for frames, point in curve.items():
        print(f"  {frames!s:>4}: track accuracy {point['track accuracy']:.3f}, "
              f"{point['seconds per tracklet']:.3f} s per tracklet, {point['crops read']} crops")  # fmt: skip


if __name__ == "__main__":
    main()
