"""DatasetSummary: what the run is trained and judged on, printed and saved at fit start."""

import json
from pathlib import Path

import lightning.pytorch as pl
from rich.console import Console
from rich.table import Table

from jersey_cls.data.doctor import format_report
from jersey_cls.data.summary import summarize
from jersey_cls.numbers import ILLEGIBLE


def count_tracks(split) -> dict[str, int]:
    """Tracklets of a split with a number (on any frame) and illegible ones (-1 on every frame), and their
    frames."""
    legible: dict[str, bool] = {}
    for path, label in split.samples:
        if path in split.tracks:
            track = split.tracks[path]
            legible[track] = legible.get(track, False) or label != ILLEGIBLE
    illegible = sum(not shown for shown in legible.values())
    frames = sum(path in split.tracks for path, _ in split.samples)
    return {
        "tracklets": len(legible),
        "with a number": len(legible) - illegible,
        "illegible": illegible,
        "frames": frames,
    }


class DatasetSummary(pl.Callback):
    """At fit start, print per-split and per-class counts and the data doctor's findings; save both as JSON
    (``<run>/dataset_summary.json``, ``<run>/data_report.json``)."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        data = trainer.datamodule
        if not trainer.is_global_zero or "train" not in getattr(data, "splits", {}):
            return
        summary = summarize(data.splits, data.class_names, data.data_root)
        hp = data.hparams
        if data.held_out:
            summary["val_held_out"] = {"share": hp.val_share, "seed": hp.val_seed, "tracks": data.held_out}
        tracklets = {name: count_tracks(split) for name, split in data.splits.items() if split.tracks}
        if tracklets:
            summary["tracklets"] = tracklets
        run = Path(trainer.default_root_dir)
        run.mkdir(parents=True, exist_ok=True)
        (run / "dataset_summary.json").write_text(json.dumps(summary, indent=2))
        report = getattr(trainer.datamodule, "data_report", {})
        (run / "data_report.json").write_text(json.dumps(report, indent=2))
        console = Console()
        console.print(self._table(summary, console.width))
        if report:
            console.print(f"data doctor (skipped, details in {run / 'data_report.json'}):\n{format_report(report)}")
        if data.crop_aspect is not None and data.input_shape[0] != data.input_shape[1]:
            height, width = data.input_shape
            console.print(
                f"input: {height}x{width} px (height x width): train's crops are {data.crop_aspect:.2f} times as tall "
                f"as wide (median), so the model reads them in that shape, with the pixels of a "
                f"{hp.image_size}x{hp.image_size} square (--data.keep_aspect true)"
            )
        for name, counts in tracklets.items():
            how = ""
            if name == "train" and data.bags:
                how = (f"; learned as bags of {hp.bag_size} frames of one tracklet, a frame showing its number or "
                       f"nothing, {hp.frames_per_track or 'the mean length in'} frames of each tracklet an epoch, "
                       f"drawn afresh (--data.track_labels {hp.track_labels})")  # fmt: skip
            elif name == "train" and data.tracklets:
                own = "every frame takes its tracklet's label" if data.labels_per_track else "each frame has its label"
                how = (
                    f"; {own}, {hp.frames_per_track or 'the mean length in'} frames of each tracklet an epoch, "
                    f"drawn afresh (--data.track_labels {hp.track_labels})"
                )
            console.print(
                f"{name}: {counts['tracklets']} tracklets ({counts['with a number']} with a number, "
                f"{counts['illegible']} illegible), {counts['frames']} frames{how}"
            )
        if data.held_out:
            tracks = len(data.held_out) + len(set(data.splits["train"].tracks.values()))
            console.print(
                f"val: the data has no val split, so {len(data.held_out)} of train's {tracks} player tracks are held "
                f"out, whole (--data.val_share {hp.val_share}, --data.val_seed {hp.val_seed}); "
                f"their ids are in {run / 'dataset_summary.json'}"
            )

    def _table(self, summary: dict, width: int) -> Table:
        splits = list(summary["images"])
        # Classes wrap into side-by-side groups of (label, count per split), as many as the terminal fits.
        groups = max(1, width // (8 * (1 + len(splits)) + 1))
        images = ", ".join(f"{name} {count}" for name, count in summary["images"].items())
        caption = [f"imbalance (train, largest/smallest class): {summary['imbalance_ratio']:.1f}x"]
        for name, missing in summary["missing_from"].items():
            if missing:
                caption.append(f"missing from {name}: {' '.join(missing)}")
        for name, extra in summary["not_in_train"].items():
            if extra:
                caption.append(f"in {name} but not train (the classes head cannot score them): {' '.join(extra)}")
        table = Table(
            title=f"dataset: {summary['classes']} classes; images: {images}",
            caption="\n".join(caption),
            caption_justify="left",
        )
        for _ in range(groups):
            table.add_column("label", justify="right", style="bold")
            for name in splits:
                table.add_column(name, justify="right")
        labels = list(summary["per_class"].items())
        rows = -(-len(labels) // groups)
        for r in range(rows):
            cells = []
            for c in range(groups):
                index = c * rows + r
                if index < len(labels):
                    label, counts = labels[index]
                    cells += [label] + [str(counts[name]) for name in splits]
                else:
                    cells += [""] * (1 + len(splits))
            table.add_row(*cells)
        return table
