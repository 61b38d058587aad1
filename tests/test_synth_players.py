import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from jersey_cls.cli.synth import main as synth
from jersey_cls.data.datamodule import JerseyDataModule
from jersey_cls.numbers import ILLEGIBLE
from jersey_cls.synth.render import BLOCK_FONTS, block_font
from jersey_cls.synth.tracklets import RECORD


def render(out: Path, *extra: str) -> dict:
    synth(["players", "--out", str(out), "--tracklets", "24", "--test", "6", "--frames", "[10, 30]",
           "--workers", "2", *extra])  # fmt: skip
    return json.loads((out / RECORD).read_text())


def test_rendered_tracklets_hide_the_number_as_asked_and_pass_the_doctor_as_soccernet(tmp_path):
    record = render(tmp_path / "set", "--labels", "tracklets", "--shown", "[0.15, 0.4]")
    assert len(record) == 30 and Image.open(tmp_path / "set" / "contact_sheet.png").width > 0
    legible = [t["shown"] for t in record.values() if t["number"] is not None]
    assert legible and all(any(shown) for shown in legible)  # a legible tracklet shows its number at least once
    assert all(not any(t["shown"]) for t in record.values() if t["number"] is None)  # a -1 tracklet never does
    hidden = sum(len(shown) - sum(shown) for shown in legible) / sum(len(shown) for shown in legible)
    assert hidden >= 0.6, hidden
    for folder, tracklet in record.items():  # every frame the record names is on disk, and no other
        frames = sorted(p.name for p in (tmp_path / "set" / folder).iterdir())
        assert frames == [f"{i:04d}.jpg" for i in range(len(tracklet["shown"]))]
        assert Image.open(tmp_path / "set" / folder / frames[0]).height > Image.open(tmp_path / "set" / folder /
                                                                                      frames[0]).width  # fmt: skip

    # Read as any SoccerNet download; the doctor finds nothing but the numbers test holds and train lacks (which
    # the digits head reads).
    data = JerseyDataModule(data_root=str(tmp_path / "set"), illegible=True, num_workers=0)
    data.setup("fit")
    assert all("label absent from train" in kind for kind in data.data_report), data.data_report
    assert data.splits["train"].layout == "soccernet" and data.tracklets and data.labels_per_track
    truth = json.loads((tmp_path / "set" / "train" / "train_gt.json").read_text())
    expected = {t: -1 if record[f"train/images/{t}"]["number"] is None else int(record[f"train/images/{t}"]["number"])
                for t in truth}  # fmt: skip
    assert truth == expected


def test_frame_labels_say_what_each_frame_shows(tmp_path):
    record = render(tmp_path / "set", "--labels", "frames", "--shown", "[0.4, 0.8]", "--test", "0")
    rows = [json.loads(line) for line in (tmp_path / "set" / "train" / "annotations.jsonl").read_text().splitlines()]
    assert len(rows) == sum(len(t["shown"]) for t in record.values())
    for row in rows:
        tracklet = record[f"train/frames/{row['track_id']}"]
        frame = int(Path(row["image"]).stem)
        assert row["suffix"] == (tracklet["number"] if tracklet["shown"][frame] else "-1")
    data = JerseyDataModule(data_root=str(tmp_path / "set"), illegible=True, num_workers=0, frames_per_track=None)
    data.setup("fit")
    assert all("label absent from train" in kind for kind in data.data_report), data.data_report
    assert data.tracklets and not data.labels_per_track  # frames keep their own labels: nothing to relabel
    shown = sum(sum(t["shown"]) for path, t in record.items())
    learned = sum(label != ILLEGIBLE for split in ("train", "val") for _, label in data.splits[split].samples)
    assert learned == shown


def test_the_same_seed_renders_the_same_set_whatever_the_workers_and_readable_by_all(tmp_path):
    first = render(tmp_path / "a", "--test", "0")
    again = render(tmp_path / "b", "--test", "0", "--workers", "1")
    assert first == again
    frame = "train/frames/3/0005.jpg"
    assert (tmp_path / "a" / frame).read_bytes() == (tmp_path / "b" / frame).read_bytes()
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o777 & ~umask  # not tempfile's private 0700


@pytest.mark.parametrize("font", BLOCK_FONTS)
def test_block_fonts_ship_with_their_licence_and_draw_every_digit(font):
    path = Path(block_font(font))
    licence = path.with_name(path.name.replace("-Regular.ttf", "-OFL.txt")).read_text()
    assert "SIL Open Font License, Version 1.1" in licence and "Copyright" in licence
    face = ImageFont.truetype(str(path), 40)
    glyphs = set()
    for digit in "0123456789":
        drawn = Image.new("L", (60, 60))
        ImageDraw.Draw(drawn).text((10, 5), digit, font=face, fill=255)
        assert np.asarray(drawn).sum() > 0, (font, digit)  # ink, not an empty box
        glyphs.add(drawn.tobytes())
    assert len(glyphs) == 10  # ten different shapes: no fallback glyph drawn for all


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shown", "[0.5, 1.5]"], "--shown [0.5, 1.5]"),
        (["--frames", "[9, 3]"], "--frames [9, 3]"),
        (["--tracklets", "0"], "--tracklets 0"),
        (["--illegible_share", "1"], "--illegible_share 1"),
        (["--workers", "0"], "--workers 0"),
        (["--out", "."], "already exists and is not an empty folder"),
    ],
    ids=["shown", "frames", "tracklets", "illegible", "workers", "out-not-empty"],
)
def test_bad_players_input_is_a_clear_error(args, message, capsys, tmp_path):
    (tmp_path / "keep.txt").write_text("user file")
    with pytest.raises(SystemExit) as stop:
        synth(["players", "--out", "new", *args])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "user file" and not (tmp_path / "new").exists()
