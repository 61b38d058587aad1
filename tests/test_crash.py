import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from jersey_cls.cli import main
from jersey_cls.training.checkpoint_io import AtomicCheckpointIO
from jersey_cls.training.divergence import all_finite

from .conftest import CONFIGS, fit_args

LAST = Path("runs/jersey/checkpoints/last.ckpt")
EVERY_STEP = ("--last_checkpoint.every_n_train_steps", "1")  # so kills land mid-epoch and mid-write


@pytest.fixture
def children():
    """Processes a test starts: any still running when it ends (a failed assertion, a timeout) are killed."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def start_fit(children: list, data_root: Path, *extra: str, tmpdir: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "disabled", **({"TMPDIR": tmpdir} if tmpdir else {})}
    args = fit_args(data_root, "--ckpt_path", "last", *extra, epochs=1000)
    process = subprocess.Popen(
        ["jersey-cls", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    children.append(process)
    return process


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    """Until ``process`` has written ``path`` (anew, when it existed before)."""
    before = path.stat().st_mtime_ns if path.is_file() else None
    deadline = time.monotonic() + timeout
    while not path.is_file() or path.stat().st_mtime_ns == before:
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)


@pytest.mark.timeout(600)  # three runs, each waited for up to 120 s
def test_kill_9_at_random_moments_always_leaves_a_loadable_last_ckpt(jsonl_root, children):
    # resnet18 makes each save ~130 MB, so most random kills hit a checkpoint being written.
    extra = (*EVERY_STEP, "--model.backbone", "resnet18")
    # The system temp folder on another filesystem (tmpfs), as on many clusters: a plain staged save then
    # becomes a copy into the run folder, which a kill can cut short.
    other_fs = tempfile.mkdtemp(dir="/dev/shm") if Path("/dev/shm").is_dir() else None
    rng = random.Random(0)
    steps = []
    try:
        for _ in range(3):
            process = start_fit(children, jsonl_root, *extra, tmpdir=other_fs)
            wait_for(LAST, process)
            time.sleep(rng.uniform(1.0, 3.0))
            process.send_signal(signal.SIGKILL)
            process.wait()
            checkpoint = torch.load(LAST, map_location="cpu", weights_only=True)
            steps.append(checkpoint["global_step"])
            assert checkpoint["state_dict"] and checkpoint["optimizer_states"]
    finally:
        if other_fs:
            shutil.rmtree(other_fs)
    assert steps == sorted(steps) and steps[-1] > steps[0], f"resumes did not advance: {steps}"
    # A kill mid-save leaves that run's staging file (of last.ckpt or of a best checkpoint); the next run's first
    # save tidies it away, so only the last run's can be left.
    left = [p.name for p in LAST.parent.iterdir() if p.name.endswith(".tmp")]
    assert all(name.endswith(f".{process.pid}.tmp") for name in left), left


@pytest.mark.timeout(600)  # a run stopped (waited for up to 120 s), then resumed
def test_sigterm_writes_a_checkpoint_and_says_how_to_resume(jsonl_root, children):
    process = start_fit(children, jsonl_root)
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
    main(fit_args(jsonl_root, "--ckpt_path", "last", epochs=stopped["epoch"] + 2))
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


def test_a_best_checkpoint_killed_mid_save_is_tidied_by_the_next_save_of_any_checkpoint(tmp_path, children):
    """A best checkpoint's name is never written again, so its staging file must go with another file's save."""
    dead = tmp_path / f".best-epoch=000-acc=0.1875.ckpt.{dead_pid()}.tmp"
    alive = subprocess.Popen(["sleep", "60"])
    children.append(alive)
    writing = tmp_path / f".best-epoch=001-acc=0.2500.ckpt.{alive.pid}.tmp"
    for staging in (dead, writing):
        staging.write_bytes(b"half a checkpoint")
    AtomicCheckpointIO().save_checkpoint({"epoch": 2}, tmp_path / "last.ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([writing.name, "last.ckpt"])


def test_a_save_never_removes_another_live_process_staging_file_of_the_same_checkpoint(tmp_path, children):
    alive = subprocess.Popen(["sleep", "60"])
    children.append(alive)
    theirs = tmp_path / f".last.ckpt.{alive.pid}.tmp"
    theirs.write_bytes(b"half of another process's checkpoint")
    AtomicCheckpointIO().save_checkpoint({"epoch": 2}, tmp_path / "last.ckpt")
    assert theirs.read_bytes() == b"half of another process's checkpoint"


@pytest.mark.timeout(300)
def test_a_second_fit_in_a_run_folder_is_refused_at_once_and_the_first_keeps_its_run(jsonl_root, children):
    first = start_fit(children, jsonl_root, "--model.lr", "0.0123")
    wait_for(Path("runs/jersey/.fit.lock"), first)
    started = time.monotonic()
    second = subprocess.run(["jersey-cls", *fit_args(jsonl_root, "--model.lr", "0.0456")], capture_output=True,
                            text=True, env={**os.environ, "WANDB_MODE": "disabled"}, timeout=120)  # fmt: skip
    assert second.returncode == 2 and time.monotonic() - started < 60
    message = " ".join(second.stderr.split())
    assert f"is in use by another jersey-cls fit: pid {first.pid} on {socket.gethostname()}" in message, message
    wait_for(LAST, first)
    time.sleep(2.0)
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=120)
    checkpoints = list(Path("runs/jersey/checkpoints").glob("*.ckpt"))
    assert checkpoints and not list(Path("runs/jersey/checkpoints").glob(".*.tmp"))
    for path in checkpoints:  # every one loads, and is the first fit's
        assert torch.load(path, weights_only=True)["hyper_parameters"]["lr"] == 0.0123, path
    assert not Path("runs/jersey/.fit.lock").exists()
    # A lock its process left behind (a kill -9) is taken over, with a note.
    Path("runs/jersey/.fit.lock").write_text(f'{{"pid": {dead_pid()}, "host": "{socket.gethostname()}"}}')
    taken = subprocess.run(["jersey-cls", *fit_args(jsonl_root, "--trainer.max_steps", "1")], capture_output=True,
                           text=True, env={**os.environ, "WANDB_MODE": "disabled"}, timeout=240)  # fmt: skip
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert "which has ended; this fit takes the run over" in " ".join(taken.stdout.split())


def dead_pid() -> int:
    """The pid of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


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


@pytest.mark.slow  # six fits in subprocesses, one after the other
@pytest.mark.timeout(900)
def test_a_run_interrupted_anywhere_and_resumed_ends_with_the_same_weights_bit_for_bit(jsonl_root, children):
    """SIGKILL and SIGTERM mid-epoch, mid-save, mid-validation and at an epoch end, each resumed with
    --ckpt_path last: the same final weights, EMA, optimizer and scheduler state as a run left alone.
    Two data workers, dropout and the class-balanced sampler all draw random numbers on the way."""
    env = {**os.environ, "WANDB_MODE": "disabled"}
    steps_per_epoch = 5  # 40 train crops, batch 8

    def fit(run: str, *extra: str) -> list[str]:
        args = fit_args(jsonl_root, "--ckpt_path", "last", "--data.num_workers", "2", *extra, epochs=4)
        extra = ["--ema.decay", "0.9", "--model.drop_rate", "0.3", "--data.sampler", "balanced"]
        return ["jersey-cls", *args, "--trainer.default_root_dir", run, *extra]

    subprocess.run(fit("straight"), check=True, capture_output=True, env=env, timeout=300)
    last = Path("interrupted/checkpoints/last.ckpt")
    resume_points = []
    interruptions = (
        (3, signal.SIGKILL, -9),
        (5, signal.SIGTERM, 143),
        (10, signal.SIGKILL, -9),
        (13, signal.SIGINT, 130),
    )
    for stop_after, how, exit_code in interruptions:
        with open("stderr.txt", "w") as stderr:
            process = subprocess.Popen(
                fit("interrupted", *EVERY_STEP), stdout=subprocess.DEVNULL, stderr=stderr, env=env
            )
            children.append(process)
            deadline = time.monotonic() + 120
            while not last.is_file() or torch.load(last, weights_only=True)["global_step"] < stop_after:
                assert process.poll() is None, "the run ended before it could be interrupted"
                assert time.monotonic() < deadline, f"step {stop_after} was never saved"
                time.sleep(0.05)
            process.send_signal(how)
            assert process.wait(timeout=120) == exit_code, Path("stderr.txt").read_text()[-3000:]
        if how != signal.SIGKILL:
            reason = "Ctrl-C" if how == signal.SIGINT else "SIGTERM"
            assert f"stopped by {reason}" in Path("stderr.txt").read_text()
        resumes_at = torch.load(last, weights_only=True)
        state = resumes_at["JerseyDataModule"]
        resume_points.append((state["epoch"], state["batches_done"]))
    subprocess.run(fit("interrupted"), check=True, capture_output=True, env=env, timeout=300)

    assert any(0 < done < steps_per_epoch for _, done in resume_points), resume_points  # mid-epoch resumes
    straight = torch.load("straight/checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    resumed = torch.load(last, map_location="cpu", weights_only=True)
    assert resumed["epoch"] == straight["epoch"] == 3 and resumed["global_step"] == straight["global_step"] == 20
    for key in ("state_dict", "current_model_state"):  # the EMA weights and the raw weights
        for name, tensor in straight[key].items():
            assert torch.equal(tensor, resumed[key][name]), f"{key}.{name} differs after resume {resume_points}"
    adam_straight, adam_resumed = (c["optimizer_states"][0]["state"] for c in (straight, resumed))
    for index, state in adam_straight.items():
        assert torch.equal(state["exp_avg"], adam_resumed[index]["exp_avg"])
        assert torch.equal(state["exp_avg_sq"], adam_resumed[index]["exp_avg_sq"])
    assert straight["lr_schedulers"] == resumed["lr_schedulers"]


class KeepMidEpochCopy(Callback):
    """Copies last.ckpt as it stands mid-epoch 0, to stage a kill that lands between two epoch-end saves."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.current_epoch == 0 and batch_idx == 3:
            shutil.copy(LAST, "mid.ckpt")


def test_a_kill_between_the_best_and_the_last_save_leaves_no_duplicate_best_checkpoint(jsonl_root):
    callback = f"--trainer.callbacks+={__name__}.KeepMidEpochCopy"
    main(fit_args(jsonl_root, "--ckpt_path", "last", *EVERY_STEP, callback, epochs=1))
    best = [p.name for p in LAST.parent.glob("best-*.ckpt")]
    shutil.copy("mid.ckpt", LAST)  # killed after epoch 0's best checkpoint was written, before its last.ckpt
    main(fit_args(jsonl_root, "--ckpt_path", "last", epochs=1))
    assert [p.name for p in LAST.parent.glob("best-*.ckpt")] == best  # written again in place, not as a -v1 twin
    assert torch.load(LAST, weights_only=True)["epoch"] == 0


class SigtermDuringValidation(Callback):
    """Preempts the run halfway through epoch 1's validation, once."""

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if trainer.current_epoch == 1 and batch_idx == 0 and not trainer.sanity_checking and Path("preempt").exists():
            Path("preempt").unlink()
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_during_validation_stops_at_the_epoch_end_and_resumes_exactly(jsonl_root):
    """Lightning cannot resume a validation stopped halfway; the stop waits for the epoch's end instead."""

    def fit(run: str) -> None:
        callback = f"--trainer.callbacks+={__name__}.SigtermDuringValidation"
        main(fit_args(jsonl_root, "--ckpt_path", "last", "--trainer.default_root_dir", run, callback, epochs=3))

    fit("straight")
    Path("preempt").touch()
    with pytest.raises(SystemExit) as stop:
        fit("interrupted")
    assert stop.value.code == 143
    stopped = torch.load("interrupted/checkpoints/last.ckpt", weights_only=True)
    state = stopped["JerseyDataModule"]
    assert (state["epoch"], state["batches_done"]) == (2, 0)  # epoch 1 ended, validated, saved
    fit("interrupted")
    straight, resumed = (
        torch.load(f"{run}/checkpoints/last.ckpt", weights_only=True) for run in ("straight", "interrupted")
    )
    assert resumed["global_step"] == straight["global_step"] == 15
    for name, tensor in straight["state_dict"].items():
        assert torch.equal(tensor, resumed["state_dict"][name]), name


@pytest.mark.parametrize("minutes", ["0.0001", "null"])
def test_last_ckpt_is_refreshed_within_an_epoch_by_time(jsonl_root, minutes, monkeypatch):
    saved_at = []  # global_step of every last.ckpt write
    save = AtomicCheckpointIO.save_checkpoint

    def recording_save(self, checkpoint, path, storage_options=None):
        if Path(path).name == "last.ckpt":
            saved_at.append(checkpoint["global_step"])
        save(self, checkpoint, path, storage_options)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", recording_save)
    main(fit_args(jsonl_root, "--last_checkpoint.every_n_minutes", minutes, epochs=2))
    # 5 steps an epoch; a tiny interval saves after every step but an epoch's last, which the epoch end saves.
    assert saved_at == ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10] if minutes != "null" else [5, 10])


def test_a_huge_but_finite_gradient_is_not_taken_for_divergence():
    assert all_finite([torch.ones(3), torch.tensor([1e30, -1e30, 1.0])])  # its squared norm overflows
    assert not all_finite([torch.ones(3), torch.tensor([1.0, float("nan")])])
    assert not all_finite([torch.tensor([float("-inf")])])


def test_a_full_disk_mid_fit_is_one_line_naming_the_file_and_the_last_checkpoint_survives(jsonl_root, monkeypatch,
                                                                                           capsys):  # fmt: skip
    import jersey_cls.training.checkpoint_io as checkpoint_io

    main(fit_args(jsonl_root, epochs=1))
    before = torch.load(LAST, weights_only=True)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint_io.torch, "save", full)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(fit_args(jsonl_root, "--ckpt_path", "last", epochs=2))
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"cannot write {LAST.resolve().parent}/" in err and "No space left on device" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert torch.load(LAST, weights_only=True)["global_step"] == before["global_step"]


def test_a_run_folder_without_room_is_refused_before_training(jsonl_root, monkeypatch, capsys):
    import jersey_cls.training.run_folder as run_folder

    monkeypatch.setattr(run_folder.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 2**20))
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(fit_args(jsonl_root))
    err = " ".join(capsys.readouterr().err.split())
    assert stop.value.code == 2 and "has 1 MB free, and this fit needs about" in err, err
    assert not LAST.exists()
