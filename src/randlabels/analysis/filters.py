"""Filters and eigenvectors as small images for display (paper Figure 3, SPEC E3)."""

from __future__ import annotations

import torch
from torch import Tensor


def filter_images(vectors: Tensor, channels: int, kernel_size: int) -> Tensor:
    """Rows in conv weight order ``[n, c*k*k]`` -> display tiles ``[n, k, k, c]`` in [0, 1].

    Each tile is scaled on its own, symmetrically around 0.5 by its largest
    ``|value|`` (0 -> 0.5, +max -> 1, -max -> 0), so the sign pattern stays
    visible; an all-zero tile is uniform 0.5. ``channels=1`` gives ``[n, k, k, 1]``
    (grayscale). Returned as float32 on the CPU, ready for ``imshow``.
    """
    for name, value in (("channels", channels), ("kernel_size", kernel_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    d = channels * kernel_size * kernel_size
    if not isinstance(vectors, Tensor) or vectors.dim() != 2 or vectors.shape[1] != d:
        got = tuple(vectors.shape) if isinstance(vectors, Tensor) else type(vectors).__name__
        raise ValueError(
            f"expected vectors [n, {d}] ({kernel_size}x{kernel_size}x{channels}); got {got}"
        )
    v = vectors.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(v).all()):
        raise ValueError("vectors contain NaN or Inf")
    scale = v.abs().amax(dim=1, keepdim=True)
    scaled = 0.5 + 0.5 * v / torch.where(scale > 0, scale, torch.ones_like(scale))
    tiles = scaled.reshape(-1, channels, kernel_size, kernel_size).permute(0, 2, 3, 1)
    return tiles.clamp(0, 1).to(torch.float32).contiguous()
