"""Alignment of any model's layers with their inputs, pooled over models (seeds).

    from randlabels.analysis import align_models
    rows = align_models([model_seed0, model_seed1], images, layers=["conv1"])
    for r in rows: print(r.layer, r.misalignment.ratio)

Works on any ``torch.nn.Module``: layers are named as in
:func:`randlabels.models.analysable_layers` (Conv2d and Linear modules).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from randlabels.analysis.alignment import (
    MisalignmentResult,
    eigenvalue_function,
    misalignment_report,
)
from randlabels.analysis.covariance import Covariance, layer_input_covariance, weight_covariance
from randlabels.models import analysable_layers


@dataclass
class LayerAlignment:
    """One layer's alignment: its covariances, misalignment and f."""

    layer: str
    sigma_x: Covariance
    sigma_w: Covariance
    misalignment: MisalignmentResult
    eigenvalues: torch.Tensor  # data eigenvalues, descending [d]
    f: torch.Tensor  # f(lambda_i) [d]


def align_models(
    models: torch.nn.Module | Sequence[torch.nn.Module],
    inputs: torch.Tensor | Iterable,
    layers: Sequence[str] | None = None,
    *,
    num_random: int = 20,
    seed: int = 0,
) -> list[LayerAlignment]:
    """Misalignment and f of each named layer, with Sigma_w pooled over ``models``.

    Args:
        models: one model or several of the same architecture (seeds); their
            layers' weights are pooled into one Sigma_w (SPEC 2.2).
        inputs: standardized inputs ``[N, ...]`` (or an iterable of batches) fed to the
            first model to collect each layer's input covariance Sigma_x. For the
            first layer this is the data itself; deeper layers see the first model's
            features (pool only models whose earlier layers agree, e.g. the first layer).
        layers: analysable layer names; default the first layer.
    """
    models = [models] if isinstance(models, torch.nn.Module) else list(models)
    if not models:
        raise ValueError("align_models needs at least one model")
    available = analysable_layers(models[0])
    names = list(layers) if layers is not None else list(available)[:1]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown layers {unknown}; analysable layers are: {', '.join(available)}")
    batches = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
    rows = []
    for name in names:
        weights = []
        for i, m in enumerate(models):
            layer = analysable_layers(m).get(name)
            if layer is None:
                raise ValueError(f"model {i} has no layer {name!r}")
            weights.append(layer.weight.detach().cpu())
        sw = weight_covariance(weights)
        sx = layer_input_covariance(models[0], name, batches)
        rep = misalignment_report(sw, sx, num_random=num_random, seed=seed)
        lam, f = eigenvalue_function(sw, sx)
        rows.append(LayerAlignment(name, sx, sw, rep, lam, f))
    return rows
