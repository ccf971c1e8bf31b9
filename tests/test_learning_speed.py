"""Learning-speed metrics of SPEC E1/E5."""

import math

import pytest

from randlabels.analysis.learning_speed import (
    accuracy_at,
    area_under_curve,
    paired_difference,
    steps_to_target,
)

STEPS = [0, 100, 200, 300]
ACC = [0.1, 0.4, 0.7, 0.8]


def test_steps_to_target_interpolates_and_reports_never():
    assert steps_to_target(STEPS, ACC, 0.55) == pytest.approx(150.0)
    assert steps_to_target(STEPS, ACC, 0.1) == 0
    assert steps_to_target(STEPS, ACC, 0.9) == math.inf


def test_area_and_accuracy_at_a_step():
    # trapezoids: 100*(0.25 + 0.55 + 0.75) / 300
    assert area_under_curve(STEPS, ACC) == pytest.approx(1.55 / 3)
    assert accuracy_at(STEPS, ACC, 250) == pytest.approx(0.75)
    assert math.isnan(accuracy_at(STEPS, ACC, 400))


def test_paired_difference_and_bad_curves():
    est = paired_difference([100, 120, 110], [150, 160, 170])
    assert est.mean == pytest.approx(-50) and est.high < 0
    assert paired_difference([100, math.inf], [150, 160]).low is None
    with pytest.raises(ValueError, match="strictly increasing"):
        steps_to_target([0, 0], [0.1, 0.2], 0.5)
    with pytest.raises(ValueError, match="equally many"):
        area_under_curve([0, 1], [0.1])
