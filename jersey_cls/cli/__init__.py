"""The commands: `jersey-cls` (cli.app) and `jersey-cls-synth` (cli.synth). Lightning is imported only when
`jersey-cls` runs, so `jersey-cls-synth` starts at once."""


def main(args: list[str] | None = None) -> None:
    """Run the jersey-cls command line; ``args`` replaces sys.argv[1:] for in-process use."""
    from jersey_cls.cli.app import main as run

    run(args)
