"""Every jersey-cls command in README.md and docs/*.md runs as written, in the order each page gives them.

Each page gets a folder with `configs/`, a small dataset `my_data/` (and `SoccerNet/jersey-2023/` where the
page uses it) and a folder of `crops/`; a page whose first command needs a trained run gets one, so a page can
start anywhere in the workflow. Fit commands get a short-run suffix (a tiny timm model, 32 px, one short epoch);
every flag and file a page writes is still parsed and used. Commands that need a GPU (t4.yaml) or several
processes (ddp.yaml) are parsed with --print_config here; tests/test_ddp.py runs DDP.
"""

import re
import shlex
import shutil
from pathlib import Path

import pytest

from jersey_cls.cli import main
from jersey_cls.cli.synth import main as synth

from .conftest import CONFIGS

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHORT_RUN = ["--model.backbone", "test_resnet", "--data.image_size", "32", "--data.batch_size", "8",
             "--data.num_workers", "0", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
             "--trainer.enable_progress_bar", "false", "--onnx.enabled", "false"]  # fmt: skip


def commands(page: Path) -> list[list[str]]:
    """The jersey-cls command lines of a page's bash blocks, comments and line continuations resolved."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value prefixes
                words = words[1:]
            if words and words[0] in ("jersey-cls", "jersey-cls-synth"):
                found.append(words)
    return found


def test_the_pages_have_commands():
    assert sum(len(commands(page)) for page in PAGES) >= 15


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_command_of_a_page_runs_as_written(page, jsonl_root, request, monkeypatch, capsys):
    shutil.copytree(CONFIGS, "configs")
    shutil.copytree(jsonl_root, "my_data")
    if "SoccerNet/jersey-2023" in page.read_text():  # as SoccerNet's downloader leaves it
        shutil.copytree(request.getfixturevalue("soccernet_root"), "SoccerNet/jersey-2023")
    shutil.copytree(jsonl_root / "test", "crops", ignore=shutil.ignore_patterns("*.jsonl"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    for words in commands(page):
        program, args = words[0], words[1:]
        run = synth if program == "jersey-cls-synth" else main
        if "--help" in args:
            with pytest.raises(SystemExit) as stop:
                run(args)
            assert stop.value.code == 0
            continue
        if program == "jersey-cls-synth":
            if args[:1] == ["players"]:  # a few short tracklets; the page's own flags are still parsed and used
                args = [*args, "--tracklets", "6", "--test", "0", "--frames", "[3, 5]"]
            synth(args)
            continue
        if any(name in " ".join(args) for name in ("t4.yaml", "ddp.yaml")):
            args = [*args, "--print_config"]
        elif args[0] == "fit":
            args = [*args, *SHORT_RUN]
        elif args[0] == "audit":  # its fold models train as the short run does
            args = [*args, "--folds", "2", "--fold_epochs", "1", "--data.num_workers", "0"]
        needs_run = args[0] != "fit" or "--ckpt_path" in args  # a command that reads a trained run
        if needs_run and not Path("runs/jersey").is_dir():  # a page that starts after its run's fit
            main(["fit", "--config", "configs/base.yaml", "--data.data_root", "my_data", *SHORT_RUN])
        try:
            main(args)
        except SystemExit as stop:
            assert stop.code in (0, None), f"{shlex.join(words)}: exit {stop.code}\n{capsys.readouterr().err}"
