"""A one-line diagnosis when a GPU is asked for and CUDA cannot be used, before Lightning's own error."""

import re
import subprocess
from pathlib import Path

import torch

from jersey_cls.messages import JerseyInputError

# The oldest NVIDIA driver branch each CUDA major version runs on (NVIDIA's CUDA compatibility tables).
DRIVER_NEEDED = {13: 580, 12: 525, 11: 450}


def driver_version() -> str | None:
    """The NVIDIA driver's version, or None when no driver answers."""
    proc = Path("/proc/driver/nvidia/version")
    if proc.is_file() and (found := re.search(r"Kernel Module\s+(\d+(?:\.\d+)+)", proc.read_text())):
        return found.group(1)
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else None


def check_cuda(accelerator: str) -> None:
    """Raise a JerseyInputError that says why, when ``accelerator`` asks for a GPU and CUDA is unusable."""
    if str(accelerator).lower() not in ("gpu", "cuda") or torch.cuda.is_available():
        return
    cuda = torch.version.cuda
    driver = driver_version()
    needed = DRIVER_NEEDED.get(int(cuda.split(".")[0])) if cuda else None
    build = (
        f"torch {torch.__version__} is built for CUDA {cuda}" if cuda else f"torch {torch.__version__} is a CPU build"
    )
    need = f", which needs an NVIDIA driver R{needed} or newer" if needed else ""
    found = f"the driver found is {driver}" if driver else "no NVIDIA driver was found"
    raise JerseyInputError(
        f"--trainer.accelerator {accelerator}: CUDA cannot be used. {build}{need}; {found}. Ways out: train on "
        "the CPU (--trainer.accelerator cpu --trainer.precision 32-true, or leave out t4.yaml), or install a "
        "torch build that matches your driver (https://pytorch.org/get-started/locally/)."
    )
