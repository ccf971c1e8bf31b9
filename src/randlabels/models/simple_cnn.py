"""The paper's small CNN: "2-layer CNN, 256 filters followed by 64 fully connected nodes".

SPEC section 4 ``simple_cnn``: conv k×k (no padding, stride 1) -> ReLU ->
max-pool 2 -> flatten -> dense -> ReLU -> linear head. The first kernel is 3x3
for E2/E4b and 5x5 for E3.
"""

from __future__ import annotations

import torch
from torch import nn


class SimpleCNN(nn.Module):
    """Images ``[N, in_channels, input_size, input_size]`` -> logits ``[N, num_classes]``."""

    def __init__(
        self,
        in_channels: int,
        input_size: int,
        conv_channels: int,
        dense_units: int,
        num_classes: int,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        conv_size = input_size - kernel_size + 1
        if conv_size < 2:
            raise ValueError(
                f"simple_cnn needs input_size >= {kernel_size + 1} for a {kernel_size}x"
                f"{kernel_size} valid conv followed by a 2x2 max-pool; got input_size={input_size}"
            )
        pooled = conv_size // 2
        self.conv = nn.Conv2d(in_channels, conv_channels, kernel_size)
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(conv_channels * pooled * pooled, dense_units)
        self.relu2 = nn.ReLU()
        self.num_features = dense_units
        self.head = nn.Linear(dense_units, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu1(self.conv(x)))
        return self.relu2(self.fc(self.flatten(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))
