"""After fit, a checkpoint is enough: validate, test, export and predict know its model, its data and its run."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from jersey_cls.cli import main

from .conftest import CONFIGS, fit_args, printed_metric

RUN = Path("runs/jersey")


def test_commands_after_fit_take_the_model_and_data_from_the_best_checkpoint(jsonl_root, capsys):
    main(fit_args(jsonl_root, "--model.lr", "0.01", epochs=2))
    only = ["--config", str(CONFIGS / "base.yaml"), "--ckpt_path", "best", "--data.num_workers", "0"]
    capsys.readouterr()
    main(["validate", *only])
    adopted = printed_metric(capsys.readouterr().out, "val/acc_top1")
    main(["validate", *only, "--data.data_root", str(jsonl_root)])
    assert printed_metric(capsys.readouterr().out, "val/acc_top1") == adopted
    assert len(list(RUN.glob("reports/best-epoch=*/val_per_class.csv"))) == 1

    main(["test", *only])
    tested = printed_metric(capsys.readouterr().out, "test/acc_top1")
    main(["export", *only])
    [exported] = (RUN / "exports").iterdir()  # named after the checkpoint; fit's own export/ is left alone
    assert exported.name.startswith("best-epoch=") and (exported / "model.onnx").is_file()
    main(["predict", *only])  # no --data.predict_path: the test split of the checkpoint's data
    with open(RUN / "predictions" / "test.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 16 and all(row["path"].startswith(str(jsonl_root / "test")) for row in rows)
    assert tested == pytest.approx(sum(row["pred_label"] == row["label"] for row in rows) / len(rows), abs=1e-6)


def test_predict_needs_no_config_and_never_overwrites(trained, capsys):
    last = str(RUN / "checkpoints" / "last.ckpt")
    for _ in range(2):
        main(["predict", "--ckpt_path", last, "--data.predict_path", str(trained / "valid")])
    written = sorted(p.name for p in (RUN / "predictions").iterdir())
    assert written == ["valid-2.csv", "valid.csv"]
    assert (RUN / "predictions" / "valid.csv").read_text() == (RUN / "predictions" / "valid-2.csv").read_text()
    assert "wrote 16 predictions" in capsys.readouterr().out


def test_an_override_of_what_the_checkpoint_means_gets_a_note(trained, capsys):
    capsys.readouterr()
    main(["validate", "--ckpt_path", "last", "--data.image_size", "48", "--data.num_workers", "0"])
    assert "jersey-cls: note: --data.image_size 48 overrides the checkpoint's 32" in capsys.readouterr().out


def test_a_moved_run_resumes_and_deploys_from_its_own_files(jsonl_root, monkeypatch):
    shutil.copytree(jsonl_root, "data")
    main(fit_args(Path("data"), onnx=True))  # a relative data root, as users type it
    shutil.move("runs/jersey", "moved")
    saved = Path("moved/logs/version_0/config.yaml")
    assert "runs/jersey/" not in saved.read_text()  # no run path in the saved config: it moves with the run
    # Nothing left to train: fit goes straight to its end, which exports the best checkpoint it knows of.
    main(["fit", "--config", str(saved), "--trainer.default_root_dir", "moved", "--ckpt_path", "last"])
    assert not Path("runs/jersey").exists()
    card = Path("moved/model_card.md").read_text()
    assert "moved/checkpoints/best-epoch=000" in card and Path("moved/export/model.onnx").is_file()
    temperature = json.loads(Path("moved/calibration.json").read_text())["temperature"]
    assert f"temperature {temperature:.3f}, fitted on val" in card  # the first fit's, which the checkpoint holds
    # From another folder, a checkpoint still finds its data: the data root is stored absolute.
    Path("elsewhere").mkdir()
    monkeypatch.chdir("elsewhere")
    main(["validate", "--ckpt_path", str(Path("../moved/checkpoints/last.ckpt").resolve()), "--data.num_workers", "0"])
    assert len(list(Path("../moved/reports").glob("last/val_per_class.csv"))) == 1
