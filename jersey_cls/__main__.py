"""The `jersey-cls` command (also `python -m jersey_cls`)."""

import os

from jersey_cls import default_cache_dir


def main() -> None:
    # Importing Lightning makes torch create /tmp/torchinductor_<user>, its compile cache: the command keeps it
    # in the jersey-cls cache instead, unless TORCHINDUCTOR_CACHE_DIR says otherwise.
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(default_cache_dir() / "torchinductor"))
    from jersey_cls.cli import main as run

    run()


if __name__ == "__main__":
    main()
