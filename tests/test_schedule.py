"""The learning rate warms up over --model.warmup_epochs, then follows a cosine to zero at the run's last optimizer
step, whichever of max_epochs and max_steps ends the run; a resume that lengthens the run stretches the cosine."""

import math

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from jersey_cls.cli import main

from .conftest import fit_args

PEAK = 0.01
STEPS_PER_EPOCH = 5  # 40 train crops of the small JSONL set, batch 8


class RecordRates(Callback):
    """(optimizer step, learning rate) as each training batch starts, before its step."""

    rates: list[tuple[int, float]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self.rates.append((trainer.global_step, trainer.optimizers[0].param_groups[0]["lr"]))


def expected_rate(step: int, warmup: int, total: int, peak: float = PEAK) -> float:
    """Linear warm-up to the peak over ``warmup`` steps, then a half cosine reaching zero at ``total``."""
    if step < warmup:
        return peak * (step + 1) / (warmup + 1)
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def fit(data_root, *extra: str, epochs: int) -> dict[int, float]:
    RecordRates.rates.clear()
    recorder = f"--trainer.callbacks+={__name__}.RecordRates"
    main(fit_args(data_root, "--model.lr", str(PEAK), "--ckpt_path", "last", recorder, *extra, epochs=epochs))
    return dict(RecordRates.rates)


@pytest.mark.parametrize(
    ("max_epochs", "max_steps", "extra", "warmup", "total"),
    [
        (3, -1, [], 5, 15),
        (-1, 12, [], 5, 12),
        (4, 13, [], 5, 13),
        (2, 50, [], 5, 10),
        # 4 of the 5 batches an epoch, two per optimizer step: 2 steps an epoch
        (3, -1, ["--trainer.limit_train_batches", "0.8", "--trainer.accumulate_grad_batches", "2"], 2, 6),
    ],
    ids=["epochs", "steps-only", "steps-end-first", "epochs-end-first", "limit-and-accumulate"],
)
def test_the_cosine_ends_at_the_last_step_the_trainer_takes(jsonl_root, max_epochs, max_steps, extra, warmup, total):
    rates = fit(jsonl_root, "--trainer.max_steps", str(max_steps), *extra, epochs=max_epochs)
    assert sorted(rates) == list(range(total))
    for step in (0, total // 2, total - 1):
        assert rates[step] == pytest.approx(expected_rate(step, warmup, total), rel=1e-6), step


def test_training_without_an_end_is_refused_with_the_flags_that_give_one(jsonl_root, capsys):
    with pytest.raises(SystemExit) as stop:
        main(fit_args(jsonl_root, "--trainer.max_steps", "-1", epochs=-1))
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert "--trainer.max_epochs -1 with --trainer.max_steps -1" in error and "--trainer.max_epochs N" in error


def test_max_epochs_raised_on_a_finished_run_continues_on_a_stretched_cosine(jsonl_root, capsys):
    first = fit(jsonl_root, epochs=2)
    assert sorted(first) == list(range(10)) and first[9] == pytest.approx(expected_rate(9, STEPS_PER_EPOCH, 10))
    capsys.readouterr()
    resumed = fit(jsonl_root, epochs=4)
    assert "the run now ends after 20 optimizer steps, not 10" in capsys.readouterr().out
    assert sorted(resumed) == list(range(10, 20))  # it continues, from where the first run ended
    for step in (10, 15, 19):  # the first step after the resume included: the new schedule, not the old rate
        assert resumed[step] == pytest.approx(expected_rate(step, STEPS_PER_EPOCH, 20), rel=1e-6), step
    last = torch.load("runs/jersey/checkpoints/last.ckpt", weights_only=True)
    assert last["epoch"] == 3 and last["global_step"] == 20
    capsys.readouterr()
    rates = fit(jsonl_root, "--model.lr", "0.02", epochs=5)  # a new peak rate on a resume takes effect too
    assert "the peak learning rate is 0.02, not 0.01" in capsys.readouterr().out
    for step in (20, 24):
        assert rates[step] == pytest.approx(expected_rate(step, STEPS_PER_EPOCH, 25, peak=0.02), rel=1e-6), step
