import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime.quantization
import pytest

from jersey_cls.cli import main

from .conftest import eval_args, favour_first_class, fit_args

REPO = Path(__file__).resolve().parents[1]
EXPORTED = Path("runs/jersey/exports/last")


def read_csv(path: str) -> dict[str, dict]:
    with open(path, newline="") as f:
        return {row["path"]: row for row in csv.DictReader(f)}


def test_the_int8_export_is_checked_against_predict_and_predict_reads_either_file(trained, capsys):
    main(eval_args("export", trained, "--onnx.int8", "true"))
    printed = capsys.readouterr().out
    assert "model.int8.onnx" in printed and "crops a second" in printed
    graph = onnx.load(EXPORTED / "model.int8.onnx")
    assert sum(node.op_type == "DequantizeLinear" for node in graph.graph.node) >= 10  # really quantized
    assert [i.name for i in graph.graph.input] == ["images"] and graph.graph.input[0].type.tensor_type.elem_type == 2
    assert not list(EXPORTED.glob("*staging*")) and not list(EXPORTED.glob("*prepared*"))

    valid = str(trained / "valid")
    answers = {}
    for name, flags in (("torch", []), ("fp32", ["--onnx_file", str(EXPORTED / "model.onnx")]),
                        ("int8", ["--onnx_file", str(EXPORTED / "model.int8.onnx")])):  # fmt: skip
        main(eval_args("predict", trained, "--data.predict_path", valid, "--predictions.path", f"{name}.csv", *flags))
        answers[name] = read_csv(f"{name}.csv")
    paths = sorted(answers["torch"])
    assert len(paths) == 16
    label = {name: np.array([rows[p]["pred_label"] for p in paths]) for name, rows in answers.items()}
    prob = {name: np.array([float(rows[p]["pred_prob"]) for p in paths]) for name, rows in answers.items()}
    truth = np.array([answers["torch"][p]["label"] for p in paths])
    assert (label["fp32"] == label["torch"]).all() and np.abs(prob["fp32"] - prob["torch"]).max() < 1e-4
    # What the export says it measured, recomputed from predict's answers over the same val crops.
    record = json.loads((EXPORTED / "export.json").read_text())
    assert record["check_crops"] == 16
    assert record["agreement"] == pytest.approx((label["int8"] == label["torch"]).mean())
    assert record["int8_acc"] == pytest.approx((label["int8"] == truth).mean())
    assert record["fp32_acc"] == pytest.approx((label["torch"] == truth).mean())
    assert record["agreement"] >= 0.8
    # The example, with only onnxruntime and Pillow, answers what predict answers with the same file.
    example = [sys.executable, str(REPO / "examples" / "read_numbers.py"), str(EXPORTED / "model.int8.onnx"), *paths]
    done = subprocess.run(example, capture_output=True, text=True, check=True)
    printed = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()}
    assert printed == dict(zip(paths, label["int8"], strict=True))


def worse(model_input, model_output, reader, **kwargs):
    """A "quantization" that favours the first class."""
    favour_first_class(model_input, model_output, by=50.0)


def test_an_int8_model_that_reads_worse_is_refused_and_model_onnx_stands(trained, monkeypatch, capsys):
    main(eval_args("export", trained, "--onnx.int8", "true"))  # a good one first: it must not outlive the next
    assert (EXPORTED / "model.int8.onnx").is_file()
    monkeypatch.setattr(onnxruntime.quantization, "quantize_static", worse)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(eval_args("export", trained, "--onnx.int8", "true"))
    assert stop.value.code == 4
    out, error = capsys.readouterr()
    assert "points worse than fp32" in error and "--onnx.int8_max_drop 1.0" in error and "Traceback" not in error
    assert "model.onnx: " in out and "same top-1 on 16/16" in out  # the fp32 file's check is still reported
    assert (EXPORTED / "model.onnx").is_file() and (EXPORTED / "model.int8.rejected.onnx").is_file()
    assert not (EXPORTED / "model.int8.onnx").exists()  # neither the refused one nor the earlier weights' one
    record = json.loads((EXPORTED / "export.json").read_text())
    assert "points worse" in record["int8_refused"] and list(record["crops_per_second"]) == ["model.onnx"]


def test_at_the_end_of_fit_a_refused_int8_model_is_a_warning_and_the_card_says_so(trained, monkeypatch):
    monkeypatch.setattr(onnxruntime.quantization, "quantize_static", worse)
    with pytest.warns(UserWarning, match=r"skipping the ONNX export \(model.onnx is written\): .*points worse"):
        main(fit_args(trained, "--model.lr", "0.01", "--onnx.int8", "true", "--trainer.default_root_dir", "other",
                      epochs=2, onnx=True))  # fmt: skip
    card = Path("other/model_card.md").read_text()
    assert "| model.onnx | " in card and "| model.int8.onnx | refused: " in card
    assert Path("other/export/model.onnx").is_file() and not Path("other/export/model.int8.onnx").exists()


def test_int8_without_the_val_crops_is_refused_naming_the_calibration_flag(trained, capsys):
    shutil.rmtree(trained / "valid")
    with pytest.raises(SystemExit) as stop:
        main(eval_args("export", trained, "--onnx.int8", "true"))
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert "--onnx.calibration_crops" in error and "Traceback" not in error


def test_predict_refuses_an_onnx_file_of_another_model(trained, capsys):
    main(eval_args("export", trained))
    labels = json.loads((EXPORTED / "labels.json").read_text())
    (EXPORTED / "labels.json").write_text(json.dumps({**labels, "class_names": labels["class_names"][::-1]}))
    valid = str(trained / "valid")
    with pytest.raises(SystemExit) as stop:
        main(eval_args("predict", trained, "--data.predict_path", valid, "--onnx_file", str(EXPORTED / "model.onnx")))
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert "--onnx_file" in error and "labels.json" in error and "Traceback" not in error

    # A graph of another kind beside a labels.json that matches: float images in, 4 outputs
    (EXPORTED / "labels.json").write_text(json.dumps(labels))
    images = onnx.helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, ["batch", 3, 32, 32])
    out = onnx.helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, ["batch", 3, 32, 32])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["images"], ["probabilities"])], "g", [images],
                                   [out])  # fmt: skip
    onnx.save(onnx.helper.make_model(graph), EXPORTED / "foreign.onnx")
    with pytest.raises(SystemExit) as stop:
        main(eval_args("predict", trained, "--data.predict_path", valid, "--onnx_file", str(EXPORTED / "foreign.onnx")))
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert "--onnx_file" in error and "its graph takes" in error and "Traceback" not in error
    assert not list(Path("runs/jersey/predictions").glob("*.csv"))  # refused before anything was written
