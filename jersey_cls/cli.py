"""The jersey-cls command: LightningCLI wiring of the model, the data and the run folder."""

import sys
import warnings
from pathlib import Path

from jsonargparse import set_parsing_settings
from lightning.pytorch.cli import LightningCLI

from jersey_cls.data import JerseyDataModule
from jersey_cls.errors import JerseyInputError
from jersey_cls.model import JerseyClassifier


class JerseyCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        parser.link_arguments("data.class_weights", "model.class_weights", apply_on="instantiate")

    def before_fit(self) -> None:
        if self.config.fit.ckpt_path == "last":
            # Say it once, in our words, instead of Lightning's warning.
            warnings.filterwarnings("ignore", message=".*there is no last checkpoint available")
            found = [p for cb in self.trainer.checkpoint_callbacks for p in cb._find_last_checkpoints(self.trainer)]
            if found:
                warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
                print(f"jersey-cls: resuming from {max(found, key=lambda p: Path(p).stat().st_mtime)}")
            else:
                print(f"jersey-cls: no checkpoint under {self.trainer.default_root_dir}; starting a new run")


def main(args: list[str] | None = None) -> None:
    """Run the jersey-cls command line; ``args`` replaces sys.argv[1:] for in-process use."""
    # omegaconf+ resolves ${trainer.default_root_dir} after all configs and flags are merged, so the
    # checkpoint and log folders follow the run folder; absolute-to-relative lets subcommands use it.
    set_parsing_settings(omegaconf_absolute_to_relative_paths=True)
    try:
        JerseyCLI(
            JerseyClassifier,
            JerseyDataModule,
            seed_everything_default=42,
            parser_kwargs={"parser_mode": "omegaconf+"},
            args=args,
        )
    except JerseyInputError as error:
        print(f"jersey-cls: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
