"""One test per private Lightning name that jersey_cls.lightning_internals relies on: a Lightning upgrade that
changes one fails here, by name, rather than somewhere in a resumed run."""

import inspect
from datetime import timedelta

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, WeightAveraging
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.trainer.connectors.signal_connector import _SignalConnector

from jersey_cls import lightning_internals as internals
from jersey_cls.cli.trainer import JerseyTrainer
from jersey_cls.training import EMA


def test_signal_connector_is_swappable_and_received_sigterm_is_what_the_trainer_reads():
    assert callable(_SignalConnector._sigterm_notifier_fn) and callable(_SignalConnector.register_signal_handlers)
    trainer = JerseyTrainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    assert isinstance(trainer._signal_connector, internals.StopRequests)
    assert trainer.received_sigterm is False
    internals.request_stop(trainer)  # one process: the request is a stop at once
    assert trainer.received_sigterm is True and trainer._signal_connector.received_sigterm is True
    internals.set_stopping(trainer, False)
    assert trainer.received_sigterm is False


def test_model_checkpoint_keeps_its_save_intervals_in_these_fields():
    checkpoint = ModelCheckpoint(every_n_epochs=1)
    assert checkpoint._every_n_train_steps == 0 and checkpoint._train_time_interval is None
    internals.save_also_every(checkpoint, train_steps=3, minutes=2.0)
    assert checkpoint._every_n_train_steps == 3 and checkpoint._train_time_interval == timedelta(minutes=2)
    source = inspect.getsource(ModelCheckpoint)
    assert "self._every_n_train_steps" in source and "self._train_time_interval" in source


def test_fit_loop_progress_has_the_counters_a_resume_point_is_read_from():
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    epochs = trainer.fit_loop.epoch_progress.current
    batches = trainer.fit_loop.epoch_loop.batch_progress.current
    assert {"started", "processed", "completed"} <= set(vars(epochs)) and {"started", "processed", "completed"} <= set(
        vars(batches)
    )
    assert internals.train_progress(trainer) == (0, 0)
    assert internals.at_last_train_batch(trainer) is False


def test_lightning_cli_still_reads_checkpoint_hyperparameters_through_parse_ckpt_path():
    # jersey-cls turns this method off; if Lightning renames it, its own version would override --model flags.
    assert "self._parse_ckpt_path()" in inspect.getsource(LightningCLI.__init__)
    assert internals.NoCheckpointHyperparameters._parse_ckpt_path is not LightningCLI._parse_ckpt_path


def test_weight_averaging_keeps_its_average_in_average_model():
    assert "self._average_model" in inspect.getsource(WeightAveraging)
    assert internals.holds_average(EMA()) is False


def test_weight_averaging_swaps_through_swap_models_and_model_checkpoint_saves_through_save_checkpoint():
    # EMA replaces the swap with a cheaper one, and BestCheckpoints wraps every save in it.
    assert "self._swap_models(pl_module)" in inspect.getsource(WeightAveraging.on_validation_epoch_start)
    assert "self._swap_models(pl_module)" in inspect.getsource(WeightAveraging.on_validation_epoch_end)
    assert inspect.getsource(ModelCheckpoint).count("self._save_checkpoint(trainer, ") >= 2


def test_the_ema_swap_exchanges_the_weights_and_gives_them_back():
    model = pl.LightningModule()
    model.linear, model.norm = torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2)
    ema = EMA()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with ema.averaged(model):  # no average yet: nothing to swap
        assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    ema.setup(None, model, "fit")  # the average starts as a copy
    with torch.no_grad():
        model.linear.weight.add_(1.0)
        model.norm.running_mean.add_(2.0)
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    averaged = {k.removeprefix("module."): v.clone() for k, v in ema._average_model.state_dict().items()}
    weight, storage = model.linear.weight, model.linear.weight.data_ptr()
    average_storage = ema._average_model.module.linear.weight.data_ptr()
    with ema.averaged(model):
        assert all(torch.equal(v, averaged[k]) for k, v in model.state_dict().items())
        assert model.linear.weight.data_ptr() == average_storage  # exchanged, not copied
    assert model.linear.weight is weight and weight.data_ptr() == storage  # what the optimizer holds, as it was
    assert all(torch.equal(v, trained[k]) for k, v in model.state_dict().items())
    assert all(torch.equal(v, averaged[k]) for k, v in ema._average_model.module.state_dict().items())


def test_the_ema_swap_copies_like_lightning_when_the_average_is_not_a_tensor_for_tensor_copy():
    model = pl.LightningModule()
    model.linear = torch.nn.Linear(3, 2)
    ema = EMA()
    ema.setup(None, model, "fit")
    ema._average_model.module.double()  # another dtype: storage cannot be exchanged
    with torch.no_grad():
        model.linear.weight.add_(1.0)
    trained, averaged = model.linear.weight.clone(), ema._average_model.module.linear.weight.clone()
    storage = model.linear.weight.data_ptr()
    with ema.averaged(model):
        assert torch.equal(model.linear.weight, averaged.float()) and model.linear.weight.data_ptr() == storage
    assert torch.equal(model.linear.weight, trained) and model.linear.weight.dtype == torch.float32
    assert torch.equal(ema._average_model.module.linear.weight, averaged)
