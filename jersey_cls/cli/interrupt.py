"""Ctrl-C and SIGTERM during fit: stop after the current step with last.ckpt saved, and say how to resume."""

import shlex
import signal
import sys

from jersey_cls import lightning_internals as internals
from jersey_cls.messages import say


class Interrupts:
    """How a fit was stopped. The first Ctrl-C takes Lightning's SIGTERM path, so the step finishes, last.ckpt
    is saved and the resume is exact; a second aborts at once."""

    def __init__(self) -> None:
        self.fit_started = False
        self.stopped_by = "SIGTERM"
        self.previous_handler = None

    def watch(self, trainer) -> None:
        self.fit_started = True
        self.previous_handler = signal.getsignal(signal.SIGINT)

        def first_ctrl_c(signum, frame) -> None:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.stopped_by = "Ctrl-C"
            internals.request_stop(trainer)
            say(
                "\njersey-cls: Ctrl-C: stopping after this step and saving last.ckpt. "
                "Ctrl-C again aborts at once (last.ckpt then keeps its previous save).",
                file=sys.stderr,
            )

        signal.signal(signal.SIGINT, first_ctrl_c)

    def release(self) -> None:
        if self.previous_handler is not None:
            signal.signal(signal.SIGINT, self.previous_handler)

    @property
    def exit_code(self) -> int:
        return 130 if self.stopped_by == "Ctrl-C" else 143

    def print_resume_hint(self, args: list[str], reason: str | None = None) -> None:
        argv = list(args)
        if "--ckpt_path" in argv:
            i = argv.index("--ckpt_path")
            del argv[i : i + 2]
        argv = [arg for arg in argv if not arg.startswith("--ckpt_path=")]
        command = shlex.join(["jersey-cls", *argv, "--ckpt_path", "last"])
        reason = reason or self.stopped_by
        say(f"jersey-cls: stopped by {reason}; last.ckpt holds the latest step. Resume with:\n  {command}", sys.stderr)
