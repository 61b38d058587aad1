import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch._dynamo.utils import counters

import jersey_cls
from jersey_cls.cli import main
from jersey_cls.model import JerseyClassifier

from .conftest import CONFIGS, LABELS, fit_args

CHECKPOINTS = Path("runs/jersey/checkpoints")


def load(path: Path) -> dict:
    # weights_only=True is how Lightning and PyTorch >= 2.6 load: hyperparameters must stay primitive.
    return torch.load(path, map_location="cpu", weights_only=True)


def logged_epochs(version: int) -> list[int]:
    with open(f"runs/jersey/logs/version_{version}/metrics.csv") as f:
        return sorted({int(row["epoch"]) for row in csv.DictReader(f) if row.get("val/acc_top1")})


def test_fit_writes_last_and_best_into_the_run_folder_and_reuses_it(jsonl_root, recwarn, caplog):
    main(fit_args(jsonl_root, epochs=2))
    assert not [w for w in recwarn if "WeightAveraging" in str(w.message) or "LeafSpec" in str(w.message)]
    assert "GPU available" in caplog.text and "litlogger" not in caplog.text and "already configured" not in caplog.text
    last = load(CHECKPOINTS / "last.ckpt")
    assert last["epoch"] == 1
    assert last["hyper_parameters"]["class_names"] == LABELS
    assert isinstance(last["hyper_parameters"]["class_names"], list)
    assert len(list(CHECKPOINTS.glob("best-epoch=*-acc=*.ckpt"))) == 2
    # A second run into the same folder must not trip over the first run's saved config.
    main(fit_args(jsonl_root, epochs=1))
    assert Path("runs/jersey/logs/version_0/config.yaml").is_file()
    assert Path("runs/jersey/logs/version_1/config.yaml").is_file()
    assert sorted(p.name for p in Path("runs").iterdir()) == ["jersey"]


def test_overrides_take_effect(jsonl_root, capsys):
    main(fit_args(jsonl_root, "--model.backbone", "resnet18", "--data.batch_size", "4", "--model.lr", "0.01",
                  "--trainer.enable_model_summary", "true"))  # fmt: skip
    assert re.search(r"Total FLOPs: 7[0-9.]+ M", capsys.readouterr().out)  # resnet18 at 32 px: ~74 M, not 0
    last = load(CHECKPOINTS / "last.ckpt")
    assert last["hyper_parameters"]["backbone"] == "resnet18"
    assert last["hyper_parameters"]["lr"] == 0.01
    assert last["datamodule_hyper_parameters"]["batch_size"] == 4
    assert "net.layer4.1.conv2.weight" in last["state_dict"]  # resnet18 has layer4; test_resnet does not
    assert last["global_step"] == 40 // 4


def test_resume_continues_from_the_latest_epoch_even_on_a_plateau(jsonl_root, capsys):
    # lr 0 freezes the weights, so val/acc_top1 is flat and best-k stops updating after epoch 0.
    main(fit_args(jsonl_root, "--model.lr", "0.0", "--ckpt_path", "last", epochs=3))
    assert "no checkpoint under runs/jersey; starting a new run" in capsys.readouterr().out
    first = load(CHECKPOINTS / "last.ckpt")
    assert first["epoch"] == 2
    assert len(list(CHECKPOINTS.glob("best-*.ckpt"))) == 3

    main(fit_args(jsonl_root, "--model.lr", "0.0", "--ckpt_path", "last", epochs=5))
    assert "resuming from" in capsys.readouterr().out
    resumed = load(CHECKPOINTS / "last.ckpt")
    assert logged_epochs(1) == [3, 4]
    assert resumed["epoch"] == 4
    assert resumed["global_step"] == first["global_step"] * 5 // 3
    adam_steps = {float(state["step"]) for state in resumed["optimizer_states"][0]["state"].values()}
    assert adam_steps == {resumed["global_step"]}
    assert resumed["lr_schedulers"][0]["last_epoch"] == resumed["global_step"]


@pytest.mark.slow  # a minute of inductor compilation on 2 CPU cores
@pytest.mark.timeout(900)
def test_compile_flag_compiles_the_backbone_and_checkpoints_keep_the_eager_keys(jsonl_root):
    torch._dynamo.reset()
    counters.clear()
    main(fit_args(jsonl_root, "--model.compile", "true"))
    assert counters["stats"]["unique_graphs"] > 0
    eager = JerseyClassifier(class_names=LABELS, backbone="test_resnet", head="classes")
    assert load(CHECKPOINTS / "last.ckpt")["state_dict"].keys() == eager.state_dict().keys()


def test_installed_command_reports_bad_input_without_traceback(tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled"}
    result = subprocess.run(
        ["jersey-cls", "fit", "--config", str(CONFIGS / "base.yaml"), "--data.data_root", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 2
    assert "--data.data_root" in result.stderr and "no such folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_command_introduces_itself_and_says_its_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    shown = capsys.readouterr().out
    assert "jersey-cls trains the classifier that reads basketball jersey numbers" in shown
    for command in ("fit", "validate", "test", "predict", "export", "audit"):
        assert re.search(rf"^  {command} +\w", shown, re.M), command  # listed, with what it does
    # `python -m jersey_cls` as a process: the module's entry point, not only the function behind it.
    version = subprocess.run([sys.executable, "-m", "jersey_cls", "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == f"jersey-cls {jersey_cls.__version__}"


@pytest.mark.slow  # the README's quick start: up to 15 epochs of ResNet18
@pytest.mark.timeout(1800)
def test_embedded_default_reaches_90_percent(capsys):
    """The README's quick start, stopped as soon as validation passes 90%. Until then it is the README's run epoch
    for epoch (same seed, same 15-epoch schedule), so that run's best checkpoint reads at least as many crops."""
    recipe = yaml.safe_load((CONFIGS / "base.yaml").read_text())
    stopper = next(c for c in recipe["trainer"]["callbacks"] if c["class_path"].endswith("EarlyStopping"))
    stopper["init_args"]["stopping_threshold"] = 0.90
    Path("quick_start.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    main(["fit", "--config", "quick_start.yaml", "--trainer.enable_progress_bar", "false"])
    best = max(float(p.stem.rsplit("acc=", 1)[1]) for p in CHECKPOINTS.glob("best-*.ckpt"))
    assert best >= 0.90
    assert Path("runs/jersey/export/model.onnx").exists()  # the fit ended as the README's does, export included
