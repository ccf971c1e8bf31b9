"""Activation statistics of ReLU layers (SPEC 2.8: specialization at later layers).

Per ReLU module, over a fixed probe batch: the activation rate (fraction of
(unit, example[, position]) outputs that are > 0), the number of dead units
(units whose output is 0 for every probe example and position) and the mean
activation magnitude.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from randlabels.models import relu_layers


@dataclass
class ActivationStats:
    layer: str
    units: int
    activation_rate: float
    dead_units: int
    mean_activation: float

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def activation_statistics(
    model: nn.Module, inputs: torch.Tensor | Iterable, layers: list[str] | None = None
) -> list[ActivationStats]:
    """Statistics of every ReLU output (or the named ones) of ``model`` on ``inputs``.

    Runs the model in eval mode (BatchNorm uses running statistics) and restores its
    mode and removes its hooks afterwards. A unit is a channel for conv feature maps
    ``[B, C, H, W]`` and a feature for ``[B, F]``.
    """
    relus = relu_layers(model)
    names = list(relus) if layers is None else list(layers)
    unknown = [n for n in names if n not in relus]
    if unknown:
        raise ValueError(f"unknown ReLU layers {unknown}; ReLU layers are: {', '.join(relus)}")
    acc: dict[str, dict] = {n: {"pos": 0, "total": 0, "sum": 0.0, "alive": None} for n in names}

    def make_hook(name):
        def hook(_module, _inputs, out):
            a = acc[name]
            positive = out > 0
            a["pos"] += int(positive.sum())
            a["total"] += out.numel()
            a["sum"] += float(out.double().sum())
            # Units are dim 1 (channels of a feature map, features of a vector).
            alive = positive.transpose(0, 1).reshape(out.shape[1], -1).any(dim=1)
            a["alive"] = alive if a["alive"] is None else (a["alive"] | alive)

        return hook

    handles = [relus[n].register_forward_hook(make_hook(n)) for n in names]
    was_training = model.training
    model.eval()
    try:
        batches = [inputs] if isinstance(inputs, torch.Tensor) else inputs
        for xb in batches:
            if isinstance(xb, (tuple, list)):
                xb = xb[0]
            model(xb)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    out = []
    for n in names:
        a = acc[n]
        if a["alive"] is None:
            raise ValueError(f"ReLU layer {n!r} produced no output on the given inputs")
        out.append(
            ActivationStats(
                layer=n,
                units=int(a["alive"].numel()),
                activation_rate=a["pos"] / a["total"],
                dead_units=int((~a["alive"]).sum()),
                mean_activation=a["sum"] / a["total"],
            )
        )
    return out
