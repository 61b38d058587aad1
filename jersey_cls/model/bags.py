"""Learning from labels given per player track (multiple-instance, partial-label learning): a frame of a track
with a number shows that number or nothing readable, at least one of its frames shows it, and every frame of an
illegible track shows nothing."""

import torch

# A track's evidence for a number below which it is illegible (-1), until one is fitted on validation tracks
# (evaluation.tracks): one frame's worth of certainty.
DEFAULT_TRACK_THRESHOLD = 1.0


def bag_loss(log_probs: torch.Tensor, targets: torch.Tensor, bags: torch.Tensor, illegible: int) -> torch.Tensor:
    """Negative log-likelihood of the track labels ``targets`` (the same for every frame of a bag) under the
    frames' class log-probabilities ``log_probs`` (N, classes); ``bags`` numbers each frame's bag.

    Per frame: log(p(number) + p(illegible)) in a bag with a number, log p(illegible) in an illegible one, so a
    frame may be either, and never another number. Per bag with a number: at_least_one's term, that its frames
    show it. Frames are averaged, bags are averaged, and the two are added."""
    number = log_probs.gather(1, targets[:, None])[:, 0]
    nothing = log_probs[:, illegible]
    legible = targets != illegible
    frames = torch.where(legible, torch.logaddexp(number, nothing), nothing)
    return -frames.mean() + at_least_one(number[legible], bags[legible])


def at_least_one(log_prob: torch.Tensor, bags: torch.Tensor) -> torch.Tensor:
    """-log(mean_i p_i) averaged over the bags, where ``log_prob`` is each frame's log-probability of its bag's
    label and ``bags`` numbers the frames' bags: the likelihood that a frame drawn from the bag shows the label.
    Its gradient on a frame is its share of the bag's summed probability, so it goes to the frames likeliest to
    show the label (the EM reading of which frames do, inside one fit), and it does not fade once one frame
    shows it, as a noisy-OR's does. The summed probability is also how a track is answered (evaluation.tracks).
    Zero for no frames."""
    if not len(log_prob):
        return log_prob.sum()
    _, bag = torch.unique(bags, return_inverse=True)
    count = int(bag.max()) + 1
    # log of each bag's summed probability, stably: the bag's largest log-probability taken out first
    top = torch.full((count,), -torch.inf, device=log_prob.device, dtype=log_prob.dtype)
    top = top.scatter_reduce(0, bag, log_prob.detach(), reduce="amax")
    summed = torch.zeros(count, device=log_prob.device, dtype=log_prob.dtype).index_add(
        0, bag, (log_prob - top[bag]).exp()
    )
    sizes = torch.zeros(count, device=log_prob.device, dtype=log_prob.dtype).index_add(
        0, bag, torch.ones_like(log_prob)
    )
    return -(summed.log() + top - sizes.log()).mean()
