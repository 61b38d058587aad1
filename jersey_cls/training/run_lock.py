"""RunLock: one fit at a time in a run folder. A second fit there (another terminal, a re-submitted cluster job)
would write the same checkpoints and logs; it is refused at once, naming the holder."""

import atexit
import json
import os
import socket
import time
from pathlib import Path

from jersey_cls.messages import JerseyInputError, say

LOCK_FILE = ".fit.lock"
# Set for the processes a DDP launcher (torchrun, Lightning's, SLURM's srun, LSF's jsrun) starts beside rank 0.
DDP_RANKS = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def alive(pid: int) -> bool:
    """Whether another process with this pid may be running (on this machine)."""
    if pid == os.getpid():
        return False  # this process: an earlier command in it has ended
    if os.name == "nt":
        return True  # os.kill(pid, 0) would end that process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    return True


class RunLock:
    """``<run>/.fit.lock`` holds the pid, host and start time of the fit that owns the run folder; created
    exclusively, removed when the command ends. A lock whose process is gone from this machine is taken over."""

    def __init__(self) -> None:
        self.path: Path | None = None

    def acquire(self, run: Path) -> None:
        if any(os.environ.get(name, "0") != "0" for name in DDP_RANKS):
            return  # a DDP rank beside rank 0, which holds the lock for the run
        run.mkdir(parents=True, exist_ok=True)
        path = run / LOCK_FILE
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(3):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder(path)
                if holder is None:
                    continue  # its holder has just ended
                if holder and (holder.get("host") != me["host"] or alive(int(holder.get("pid", 0)))):
                    raise JerseyInputError(
                        f"{run} is in use by another jersey-cls fit: pid {holder.get('pid', '?')} on "
                        f"{holder.get('host', '?')}, since {holder.get('since', '?')}. Wait for it to end, or give "
                        f"this fit its own --trainer.default_root_dir. If that process is gone (it ran on another "
                        f"machine, say), delete {path}."
                    ) from None
                pid = holder.get("pid", "?")
                say(f"jersey-cls: note: {path} names pid {pid}, which has ended; this fit takes the run over")
                path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.path = path
            atexit.register(self.release)
            return
        raise JerseyInputError(f"{run}: another fit keeps taking {path}; give this fit its own run folder.")

    @staticmethod
    def _holder(path: Path) -> dict | None:
        """What the lock says ({} when it cannot be read: a stale lock); None when there is none."""
        for _ in range(20):  # a lock just created is written a moment later
            try:
                holder = json.loads(path.read_text())
                if isinstance(holder, dict) and isinstance(holder.get("pid"), int):
                    return holder
            except FileNotFoundError:
                return None
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        return {}

    def release(self) -> None:
        if self.path is not None and (self._holder(self.path) or {}).get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        self.path = None
