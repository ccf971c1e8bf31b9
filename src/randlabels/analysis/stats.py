"""Means, 95% confidence intervals over seeds, and claim verdicts (SPEC section 5)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom; 1.96 beyond.
_T975 = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
]  # fmt: skip


@dataclass
class Estimate:
    """Mean over seeds with a t-based 95% confidence interval (None with one seed)."""

    mean: float
    low: float | None
    high: float | None
    n: int
    values: list[float]

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        if self.low is None:
            return f"{self.mean:.4g} (n={self.n}, no CI)"
        return f"{self.mean:.4g} [{self.low:.4g}, {self.high:.4g}] (n={self.n})"


def t_quantile_975(df: int) -> float:
    return _T975[df - 1] if df <= len(_T975) else 1.96


def estimate(values: Sequence[float]) -> Estimate:
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("estimate needs at least one value, got none")
    n = len(vals)
    mean = sum(vals) / n
    if n < 2:
        return Estimate(mean, None, None, n, vals)
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    half = t_quantile_975(n - 1) * sd / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n, vals)


REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"


@dataclass
class Verdict:
    """One claim of SPEC section 5 as measured here."""

    claim: str  # "C1"
    statement: str  # the paper's statement, in short
    statistic: str  # what was measured, e.g. "M_data / mean(M_random), first layer"
    estimate: dict | None  # Estimate.to_dict(), or None for composite claims
    threshold: str  # e.g. "< 0.5"
    verdict: str  # reproduced | not reproduced | inconclusive
    profile: str = ""
    data: str = ""
    detail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def verdict_less_than(est: Estimate, threshold: float) -> str:
    """Reproduced when the whole CI is below the threshold, not when it is all above."""
    if est.low is None:
        return INCONCLUSIVE
    if est.high < threshold:
        return REPRODUCED
    if est.low >= threshold:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def verdict_greater_than(est: Estimate, threshold: float) -> str:
    if est.low is None:
        return INCONCLUSIVE
    if est.low > threshold:
        return REPRODUCED
    if est.high <= threshold:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def combine(verdicts: Sequence[str]) -> str:
    """A claim made of several parts: reproduced only if every part is."""
    if any(v == NOT_REPRODUCED for v in verdicts):
        return NOT_REPRODUCED
    if all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    return INCONCLUSIVE
