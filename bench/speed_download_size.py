"""What `pip install -r requirements.lock` downloads on each platform, from PyPI's file sizes.

    python bench/speed_download_size.py            # needs uv (requirements-test.lock) and access to pypi.org

Resolves the lock for each platform with uv (resolution only), then sums, per package, the size of the
largest platform-specific wheel that installs there for CPython 3.11 (the pure-Python wheel when there is
none): an upper bound on what pip downloads, close to it since a package's wheels for one platform differ
little in size.
"""

import argparse
import json
import os
import re
import subprocess
import tempfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import REPO

PLATFORMS = {  # uv's platform name: the wheel platform tags that install there
    "x86_64-manylinux_2_28": ("manylinux", "x86_64"),
    "aarch64-apple-darwin": ("macosx", "arm64"),
    "x86_64-pc-windows-msvc": ("win_amd64", ""),
}
PYTHON_TAGS = ("py3", "py2.py3", "cp311", "py311")


def resolve(platform: str) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "lock.txt"
        subprocess.run(
            ["uv", "pip", "compile", "pyproject.toml", "--extra", "export", "--python-platform", platform,
             "--python-version", "3.11", "--constraint", "requirements.lock", "--no-header", "--quiet",
             "--output-file", str(out)],
            cwd=REPO, check=True, env={**os.environ, "MACOSX_DEPLOYMENT_TARGET": "14.0"},
        )  # fmt: skip
        return re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", out.read_text(), re.M)


def installs_on(filename: str, tags: tuple[str, str]) -> bool:
    python, abi, platform = filename.removesuffix(".whl").split("-")[-3:]
    python_ok = any(tag in PYTHON_TAGS for tag in python.split(".")) or abi == "abi3"
    universal = "universal2" in platform and tags[0] == "macosx"
    return python_ok and (platform == "any" or all(tag in platform for tag in tags) or universal)


def wheel_size(name: str, version: str, tags: tuple[str, str]) -> int:
    request = urllib.request.Request(
        f"https://pypi.org/simple/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    files = json.load(urllib.request.urlopen(request, timeout=60))["files"]

    def normal(text: str) -> str:
        return re.sub(r"[-_.]+", "_", text).lower()

    wheels = [
        f for f in files
        if f["filename"].endswith(".whl") and [normal(part) for part in f["filename"].split("-")[:2]]
        == [normal(name), normal(version)] and installs_on(f["filename"], tags)
    ]  # fmt: skip
    platform_specific = [f for f in wheels if not f["filename"].endswith("-any.whl")]
    return max(f["size"] for f in platform_specific or wheels) if wheels else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    for platform, tags in PLATFORMS.items():
        pins = resolve(platform)
        with ThreadPoolExecutor(8) as pool:
            sizes = dict(
                zip(
                    (n for n, _ in pins),
                    pool.map(wheel_size, *zip(*pins, strict=True), [tags] * len(pins)),
                    strict=True,
                )
            )
        cuda = sum(size for name, size in sizes.items() if name.startswith(("nvidia", "cuda", "triton")))
        print(
            f"{platform}: {len(pins)} packages, {sum(sizes.values()) / 1e9:.2f} GB; "
            f"of which NVIDIA and CUDA libraries {cuda / 1e9:.2f} GB, torch {sizes.get('torch', 0) / 1e6:.0f} MB"
        )


if __name__ == "__main__":
    main()
