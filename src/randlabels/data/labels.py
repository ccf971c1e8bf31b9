"""Label regimes and disjoint splits of a training pool (SPEC section 3).

Every random choice here is a pure function of an explicit seed, so the same
config always gives the same splits and labels, and a run can record them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from randlabels.data.dataset import DataError


@dataclass(frozen=True)
class LabelRegime:
    """``real``, ``random:K`` (uniform over K classes) or ``corrupt:P`` (fraction P replaced)."""

    kind: str
    num_classes: int | None = None
    fraction: float | None = None

    def __str__(self) -> str:
        if self.kind == "random":
            return f"random:{self.num_classes}"
        if self.kind == "corrupt":
            return f"corrupt:{self.fraction:g}"
        return "real"


_REGIME_HELP = "expected 'real', 'random:K' with an integer K >= 1, or 'corrupt:P' with 0 <= P <= 1"


def parse_label_regime(text: str) -> LabelRegime:
    """Parse ``"real"``, ``"random:10"`` or ``"corrupt:0.5"``."""
    if not isinstance(text, str):
        raise DataError(f"label regime: {_REGIME_HELP}; got {text!r}")
    text = text.strip()
    if text == "real":
        return LabelRegime("real")
    m = re.fullmatch(r"random:(\d+)", text)
    if m:
        k = int(m.group(1))
        if k < 1:
            raise DataError(f"label regime: {_REGIME_HELP}; got {text!r}")
        return LabelRegime("random", num_classes=k)
    m = re.fullmatch(r"corrupt:([0-9.eE+-]+)", text)
    if m:
        try:
            p = float(m.group(1))
        except ValueError:
            p = -1.0
        if not 0.0 <= p <= 1.0:
            raise DataError(f"label regime: {_REGIME_HELP}; got {text!r}")
        return LabelRegime("corrupt", fraction=p)
    raise DataError(f"label regime: {_REGIME_HELP}; got {text!r}")


def apply_label_regime(
    true_labels: torch.Tensor, regime: str | LabelRegime, num_classes: int, seed: int
) -> tuple[torch.Tensor, int]:
    """Labels for one training set under a regime.

    Args:
        true_labels: int64 ``[N]``, the dataset's real labels.
        regime: see :func:`parse_label_regime`.
        num_classes: number of real classes.
        seed: the label seed; the result is a pure function of (labels, regime, seed).

    Returns:
        ``(labels, k)``: int64 ``[N]`` labels and the number of classes the head needs.
        For ``corrupt:P`` exactly ``round(P * N)`` examples, chosen at random, get a
        label drawn uniformly from the ``num_classes`` classes (it may equal the real one,
        as in Zhang et al. 2017).
    """
    if isinstance(regime, str):
        regime = parse_label_regime(regime)
    g = torch.Generator().manual_seed(int(seed))
    n = true_labels.shape[0]
    if regime.kind == "real":
        return true_labels.clone(), num_classes
    if regime.kind == "random":
        k = int(regime.num_classes)
        return torch.randint(0, k, (n,), generator=g, dtype=torch.int64), k
    labels = true_labels.clone()
    n_corrupt = int(round(regime.fraction * n))
    idx = torch.randperm(n, generator=g)[:n_corrupt]
    labels[idx] = torch.randint(0, num_classes, (n_corrupt,), generator=g, dtype=torch.int64)
    return labels, num_classes


def disjoint_splits(n: int, sizes: Sequence[int], seed: int) -> list[torch.Tensor]:
    """Disjoint random subsets of ``range(n)`` with the given sizes.

    The paper's VGG16 transfer uses 20k upstream and 25k downstream images drawn
    from the CIFAR-10 training set, never overlapping.

    Returns one sorted int64 index tensor per size.
    """
    sizes = [int(s) for s in sizes]
    if any(s <= 0 for s in sizes):
        raise DataError(f"split sizes must be positive integers, got {sizes}")
    if sum(sizes) > n:
        raise DataError(
            f"split sizes {sizes} add up to {sum(sizes)} but the training pool has only {n} "
            f"examples; splits must be disjoint, so their total must be <= {n}"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    out, start = [], 0
    for s in sizes:
        out.append(perm[start : start + s].sort().values)
        start += s
    return out


def check_disjoint(indices: Sequence[torch.Tensor]) -> None:
    """Raise if any two index sets overlap (for user-given splits)."""
    seen: dict[int, int] = {}
    for i, idx in enumerate(indices):
        for j in idx.tolist():
            if j in seen:
                raise DataError(
                    f"splits {seen[j]} and {i} overlap (both contain example {j}); "
                    "upstream and downstream sets must be disjoint"
                )
            seen[j] = i
