"""The default recipe, guarded on real pixels: scanned handwritten digits (scikit-learn's copy of the UCI set) on
jersey colours, 10 classes, 64 px, fitted with configs/base.yaml as a user runs it, fewer epochs aside.

Every other fit in the suite uses a tiny model for an epoch or two, where a broken recipe still passes. This one
fails when the augmentation is back at full strength (it then stays far below the floor after 6 epochs), when the
EMA stops following the weights (validation and the best checkpoint then hold the starting weights), when the
schedule stops decaying, and when a callback monitors a metric the model does not log."""

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from jersey_cls.cli import main

from .conftest import CONFIGS, numpy_ece

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from real_digits import DIGITS, write_numbers  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]  # 6 epochs of ResNet18 at 64 px
RUN = Path("runs/jersey")
EPOCHS = 6


def answers(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, correct) per crop of a predictions CSV."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return np.array([float(r["pred_prob"]) for r in rows]), np.array([r["pred_label"] == r["label"] for r in rows])


def test_the_default_recipe_learns_real_digits_and_its_schedule_ema_and_calibration_work(tmp_path):
    data = tmp_path / "digits"
    write_numbers(data, [], {"train": 80, "valid": 25, "test": 25}, size=64, seed=0, numbers=DIGITS)
    main(["fit", "--config", str(CONFIGS / "base.yaml"), "--data.data_root", str(data),
          "--trainer.max_epochs", str(EPOCHS), "--trainer.enable_progress_bar", "false"])  # fmt: skip

    main(["predict", "--ckpt_path", "best", "--data.predict_path", str(data / "test")])
    confidence, correct = answers(RUN / "predictions" / "test.csv")
    assert len(correct) == 250
    assert correct.mean() >= 0.55, f"test top-1 {correct.mean():.3f}"  # chance is 0.10

    # The schedule as the run logged it: warm-up to base.yaml's rate, then a cosine down to almost nothing.
    with open(RUN / "logs" / "version_0" / "metrics.csv", newline="") as f:
        rates = [(int(r["step"]), float(r["lr-AdamW/pg1"])) for r in csv.DictReader(f) if r.get("lr-AdamW/pg1")]
    peak = max(rate for _, rate in rates)
    assert peak == pytest.approx(0.004, rel=0.05)
    assert rates[-1][0] >= EPOCHS * 25 - 10 and rates[-1][1] < 0.02 * peak  # 25 steps an epoch

    # The EMA followed every step, and is not the raw weights.
    last = torch.load(RUN / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert int(last["averaging_state"]["n_averaged"]) == last["global_step"] == EPOCHS * 25
    assert not torch.equal(last["state_dict"]["net.fc.weight"], last["current_model_state"]["net.fc.weight"])

    # The temperature fitted on valid makes test's confidence more truthful, by a numpy ECE on predict's answers.
    record = next(state for state in last["callbacks"].values() if state.get("best_model_path"))
    best = torch.load(RUN / "checkpoints" / Path(record["best_model_path"]).name, weights_only=True)
    assert float(best["state_dict"]["temperature"]) != 1.0
    best["state_dict"]["temperature"] = torch.tensor(1.0)
    torch.save(best, "uncalibrated.ckpt")
    main(["predict", "--ckpt_path", "uncalibrated.ckpt", "--data.predict_path", str(data / "test"),
          "--trainer.default_root_dir", "uncalibrated"])  # fmt: skip
    raw_confidence, raw_correct = answers(Path("uncalibrated/predictions/test.csv"))
    assert np.array_equal(raw_correct, correct)  # a temperature never changes the answer
    assert numpy_ece(confidence, correct) < 0.75 * numpy_ece(raw_confidence, raw_correct)
