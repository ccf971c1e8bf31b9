"""Classify the shape of an eigenvalue function f(sigma) (SPEC claim C4).

The paper's Figure 20 shows three shapes for three synthetic settings:
decreasing, rising to an interior peak then falling, and rising then
saturating. These rules, and their tolerance, are ours and were fixed before
any result was looked at.
"""

from __future__ import annotations

import torch

DECREASING = "decreasing"
INTERIOR_PEAK = "interior peak"
INCREASING_FLAT = "increasing then flat"
INCREASING = "increasing"
FLAT = "flat"


def smooth(values: torch.Tensor, window: int = 5) -> torch.Tensor:
    """Centered moving average (the window shrinks at the ends)."""
    v = values.double().flatten()
    half = window // 2
    return torch.stack([v[max(0, i - half) : i + half + 1].mean() for i in range(v.numel())])


def classify_shape(f: torch.Tensor, tol: float = 0.03, window: int = 5) -> str:
    """Shape of f sampled at increasing sigma.

    f is smoothed (moving average of ``window`` points) and divided by its mean.
    With ``rise`` = peak - first value and ``fall`` = peak - last value:
    decreasing if it never rises by ``tol`` and ends ``tol`` below its start;
    interior peak if it rises and falls by ``tol`` with the peak away from the ends;
    increasing then flat if it rises by ``tol``, does not fall by ``tol``, and its
    last third climbs less than half as much as its first third; increasing if it
    keeps climbing; flat otherwise.
    """
    s = smooth(torch.as_tensor(f), window)
    if s.numel() < 6:
        raise ValueError(f"need at least 6 points to classify a shape, got {s.numel()}")
    rel = s / s.mean()
    n = rel.numel()
    peak = int(rel.argmax())
    rise = float(rel[peak] - rel[0])
    fall = float(rel[peak] - rel[-1])
    if rise < tol and float(rel[0] - rel[-1]) >= tol:
        return DECREASING
    if rise >= tol and fall >= tol and 0 < peak < n - 1:
        return INTERIOR_PEAK
    if rise >= tol:
        third = n // 3
        first = float(rel[third] - rel[0])
        last = float(rel[-1] - rel[n - 1 - third])
        return INCREASING_FLAT if last < 0.5 * first else INCREASING
    return FLAT


def shape_numbers(f: torch.Tensor, window: int = 5) -> dict[str, float]:
    """The quantities :func:`classify_shape` decides on: relative rise to the peak, fall
    after it, and where the peak is (index into f), after the same smoothing."""
    s = smooth(torch.as_tensor(f), window)
    rel = s / s.mean()
    peak = int(rel.argmax())
    return {
        "rise": float(rel[peak] - rel[0]),
        "fall": float(rel[peak] - rel[-1]),
        "peak_index": peak,
    }
