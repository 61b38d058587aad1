"""The temperature fitted on one set of crops makes the confidence on other crops more truthful."""

import numpy as np
import pytest
import torch

from jersey_cls.evaluation.calibration import fit_temperature

from .conftest import numpy_ece


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("overconfidence", [3.0, 0.4], ids=["too-sure", "too-unsure"])
def test_the_fitted_temperature_undoes_a_known_miscalibration_on_held_out_crops(overconfidence):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (6000, 10))
    targets = (rng.random((6000, 1)) < softmax(logits).cumsum(axis=1)).argmax(axis=1)  # drawn from the true odds
    scores = logits * overconfidence  # a model whose odds are off by a known temperature
    fitting, held_out = slice(0, 3000), slice(3000, None)
    temperature = fit_temperature(torch.tensor(scores[fitting]), torch.tensor(targets[fitting]))
    assert temperature == pytest.approx(overconfidence, rel=0.1)

    def ece(t: float) -> float:
        probabilities = softmax(scores[held_out] / t)
        return numpy_ece(probabilities.max(1), probabilities.argmax(1) == targets[held_out])

    assert ece(temperature) < 0.3 * ece(1.0)
    assert ece(temperature) < ece(overconfidence) + 0.01  # as good as knowing the true temperature
