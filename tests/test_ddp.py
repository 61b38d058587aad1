import csv
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from jersey_cls.cli import main
from jersey_cls.data.datamodule import JerseyDataModule
from jersey_cls.evaluation.calibrate import uncalibrated_scores
from jersey_cls.evaluation.calibration import fit_temperature
from jersey_cls.training.checkpoints import load_model

from .conftest import CONFIGS, eval_args, fit_args, predictions_of, printed_metric
from .test_metrics import top_labels

LAST = Path("runs/jersey/checkpoints/last.ckpt")


def ddp_command(data_root: Path, epochs: int, *extra: str) -> list[str]:
    """Two CPU processes over gloo, launched by Lightning from the real `jersey-cls fit` command."""
    ddp = ["--config", str(CONFIGS / "ddp.yaml"), "--trainer.accelerator", "cpu", "--trainer.devices", "2"]
    ddp += ["--trainer.sync_batchnorm", "false"]  # SyncBatchNorm needs GPUs
    return ["jersey-cls", *fit_args(data_root, *ddp, "--ckpt_path", "last", *extra, epochs=epochs)]


def ddp_fit(data_root: Path, epochs: int, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    done = subprocess.run(ddp_command(data_root, epochs, *extra), capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def last_logged(name: str) -> float:
    rows = []
    for metrics_csv in Path("runs/jersey/logs").glob("version_*/metrics.csv"):
        with open(metrics_csv, newline="") as f:
            rows += [row for row in csv.DictReader(f) if row.get(name)]
    return float(max(rows, key=lambda row: int(row["step"]))[name])


@pytest.mark.slow  # two fits of two processes each
@pytest.mark.timeout(900)
def test_two_process_ddp_fit_validates_on_the_whole_set_and_resumes(jsonl_root, capsys):
    # 17 validation crops: 9 on rank 0, 8 on rank 1. A padding sampler would count one crop twice.
    valid = jsonl_root / "valid"
    shutil.copy(valid / "7_0.jpg", valid / "7_extra.jpg")
    with open(valid / "annotations.jsonl", "a") as f:
        f.write(json.dumps({"image": "7_extra.jpg", "suffix": "7"}) + "\n")

    first = ddp_fit(jsonl_root, 2)
    ranks = set(re.findall(r"GLOBAL_RANK: (\d), MEMBER: \d/2", first.stderr + first.stdout))
    assert ranks == {"0", "1"}, "both ranks must start"
    stopped = torch.load(LAST, map_location="cpu", weights_only=True)
    # 40 train crops: 20 a rank, 2 full batches of 8 each epoch.
    assert stopped["epoch"] == 1 and stopped["global_step"] == 4
    assert stopped["JerseyDataModule"]["world_size"] == 2
    # The temperature was fitted on all 17 validation crops, not on rank 0's share of them.
    record = next(state for state in stopped["callbacks"].values() if state.get("best_model_path"))
    model = load_model(LAST.parent / Path(record["best_model_path"]).name)
    data = JerseyDataModule(str(jsonl_root), image_size=32, num_workers=0, class_names=model.class_names)
    data.setup("validate")
    scores, targets, _ = uncalibrated_scores(model, data.val_dataloader())
    assert len(targets) == 17
    calibrated = json.loads(Path("runs/jersey/calibration.json").read_text())["temperature"]
    assert fit_temperature(scores, targets) == pytest.approx(calibrated)

    ddp_accuracy = last_logged("val/acc_top1")  # the EMA weights that last.ckpt holds, as in validate
    assert abs(ddp_accuracy * 17 - round(ddp_accuracy * 17)) < 1e-4  # a share of 17 crops, not of 18
    capsys.readouterr()
    main(eval_args("validate", jsonl_root))  # one process
    assert abs(printed_metric(capsys.readouterr().out, "val/acc_top1") - ddp_accuracy) < 1e-6
    # Every metric the DDP run logged, recomputed by scikit-learn from what predict answers on the same crops.
    main(eval_args("predict", jsonl_root, "--data.predict_path", str(valid)))
    with open(predictions_of(), newline="") as f:
        rows = list(csv.DictReader(f))
    y_true, y_pred = [row["label"] for row in rows], [row["pred_label"] for row in rows]
    in_top5 = [row["label"] in top_labels(row) for row in rows]
    assert len(rows) == 17
    assert abs(last_logged("val/acc_top1") - accuracy_score(y_true, y_pred)) < 1e-6
    assert abs(last_logged("val/acc_top5") - sum(in_top5) / 17) < 1e-6
    assert abs(last_logged("val/f1_macro") - f1_score(y_true, y_pred, average="macro")) < 1e-6

    ddp_fit(jsonl_root, 3)
    resumed = torch.load(LAST, map_location="cpu", weights_only=True)
    assert resumed["epoch"] == 2 and resumed["global_step"] == 6  # one more epoch, not a restart


def test_sigterm_to_one_ddp_rank_stops_both_after_the_same_step(jsonl_root, tmp_path):
    # Under torchrun or SLURM each rank gets the signal at its own moment. Rank 1 alone is the hardest case:
    # rank 0 never hears of it but through the ranks' agreement.
    with open(tmp_path / "ddp.log", "w") as log:
        launcher = subprocess.Popen(
            ddp_command(jsonl_root, 200), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 150  # within the test's limit, so a slow start fails here and says so
        while not LAST.exists() and launcher.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert LAST.exists(), f"no checkpoint after 150 s:\n{(tmp_path / 'ddp.log').read_text()[-3000:]}"
        first_save = torch.load(LAST, map_location="cpu", weights_only=True)["global_step"]
        rank1 = int(Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split()[0])
        os.kill(rank1, signal.SIGTERM)
        code = launcher.wait(timeout=100)  # a hang fails here
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    output = (tmp_path / "ddp.log").read_text()
    assert code == 143, output[-3000:]
    assert "Resume with:" in output
    stopped = torch.load(LAST, map_location="cpu", weights_only=True)
    assert first_save <= stopped["global_step"] < 400  # saved on the way out, long before the 200 epochs
