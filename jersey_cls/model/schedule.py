"""The learning rate: a linear warm-up, then a cosine to zero at the run's last optimizer step."""

import math
from collections.abc import Callable


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """The share of the peak learning rate at each optimizer step: a linear warm-up over ``warmup_steps``, then a
    cosine to zero at ``total_steps``."""

    def share(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return share


def schedule_changes(old: dict, new: dict) -> str | None:
    """What a resume changes of the schedule the checkpoint ran on (``old``, with the ``step`` it stood at), and
    the learning rate before and after, in words; None when nothing changes."""
    changes = [
        message.format(new[key], old[key])
        for key, message in (
            ("total_steps", "the run now ends after {} optimizer steps, not {}"),
            ("warmup_steps", "the warm-up takes {} steps, not {}"),
            ("lr", "the peak learning rate is {:g}, not {:g}"),
        )
        if old[key] != new[key]
    ]
    if not changes:
        return None
    step = old["step"]
    before = old["lr"] * warmup_cosine(old["warmup_steps"], old["total_steps"])(step)
    after = new["lr"] * warmup_cosine(new["warmup_steps"], new["total_steps"])(step)
    return (
        f"{'; '.join(changes)}. The schedule follows the new values: at step {step} the learning rate goes from "
        f"{before:.3g} to {after:.3g}, and decays to zero at step {new['total_steps']}."
    )
