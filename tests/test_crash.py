import multiprocessing
import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from jersey_cls.checkpoint_io import AtomicCheckpointIO
from jersey_cls.cli import main

from .conftest import CONFIGS, fit_args

LAST = Path("runs/jersey/checkpoints/last.ckpt")

# Appends (callbacks+) a last.ckpt writer that saves after every optimizer step, so kills land mid-write.
EVERY_STEP = """
trainer:
  callbacks+:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args:
        dirpath: ${trainer.default_root_dir}/checkpoints
        filename: last
        monitor: null
        save_top_k: 1
        enable_version_counter: false
        every_n_train_steps: 1
"""


def start_fit(data_root: Path, *extra: str, tmpdir: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "disabled", **({"TMPDIR": tmpdir} if tmpdir else {})}
    args = fit_args(data_root, "--ckpt_path", "last", *extra, epochs=1000)
    return subprocess.Popen(["jersey-cls", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    """Until ``process`` has written ``path`` (anew, when it existed before)."""
    before = path.stat().st_mtime_ns if path.is_file() else None
    deadline = time.monotonic() + timeout
    while not path.is_file() or path.stat().st_mtime_ns == before:
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)


def test_kill_9_at_random_moments_always_leaves_a_loadable_last_ckpt(jsonl_root):
    Path("every_step.yaml").write_text(EVERY_STEP)
    # resnet18 makes each save ~130 MB, so most random kills hit a checkpoint being written.
    extra = ("--config", "every_step.yaml", "--model.backbone", "resnet18")
    # The system temp folder on another filesystem (tmpfs), as on many clusters: a plain staged save then
    # becomes a copy into the run folder, which a kill can cut short.
    other_fs = "/dev/shm" if Path("/dev/shm").is_dir() else None
    rng = random.Random(0)
    steps = []
    for _ in range(3):
        process = start_fit(jsonl_root, *extra, tmpdir=other_fs)
        wait_for(LAST, process)
        time.sleep(rng.uniform(1.0, 3.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        checkpoint = torch.load(LAST, map_location="cpu", weights_only=True)
        steps.append(checkpoint["global_step"])
        assert checkpoint["state_dict"] and checkpoint["optimizer_states"]
    assert steps == sorted(steps) and steps[-1] > steps[0], f"resumes did not advance: {steps}"
    assert not [p for p in LAST.parent.iterdir() if p.name.endswith(".tmp") and p.stat().st_size == 0]


def test_sigterm_writes_a_checkpoint_and_says_how_to_resume(jsonl_root):
    process = start_fit(jsonl_root)
    wait_for(LAST, process)
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143
    assert "stopped by SIGTERM" in stderr and "--ckpt_path last" in stderr
    assert "Traceback" not in stderr
    stopped = torch.load(LAST, map_location="cpu", weights_only=True)
    assert stopped["global_step"] > 0
    # The same command (as printed) resumes; it continues from the saved step and epoch.
    env = {**os.environ, "WANDB_MODE": "disabled"}
    args = fit_args(jsonl_root, "--ckpt_path", "last", epochs=stopped["epoch"] + 2)
    resumed = subprocess.run(["jersey-cls", *args], capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = torch.load(LAST, map_location="cpu", weights_only=True)
    assert final["epoch"] == stopped["epoch"] + 1 and final["global_step"] > stopped["global_step"]
    assert str(CONFIGS) in stderr  # the hint repeats the user's own command


def test_a_save_killed_mid_write_leaves_the_previous_checkpoint_intact(tmp_path):
    target = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"epoch": 1, "w": torch.ones(3)}, target)
    child = multiprocessing.get_context("fork").Process(
        target=AtomicCheckpointIO().save_checkpoint, args=({"epoch": 2, "w": torch.randn(60_000_000)}, target)
    )
    child.start()
    staging = target.with_name(f".last.ckpt.{child.pid}.tmp")
    deadline = time.monotonic() + 60
    while not (staging.is_file() and staging.stat().st_size > 1_000_000):  # the new file is half written
        assert child.is_alive() and time.monotonic() < deadline, "the save finished before it could be killed"
        time.sleep(0.001)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert torch.load(target, weights_only=True)["epoch"] == 1
    AtomicCheckpointIO().save_checkpoint({"epoch": 3}, target)  # the next save tidies the killed one's file
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_divergence_stops_with_a_diagnosis_and_a_finite_last_ckpt(jsonl_root, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(fit_args(jsonl_root, "--model.lr", "1e30", "--model.warmup_epochs", "0", epochs=3))
    assert exit_info.value.code == 3
    error = capsys.readouterr().err
    assert re.search(r"training diverged at epoch 0, step \d+: (the loss is nan|the loss is inf|a gradient)", error)
    assert re.search(r"learning rate: [0-9.]+e\+(29|30)", error)  # the scheduled rate at that step
    assert str(jsonl_root / "train") in error  # the batch's files
    assert "--model.lr" in error and "gradient_clip_val" in error and "--trainer.precision 32" in error
    checkpoint = torch.load(LAST, map_location="cpu", weights_only=True)
    assert all(torch.isfinite(t).all() for t in checkpoint["state_dict"].values() if t.is_floating_point())
