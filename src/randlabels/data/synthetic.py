"""Synthetic Gaussian data with labels independent of the inputs (SPEC E4a; paper Appendix E.1).

x ~ N(0, diag(s_1..s_d)) where the s_i are variances, labels uniform over the
classes. The paper's two diagonals are the presets ``gaussian10``
(1.0, 1.1, ..., 1.9) and ``gaussian30`` (0.1, 0.2, ..., 3.0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from randlabels.data.dataset import ArrayDataset, DataError

GAUSSIAN_PRESETS: dict[str, tuple[float, ...]] = {
    "gaussian10": tuple(round(1.0 + 0.1 * i, 10) for i in range(10)),
    "gaussian30": tuple(round(0.1 * (i + 1), 10) for i in range(30)),
}


def gaussian_dataset(
    variances: Sequence[float] | torch.Tensor,
    n_train: int,
    n_test: int = 0,
    num_classes: int = 10,
    seed: int = 0,
    *,
    name: str = "gaussian",
) -> ArrayDataset:
    """Draw ``n_train`` (+ ``n_test``) points x ~ N(0, diag(variances)) with uniform labels.

    Returns float32 inputs ``[N, d]`` (d = len(variances)) and int64 labels
    ``[N]`` in ``range(num_classes)``, independent of x. Everything is a
    function of ``seed``; the training points do not depend on ``n_test`` and
    the test points do not depend on ``n_train`` (separate random streams).
    ``n_test=0`` gives no test split.
    """
    var = torch.as_tensor(variances, dtype=torch.float64).flatten()
    if var.numel() == 0 or not torch.isfinite(var).all() or (var < 0).any():
        raise DataError(f"variances must be finite and >= 0, got {var.tolist()}")
    if n_train < 1 or n_test < 0:
        raise DataError(f"need n_train >= 1 and n_test >= 0, got {n_train} and {n_test}")
    if num_classes < 1:
        raise DataError(f"num_classes must be >= 1, got {num_classes}")
    std = var.sqrt()

    def draw(n: int, stream: int) -> tuple[torch.Tensor, torch.Tensor]:
        state = np.random.SeedSequence([int(seed), stream]).generate_state(2, dtype=np.uint64)
        gen_x = torch.Generator().manual_seed(int(state[0]))
        gen_y = torch.Generator().manual_seed(int(state[1]))
        x = torch.randn(n, var.numel(), generator=gen_x, dtype=torch.float64) * std
        y = torch.randint(num_classes, (n,), generator=gen_y, dtype=torch.int64)
        return x.to(torch.float32), y

    train_x, train_y = draw(n_train, 0)
    test_x, test_y = draw(n_test, 1) if n_test > 0 else (None, None)
    return ArrayDataset(
        name=name,
        train_x=train_x,
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        classes=[str(i) for i in range(num_classes)],
        source="synthetic",
        meta={"variances": var.tolist(), "seed": int(seed)},
    )


def gaussian_preset(
    name: str, n_train: int = 10_000, n_test: int = 0, num_classes: int = 10, seed: int = 0
) -> ArrayDataset:
    """One of the paper's Gaussian sets by name (``gaussian10`` or ``gaussian30``)."""
    if name not in GAUSSIAN_PRESETS:
        raise DataError(
            f"unknown Gaussian preset {name!r}; expected one of {sorted(GAUSSIAN_PRESETS)}"
        )
    return gaussian_dataset(GAUSSIAN_PRESETS[name], n_train, n_test, num_classes, seed, name=name)
