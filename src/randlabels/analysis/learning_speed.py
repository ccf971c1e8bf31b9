"""Learning-speed metrics from accuracy curves, and paired comparisons (SPEC E1, E5).

A curve is two equal-length sequences: steps (increasing) and accuracies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from randlabels.analysis.stats import Estimate, estimate


def _check(steps: Sequence[float], acc: Sequence[float]) -> None:
    if len(steps) != len(acc) or not steps:
        raise ValueError(
            f"a curve needs equally many steps and accuracies (at least one), "
            f"got {len(steps)} and {len(acc)}"
        )
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise ValueError("curve steps must be strictly increasing")


def steps_to_target(steps: Sequence[float], acc: Sequence[float], target: float) -> float:
    """First step at which accuracy reaches ``target`` (linear interpolation between
    logged points); ``inf`` if it never does."""
    _check(steps, acc)
    if acc[0] >= target:
        return float(steps[0])
    for (s0, a0), (s1, a1) in zip(zip(steps, acc), zip(steps[1:], acc[1:])):
        if a1 >= target:
            return s0 + (s1 - s0) * (target - a0) / (a1 - a0) if a1 != a0 else float(s1)
    return math.inf


def area_under_curve(steps: Sequence[float], acc: Sequence[float]) -> float:
    """Trapezoidal area under accuracy vs steps, divided by the step span (a mean accuracy)."""
    _check(steps, acc)
    if len(steps) == 1:
        return float(acc[0])
    area = sum((s1 - s0) * (a0 + a1) / 2 for s0, s1, a0, a1 in zip(steps, steps[1:], acc, acc[1:]))
    return area / (steps[-1] - steps[0])


def accuracy_at(steps: Sequence[float], acc: Sequence[float], step: float) -> float:
    """Accuracy at ``step`` by linear interpolation (``nan`` outside the curve)."""
    _check(steps, acc)
    if step < steps[0] or step > steps[-1]:
        return math.nan
    for s0, s1, a0, a1 in zip(steps, steps[1:], acc, acc[1:]):
        if s0 <= step <= s1:
            return a0 + (a1 - a0) * (step - s0) / (s1 - s0)
    return float(acc[-1])


def paired_difference(variant: Sequence[float], baseline: Sequence[float]) -> Estimate:
    """Mean and 95% CI of per-seed differences ``variant - baseline`` (paired by seed).

    Infinite values (a target never reached) make the CI undefined: the estimate
    then has no interval.
    """
    if len(variant) != len(baseline):
        raise ValueError(f"paired values need equal counts, got {len(variant)} and {len(baseline)}")
    diffs = [v - b for v, b in zip(variant, baseline)]
    if any(not math.isfinite(d) for d in diffs):
        finite = [d for d in diffs if math.isfinite(d)]
        mean = sum(finite) / len(finite) if finite else math.nan
        return Estimate(mean, None, None, len(diffs), diffs)
    return estimate(diffs)
