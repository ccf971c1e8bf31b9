"""Confidence intervals, verdict rules and the f-shape classifier (SPEC section 5)."""

from __future__ import annotations

import pytest
import torch

from randlabels.analysis.shapes import classify_shape
from randlabels.analysis.stats import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    combine,
    estimate,
    verdict_greater_than,
    verdict_less_than,
)


def test_estimate_uses_student_t_interval():
    est = estimate([1.0, 2.0, 3.0])
    # mean 2, sd 1, t(2) = 4.303: half-width 4.303 / sqrt(3)
    assert est.mean == 2.0
    assert est.high - est.mean == pytest.approx(4.303 / 3**0.5)
    single = estimate([0.3])
    assert single.low is None and single.n == 1
    with pytest.raises(ValueError, match="at least one value"):
        estimate([])


def test_verdicts_follow_the_confidence_interval():
    assert verdict_less_than(estimate([0.1, 0.12, 0.11]), 0.5) == REPRODUCED
    assert verdict_less_than(estimate([0.9, 0.95, 0.92]), 0.5) == NOT_REPRODUCED
    assert verdict_less_than(estimate([0.2, 0.8, 0.5]), 0.5) == INCONCLUSIVE
    assert verdict_less_than(estimate([0.1]), 0.5) == INCONCLUSIVE  # no CI from one seed
    assert verdict_greater_than(estimate([1.0, 1.1, 1.2]), 0.0) == REPRODUCED
    assert combine([REPRODUCED, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine([REPRODUCED, NOT_REPRODUCED]) == NOT_REPRODUCED
    assert combine([REPRODUCED, REPRODUCED]) == REPRODUCED


@pytest.mark.parametrize(
    "curve,shape",
    [
        (lambda s: 0.38 - 0.02 * s, "decreasing"),
        (lambda s: 0.2 - 0.01 * (s - 1.0) ** 2, "interior peak"),
        (lambda s: 0.25 - 0.07 * torch.exp(-2 * s), "increasing then flat"),
        (lambda s: 0.18 + 0.02 * s, "increasing"),
        (lambda s: 0.2 + 0 * s, "flat"),
    ],
)
def test_shape_classifier_on_clean_curves(curve, shape):
    s = torch.linspace(0.1, 3.0, 30, dtype=torch.float64)
    assert classify_shape(curve(s)) == shape


def test_shape_classifier_is_robust_to_small_noise():
    g = torch.Generator().manual_seed(0)
    s = torch.linspace(0.1, 3.0, 30, dtype=torch.float64)
    noisy = 0.38 - 0.02 * s + 0.002 * torch.randn(30, generator=g, dtype=torch.float64)
    assert classify_shape(noisy) == "decreasing"
