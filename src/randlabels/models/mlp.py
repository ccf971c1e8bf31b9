"""Fully connected ReLU network (SPEC section 4 ``mlp``; paper Appendix E.1, Figure 20)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MLP(nn.Module):
    """Flatten -> [Linear -> ReLU] per hidden width -> Linear head.

    Takes ``[N, in_features]`` vectors (the synthetic Gaussian data) or images
    ``[N, C, H, W]`` with ``C*H*W == in_features``; returns logits ``[N, num_classes]``.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.in_features = in_features
        layers: list[nn.Module] = []
        prev = in_features
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.ReLU()]
            prev = h
        self.flatten = nn.Flatten()
        self.features = nn.Sequential(*layers)
        self.num_features = prev
        self.head = nn.Linear(prev, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x[0].numel() != self.in_features:
            raise ValueError(
                f"mlp expects inputs [N, {self.in_features}] or [N, C, H, W] with "
                f"C*H*W = {self.in_features}; got shape {list(x.shape)}"
            )
        return self.features(self.flatten(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))
