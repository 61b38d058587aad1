"""AtomicCheckpointIO: a checkpoint file is either the old one or the new one, never half of one."""

import os
import re
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import TorchCheckpointIO

from jersey_cls.messages import JerseyInputError
from jersey_cls.training.run_lock import alive


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temporary file beside the target, fsync, then rename over it.

    Lightning's own save stages through a temporary file in the system temp folder and moves it into place;
    when that folder is on another filesystem the move is a copy, and a kill during the copy leaves a
    truncated last.ckpt (and stray files outside the run folder). A rename within one folder is atomic.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            with open(staging, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(staging, target)
        except OSError as error:  # a full disk, a folder made read-only: one line, not two tracebacks
            kept = f"; the previous {target.name} is intact" if target.is_file() else ""
            raise JerseyInputError(
                f"cannot write {target}: {error.strerror or error}{kept}. Free some space or make the folder "
                "writable, then resume with --ckpt_path last."
            ) from None
        finally:
            staging.unlink(missing_ok=True)
        # Staging files of killed saves are never loaded (Lightning's "last" lookup skips dot-files); tidy those
        # whose writer is gone. Another live process's are its own, whatever checkpoint they are for.
        for stale in target.parent.glob(".*.tmp"):
            match = STAGING.fullmatch(stale.name)
            try:
                if match and not alive(int(match["pid"])):
                    stale.unlink(missing_ok=True)
            except OSError:
                pass  # a file left behind never fails a save that succeeded


STAGING = re.compile(r"\.(?P<target>[^/]+\.ckpt)\.(?P<pid>\d{1,9})\.tmp")
