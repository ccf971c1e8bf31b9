"""In-place initializers, named like ``torch.nn.init``: they change a module and return it.

SPEC section 4: ``init_scale`` multiplies the standard initialization std of
every layer, and the first layer may get its own absolute std. The paper's
Figure 4 shows f ≈ 0.002 at initialization for the simple CNN, far below
PyTorch's default for that layer (≈ 0.1); a small first-layer std is what
makes the structure learned from random labels visible (SPEC E2, E4b).

Sampling goes through an optional ``torch.Generator`` so that a seed fixes the
weights without touching the global RNG. Values are drawn on the generator's
device and copied, so a seed gives the same weights on CPU and GPU.
"""

from __future__ import annotations

import math

import torch
from torch import nn

INIT_SCHEMES = ("he", "lecun", "torch")
"""``he``: N(0, 2/fan_in); ``lecun``: N(0, 1/fan_in) (SPEC E4a); ``torch``: PyTorch's default."""

ANALYSABLE_TYPES = (nn.Conv2d, nn.Linear)
"""Layers whose incoming weight vectors the analysis studies (SPEC 2.2)."""

_NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)


def _check_scheme(init: str, init_scale: float) -> None:
    if init not in INIT_SCHEMES:
        raise ValueError(f"init must be one of {', '.join(INIT_SCHEMES)}; got {init!r}")
    _check_positive("init_scale", init_scale)


def _check_positive(what: str, value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{what} must be a positive finite number; got {value!r}")


def _fill_(t: torch.Tensor, generator: torch.Generator | None, sample) -> None:
    """Fill ``t`` with ``sample(tensor, generator)``, drawing on the generator's device."""
    if generator is None or generator.device == t.device:
        sample(t, generator)
    else:
        t.copy_(sample(torch.empty(t.shape, dtype=t.dtype, device=generator.device), generator))


def _normal_(t: torch.Tensor, std: float, generator: torch.Generator | None) -> None:
    _fill_(t, generator, lambda x, g: x.normal_(0.0, std, generator=g))


def _uniform_(t: torch.Tensor, bound: float, generator: torch.Generator | None) -> None:
    _fill_(t, generator, lambda x, g: x.uniform_(-bound, bound, generator=g))


def fan_in(layer: nn.Module) -> int:
    """Length of one incoming weight vector: ``in_features`` or ``in_channels/groups * k*k``."""
    return layer.weight[0].numel()


def init_layer_(
    layer: nn.Module,
    init: str = "he",
    init_scale: float = 1.0,
    std: float | None = None,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Initialize one ``Conv2d`` or ``Linear`` layer in place and return it.

    Weights: ``he`` ~ N(0, (init_scale·sqrt(2/fan_in))²); ``lecun`` ~
    N(0, (init_scale/sqrt(fan_in))²); ``torch`` ~ U(±1/sqrt(fan_in)) (PyTorch's
    ``kaiming_uniform_(a=sqrt(5))``) times ``init_scale``. ``std``, if given,
    overrides all of these with N(0, std²). Biases are 0, except for ``torch``
    where they are U(±1/sqrt(fan_in)) as in PyTorch's ``reset_parameters``.
    """
    if not isinstance(layer, ANALYSABLE_TYPES):
        raise TypeError(f"init_layer_ expects nn.Conv2d or nn.Linear; got {type(layer).__name__}")
    _check_scheme(init, init_scale)
    if std is not None:
        _check_positive("std", std)
    n = fan_in(layer)
    with torch.no_grad():
        if std is not None:
            _normal_(layer.weight, std, generator)
        elif init == "he":
            _normal_(layer.weight, init_scale * math.sqrt(2.0 / n), generator)
        elif init == "lecun":
            _normal_(layer.weight, init_scale / math.sqrt(n), generator)
        else:
            _uniform_(layer.weight, 1.0 / math.sqrt(n), generator)
            layer.weight.mul_(init_scale)
        if layer.bias is not None:
            if init == "torch":
                _uniform_(layer.bias, 1.0 / math.sqrt(n), generator)
            else:
                layer.bias.zero_()
    return layer


def init_weights_(
    model: nn.Module,
    init: str = "he",
    init_scale: float = 1.0,
    first_layer_std: float | None = None,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Re-initialize every parameter (and normalization buffer) of ``model`` in place.

    Conv/linear layers follow :func:`init_layer_`, visited in module order; the
    first of them gets std ``first_layer_std`` when it is given (SPEC E2/E4b use
    0.002). Normalization layers get weight 1, bias 0 and fresh running
    statistics. A module type with parameters that is not known here raises
    ``TypeError`` rather than being left half-initialized.
    """
    _check_scheme(init, init_scale)
    if first_layer_std is not None:
        _check_positive("first_layer_std", first_layer_std)
    unknown = [
        f"{name} ({type(m).__name__})"
        for name, m in model.named_modules()
        if not isinstance(m, ANALYSABLE_TYPES + _NORM_TYPES)
        and any(True for _ in m.parameters(recurse=False))
    ]
    if unknown:
        raise TypeError(f"init_weights_ does not know how to initialize: {', '.join(unknown)}")
    first = True
    for m in model.modules():
        if isinstance(m, ANALYSABLE_TYPES):
            init_layer_(m, init, init_scale, first_layer_std if first else None, generator)
            first = False
        elif isinstance(m, _NORM_TYPES):
            with torch.no_grad():
                if m.weight is not None:
                    m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
    return model
