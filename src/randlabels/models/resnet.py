"""ResNet18 with the CIFAR stem (3x3 conv, stride 1, no max-pool); SPEC section 4.

BatchNorm is part of the architecture and always on. Every ReLU application is
its own module (two per block) so forward hooks on ReLUs see every activation
the specialization statistics of SPEC 2.8 need.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class BasicBlock(nn.Module):
    """conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus shortcut, -> ReLU (He et al. 2016)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        # Registered after conv2 because forward runs it after conv2: module order
        # is the forward order that analysable_layers promises.
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR-stem ResNet: stem, four stages of BasicBlocks, global average pool, head.

    ``stage_channels`` are the (already width-scaled) channels of the four
    stages; the first stage has stride 1, the others stride 2. Input
    ``[N, in_channels, H, W]``, any H, W >= 1.
    """

    def __init__(
        self,
        block_counts: Sequence[int],
        stage_channels: Sequence[int],
        stem_channels: int,
        in_channels: int,
        num_classes: int,
        first_kernel: int = 3,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, first_kernel, 1, first_kernel // 2, bias=False),
            nn.BatchNorm2d(stem_channels),
            nn.ReLU(),
        )
        prev = stem_channels
        for i, (n_blocks, c) in enumerate(zip(block_counts, stage_channels, strict=True)):
            blocks = []
            for j in range(n_blocks):
                blocks.append(BasicBlock(prev, c, stride=2 if i > 0 and j == 0 else 1))
                prev = c
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.n_stages = len(stage_channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.num_features = prev
        self.head = nn.Linear(prev, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i in range(self.n_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.flatten(self.pool(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))
