from pathlib import Path

import pytest
import yaml

from jersey_cls.cli import main
from jersey_cls.cli.app import JerseyCLI
from jersey_cls.data.datamodule import JerseyDataModule
from jersey_cls.model import JerseyClassifier

from .conftest import CONFIGS, fit_args

STACKS = [
    ["base.yaml"],
    ["base.yaml", "t4.yaml"],
    ["base.yaml", "wandb.yaml"],
    ["base.yaml", "t4.yaml", "wandb.yaml"],
]


def print_config(capsys, args: list[str]) -> dict:
    with pytest.raises(SystemExit) as exit_info:
        main(args + ["--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def config_args(stack: list[str]) -> list[str]:
    return [arg for name in stack for arg in ("--config", str(CONFIGS / name))]


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: "+".join(n.removesuffix(".yaml") for n in s))
def test_every_shipped_stack_parses(capsys, stack):
    config = print_config(capsys, ["fit", *config_args(stack)])
    assert config["trainer"]["default_root_dir"] == "runs/jersey"
    # No run paths in the config: they are filled in under the run folder, so the config moves with it.
    assert "runs/jersey/" not in yaml.safe_dump(config)
    loggers = [logger["class_path"].rsplit(".", 1)[1] for logger in config["trainer"]["logger"]]
    assert loggers[0] == "CSVLogs"
    assert ("WandbLogger" in loggers) == ("wandb.yaml" in stack)


def test_a_printed_config_fed_back_with_another_run_folder_moves_every_file(capsys, tmp_path, jsonl_root):
    printed = tmp_path / "printed.yaml"
    printed.write_text(yaml.safe_dump(print_config(capsys, ["fit", *config_args(["base.yaml"])])))
    small = fit_args(jsonl_root, onnx=True)[3:]  # fit_args without its --config base.yaml
    main(["fit", "--config", str(printed), *small, "--trainer.default_root_dir", "other"])
    assert sorted(p.name for p in Path().iterdir() if p.name in ("runs", "other")) == ["other"]
    for made in ("checkpoints/last.ckpt", "logs/version_0/metrics.csv", "logs/version_0/config.yaml",
                 "confusion_matrix/epoch_000.png", "export/model.onnx", "model_card.md"):  # fmt: skip
        assert (Path("other") / made).is_file(), made


def test_print_config_round_trips(capsys, tmp_path):
    first = print_config(capsys, ["fit", *config_args(["base.yaml", "t4.yaml"]), "--data.batch_size", "16"])
    dumped = tmp_path / "resolved.yaml"
    dumped.write_text(yaml.safe_dump(first))
    assert print_config(capsys, ["fit", "--config", str(dumped)]) == first


def test_t4_values_land_in_the_trainer(capsys, jsonl_root):
    config = print_config(capsys, ["fit", *config_args(["base.yaml", "t4.yaml"])])
    assert config["trainer"]["precision"] == "16-mixed"
    # No GPU here: instantiate on CPU in fp32 (fp16 autocast does not exist on CPU) and check the rest.
    cli = JerseyCLI(
        JerseyClassifier,
        JerseyDataModule,
        run=False,
        parser_kwargs={"parser_mode": "omegaconf+"},
        args=[
            *config_args(["base.yaml", "t4.yaml"]),
            "--trainer.accelerator", "cpu",
            "--trainer.precision", "32-true",
            "--model.pretrained", "false",
            "--data.data_root", str(jsonl_root),
        ],
    )  # fmt: skip
    assert cli.trainer.gradient_clip_val == 1.0
    assert cli.trainer.gradient_clip_algorithm == "norm"
    assert cli.trainer.accumulate_grad_batches == 1
    assert cli.trainer.max_epochs == 40
    assert cli.datamodule.hparams.image_size == 224
    assert cli.datamodule.hparams.batch_size == 64
    assert cli.datamodule.hparams.num_workers == 4
    assert cli.datamodule.hparams.pin_memory and cli.datamodule.hparams.persistent_workers
    assert cli.model.hparams.lr == 5e-4


def test_a_gpu_recipe_on_a_machine_without_usable_cuda_gets_a_diagnosis(monkeypatch, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr("jersey_cls.cli.gpu.driver_version", lambda: "535.104.05")  # too old for CUDA 13 wheels
    monkeypatch.setattr("torch.version.cuda", "13.0")
    with pytest.raises(SystemExit) as stop:
        main(["fit", *config_args(["base.yaml", "t4.yaml"])])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    says = ["--trainer.accelerator gpu: CUDA cannot be used", "built for CUDA 13.0", "driver R580 or newer",
            "the driver found is 535.104.05", "--trainer.accelerator cpu", "a torch build that matches"]  # fmt: skip
    assert all(part in error for part in says), error
