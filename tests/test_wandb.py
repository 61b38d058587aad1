import os
import subprocess
import sys
from pathlib import Path

import pytest

from jersey_cls.cli import main

from .conftest import CONFIGS, fit_args

RUN = Path("runs/jersey")
FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"


def run_fit(data_root: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_API_KEY": FAKE_KEY, "WANDB_SILENT": "true"}
    env["HOME"] = str(Path("home").absolute())  # so files W&B or matplotlib put in ~ are seen
    del env["TORCHINDUCTOR_CACHE_DIR"]  # the package's own default
    args = fit_args(data_root, "--config", str(CONFIGS / "wandb.yaml"), *extra)
    return subprocess.run(["jersey-cls", *args], capture_output=True, text=True, env=env, timeout=300)


def test_offline_wandb_run_survives_resume_and_never_stores_the_key(jsonl_root):
    first = run_fit(jsonl_root, "--ckpt_path", "last")
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_fit(jsonl_root, "--ckpt_path", "last", "--trainer.max_epochs", "2")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming from" in second.stdout
    for done in (first, second):
        assert "W&B could not start" not in done.stderr, done.stderr[-3000:]

    run_id = (RUN / "wandb" / "run_id").read_text().strip()
    offline_runs = sorted((RUN / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 2
    assert all(folder.name.endswith(f"-{run_id}") for folder in offline_runs)
    for folder in offline_runs:
        transaction_log = folder / f"run-{run_id}.wandb"
        assert transaction_log.is_file(), (
            sorted(map(str, folder.rglob("*"))),
            first.stderr[-2000:],
            second.stderr[-2000:],
        )
        history = transaction_log.read_bytes()
        assert b"val/acc_top1" in history
        assert b"default_root_dir" in history  # the resolved CLI config went to the run config
        assert list(folder.glob("files/media/images/val/confusion_matrix*.png"))

    for path in RUN.rglob("*"):
        if path.is_file():
            assert FAKE_KEY.encode() not in path.read_bytes(), f"API key leaked into {path}"

    # Nothing written outside the run folder and the caches (ONNX Runtime's telemetry file can't be turned off).
    assert sorted(p.name for p in Path().iterdir()) == ["cache", "home", "jsonl_data", "runs"]
    assert not [p for p in Path("home").rglob("*") if p.is_file() and ".cache" not in p.parts]
    assert [p.name for p in Path(os.environ["TMPDIR"]).iterdir()] in ([], [".ses"])
    assert Path("cache/jersey-cls/torchinductor").is_dir()


def test_wandb_that_cannot_start_warns_once_and_training_goes_on(jsonl_root, monkeypatch):
    import wandb

    def refuse(*args, **kwargs):
        raise wandb.errors.UsageError("api_key not configured (no-tty)")

    monkeypatch.setattr(wandb, "init", refuse)
    with pytest.warns(UserWarning, match="W&B could not start .*WANDB_API_KEY") as record:
        main(fit_args(jsonl_root, "--config", str(CONFIGS / "wandb.yaml")))
    assert sum("W&B could not start" in str(w.message) for w in record) == 1
    assert (RUN / "checkpoints" / "last.ckpt").is_file()
    assert (RUN / "logs" / "version_0" / "metrics.csv").is_file()


def test_wandb_that_cannot_be_imported_warns_and_training_goes_on(jsonl_root, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # makes `import wandb` raise ImportError
    with pytest.warns(UserWarning, match="W&B is configured but cannot be imported"):
        main(fit_args(jsonl_root, "--config", str(CONFIGS / "wandb.yaml")))
    assert (RUN / "checkpoints" / "last.ckpt").is_file()
