"""VGG conv stacks for 32x32 inputs with a single linear head (SPEC section 4).

The paper's VGG drops the two large dense layers of the ImageNet VGG, so the
flattened output of the last stage goes straight into the head. A *stage* is
a run of 3x3 convs closed by a 2x2 max-pool; per-stage channel multipliers let
later layers be widened (SPEC E7, paper Section 4).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

VGG_STAGES: dict[str, tuple[tuple[int, ...], ...]] = {
    # 32-M-64-M-128-M-128-M: the small VGG of the quick profile (SPEC E1).
    "vgg_small": ((32,), (64,), (128,), (128,)),
    "vgg11": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
}
"""Conv output channels per stage at width 1 (Simonyan & Zisserman configs A and D)."""


class VGG(nn.Module):
    """[Conv -> (BN) -> ReLU]* -> max-pool per stage, flatten, linear head.

    ``stages`` holds the (already width-scaled) output channels of each conv.
    Convs are 3x3 with padding 1; the first conv may use ``first_kernel`` (odd,
    padding ``first_kernel // 2``, so spatial size is kept). Input
    ``[N, in_channels, input_size, input_size]``; the head sees
    ``C_last * (input_size // 2**stages)**2`` features (``C_last`` at 32x32).
    """

    def __init__(
        self,
        stages: Sequence[Sequence[int]],
        in_channels: int,
        input_size: int,
        num_classes: int,
        batch_norm: bool = False,
        first_kernel: int = 3,
    ) -> None:
        super().__init__()
        n_pools = len(stages)
        if input_size < 2**n_pools:
            raise ValueError(
                f"a VGG with {n_pools} max-pool stages needs input_size >= {2**n_pools}; "
                f"got input_size={input_size}"
            )
        layers: list[nn.Module] = []
        prev = in_channels
        for stage in stages:
            for c in stage:
                k = first_kernel if not layers else 3
                layers.append(nn.Conv2d(prev, c, k, padding=k // 2))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(c))
                layers.append(nn.ReLU())
                prev = c
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.flatten = nn.Flatten()
        out_size = input_size // 2**n_pools
        self.num_features = prev * out_size * out_size
        self.head = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.flatten(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))
