"""One constructor for every model, and uniform access to their layers (timm-like).

    model = create_model("simple_cnn", first_layer_std=0.002, seed=0)
    for name, layer in analysable_layers(model).items(): ...   # conv/linear, forward order
    reset_head_(model, num_classes=10)                          # new task, new head

Every model takes the same keyword arguments. One that a model does not use
is accepted only at its default, so a setting never silently does nothing.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from numbers import Integral, Real

import torch
from torch import nn

from .init import ANALYSABLE_TYPES, INIT_SCHEMES, init_layer_, init_weights_
from .mlp import MLP
from .resnet import ResNet
from .simple_cnn import SimpleCNN
from .vgg import VGG, VGG_STAGES

MLP_WIDTHS = (2048, 256)  # SPEC E4a, the paper's Figure 20 networks
SIMPLE_CNN_WIDTHS = (256, 64)  # paper: "256 filters followed by 64 fully connected nodes"
RESNET18_BLOCKS = (2, 2, 2, 2)
RESNET18_CHANNELS = (64, 128, 256, 512)


def _scaled(base: int, mult: float, where: str) -> int:
    n = round(base * mult)
    if n < 1:
        raise ValueError(
            f"{where}: {base} units x multiplier {mult:g} rounds to {n}; expected a "
            f"multiplier >= {0.5 / base:.3g} so that the layer keeps at least one unit"
        )
    return n


def _stage_multipliers(stage_widths: Sequence[float] | None, n: int, name: str) -> list[float]:
    if stage_widths is None:
        return [1.0] * n
    if len(stage_widths) != n:
        raise ValueError(
            f"{name} has {n} stages, so stage_widths needs {n} multipliers; "
            f"got {len(stage_widths)}: {tuple(stage_widths)}"
        )
    return list(stage_widths)


# Builders: each takes exactly the create_model arguments its architecture uses
# (read from its signature); the init arguments are handled by create_model.


def _mlp(*, num_classes: int, in_channels: int, input_size: int, width: float, widths) -> MLP:
    hidden = [
        _scaled(w, width, f"mlp hidden layer {i}")
        for i, w in enumerate(MLP_WIDTHS if widths is None else widths)
    ]
    return MLP(in_channels * input_size * input_size, hidden, num_classes)


def _simple_cnn(
    *, num_classes: int, in_channels: int, input_size: int, width: float, first_kernel: int, widths
) -> SimpleCNN:
    widths = SIMPLE_CNN_WIDTHS if widths is None else widths
    if len(widths) != 2:
        raise ValueError(
            f"simple_cnn widths are (conv filters, dense units); expected 2 numbers, "
            f"got {len(widths)}: {tuple(widths)}"
        )
    return SimpleCNN(
        in_channels,
        input_size,
        conv_channels=_scaled(widths[0], width, "simple_cnn conv"),
        dense_units=_scaled(widths[1], width, "simple_cnn dense"),
        num_classes=num_classes,
        kernel_size=first_kernel,
    )


def _vgg(
    arch: str,
    *,
    num_classes: int,
    in_channels: int,
    input_size: int,
    width: float,
    first_kernel: int,
    batch_norm: bool,
    stage_widths,
) -> VGG:
    base = VGG_STAGES[arch]
    mults = _stage_multipliers(stage_widths, len(base), arch)
    stages = [
        [_scaled(c, width * m, f"{arch} stage {s}") for c in stage]
        for s, (stage, m) in enumerate(zip(base, mults, strict=True))
    ]
    return VGG(stages, in_channels, input_size, num_classes, batch_norm, first_kernel)


def _resnet18(
    *,
    num_classes: int,
    in_channels: int,
    input_size: int,
    width: float,
    first_kernel: int,
    batch_norm: bool,
    stage_widths,
) -> ResNet:
    # batch_norm is accepted with either value and ignored: BatchNorm is part of
    # the ResNet architecture and always on.
    mults = _stage_multipliers(stage_widths, len(RESNET18_CHANNELS), "resnet18")
    channels = [
        _scaled(c, width * m, f"resnet18 stage {s}")
        for s, (c, m) in enumerate(zip(RESNET18_CHANNELS, mults, strict=True))
    ]
    stem = _scaled(RESNET18_CHANNELS[0], width, "resnet18 stem")
    return ResNet(RESNET18_BLOCKS, channels, stem, in_channels, num_classes, first_kernel)


_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "mlp": _mlp,
    "simple_cnn": _simple_cnn,
    "vgg_small": functools.partial(_vgg, "vgg_small"),
    "vgg11": functools.partial(_vgg, "vgg11"),
    "vgg16": functools.partial(_vgg, "vgg16"),
    "resnet18": _resnet18,
}

MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, in registry order."""
    return list(MODEL_NAMES)


def _check_int(what: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _check_positive(what: str, value) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{what} must be a positive finite number; got {value!r}")
    return float(value)


def _check_sequence(what: str, value, check) -> tuple | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{what} must be a sequence of numbers or None; got {value!r}")
    return tuple(check(f"{what}[{i}]", v) for i, v in enumerate(value))


def create_model(
    name: str,
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    input_size: int = 32,
    width: float = 1.0,
    init_scale: float = 1.0,
    first_kernel: int = 3,
    init: str = "he",
    first_layer_std: float | None = None,
    batch_norm: bool = False,
    widths: Sequence[int] | None = None,
    stage_widths: Sequence[float] | None = None,
    seed: int | None = None,
) -> nn.Module:
    """Build and initialize the model ``name`` (one of :data:`MODEL_NAMES`).

    Every model maps images ``[N, in_channels, input_size, input_size]`` to
    logits ``[N, num_classes]``; ``mlp`` also takes vectors ``[N, d]`` with
    ``d = in_channels * input_size**2`` (synthetic data: ``in_channels=d,
    input_size=1``). Every model has ``.head`` (its last ``nn.Linear``),
    ``.num_features`` (the head's input size), ``.forward_features(x)`` and
    ``.config`` (the arguments it was built with).

    Architecture arguments, and the models that use them:

    - ``width``: multiplies every channel/unit count (all models).
    - ``first_kernel``: odd kernel size of the first conv (simple_cnn, vgg*,
      resnet18; "same" padding except in simple_cnn, whose conv is valid).
    - ``widths``: hidden widths of mlp (default (2048, 256)); (conv filters,
      dense units) of simple_cnn (default (256, 64)). ``width`` multiplies them.
    - ``stage_widths``: one multiplier per conv stage on top of ``width``
      (vgg_small: 4, vgg11/vgg16: 5, resnet18: 4 stages, stem excluded), to
      widen later layers (SPEC E7).
    - ``batch_norm``: BatchNorm after each conv of vgg*. resnet18 always has
      BatchNorm and ignores this flag.

    Initialization (all models, see :func:`init_weights_`): ``init`` in
    ``he``/``lecun``/``torch``, ``init_scale`` multiplies its std,
    ``first_layer_std`` sets the first layer's absolute std. With ``seed`` the
    weights come from a local ``torch.Generator`` and the global RNG is left
    untouched; without it they come from the global RNG.

    Raises ``ValueError`` for an unknown name, an invalid number, an input too
    small for the architecture, or a non-default argument the model does not use.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; expected one of: {', '.join(MODEL_NAMES)}")
    if (
        isinstance(first_kernel, bool)
        or not isinstance(first_kernel, Integral)
        or first_kernel < 1
        or first_kernel % 2 == 0
    ):
        raise ValueError(
            f"first_kernel must be a positive odd integer (3, 5, ...); got {first_kernel!r}"
        )
    if not isinstance(batch_norm, bool):
        raise ValueError(f"batch_norm must be True or False; got {batch_norm!r}")
    arch_kwargs = {
        "num_classes": _check_int("num_classes", num_classes, 1),
        "in_channels": _check_int("in_channels", in_channels, 1),
        "input_size": _check_int("input_size", input_size, 1),
        "width": _check_positive("width", width),
        "first_kernel": int(first_kernel),
        "batch_norm": batch_norm,
        "widths": _check_sequence("widths", widths, lambda w, v: _check_int(w, v, 1)),
        "stage_widths": _check_sequence("stage_widths", stage_widths, _check_positive),
    }
    if init not in INIT_SCHEMES:
        raise ValueError(f"init must be one of {', '.join(INIT_SCHEMES)}; got {init!r}")
    init_scale = _check_positive("init_scale", init_scale)
    if first_layer_std is not None:
        first_layer_std = _check_positive("first_layer_std", first_layer_std)
    if seed is not None:
        seed = _check_int("seed", seed, 0)

    builder = _BUILDERS[name]
    used = inspect.signature(builder).parameters
    for key, value in arch_kwargs.items():
        if key not in used and value != _DEFAULTS[key]:
            raise ValueError(
                f"model {name!r} does not use {key}; expected the default "
                f"{key}={_DEFAULTS[key]!r}, got {key}={value!r}"
            )
    # Built on the meta device so that construction draws no random numbers
    # (the global RNG stays untouched with a seed); init_weights_ fills everything.
    with torch.device("meta"):
        model = builder(**{k: v for k, v in arch_kwargs.items() if k in used})
    model.to_empty(device="cpu")
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    init_weights_(model, init, init_scale, first_layer_std, generator)
    model.config = {
        "name": name,
        **arch_kwargs,
        "init": init,
        "init_scale": init_scale,
        "first_layer_std": first_layer_std,
        "seed": seed,
    }
    return model


_DEFAULTS = {
    k: p.default for k, p in inspect.signature(create_model).parameters.items() if k != "name"
}


def analysable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The ``Conv2d``/``Linear`` layers by module path, in forward order, head last.

    Models here register modules in the order forward runs them, so module
    order is forward order (checked by the tests with forward hooks).
    """
    return {n: m for n, m in model.named_modules() if isinstance(m, ANALYSABLE_TYPES)}


def relu_layers(model: nn.Module) -> dict[str, nn.ReLU]:
    """The ``nn.ReLU`` modules by module path, in forward order; each runs once per forward."""
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.ReLU)}


def first_layer(model: nn.Module) -> nn.Module:
    """The first conv/linear layer: the one whose alignment with the data the paper studies."""
    layers = analysable_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no Conv2d or Linear layer")
    return next(iter(layers.values()))


def head(model: nn.Module) -> nn.Linear:
    """The classification layer ``model.head``."""
    h = getattr(model, "head", None)
    if not isinstance(h, nn.Linear):
        raise ValueError(
            f"expected {type(model).__name__}.head to be an nn.Linear; got {type(h).__name__}"
        )
    return h


def reset_head_(
    model: nn.Module, num_classes: int, generator: torch.Generator | None = None
) -> nn.Module:
    """Replace ``model.head`` by a fresh ``Linear(num_features, num_classes)`` in place.

    The new head uses the model's own ``init`` and ``init_scale`` (from
    ``model.config``; He otherwise), on the old head's device and dtype. For
    downstream training on a new task (SPEC E1: "new head for downstream").
    """
    num_classes = _check_int("num_classes", num_classes, 1)
    old = head(model)
    config = getattr(model, "config", {})
    # Built on the meta device: nn.Linear's own init would draw from the global RNG.
    with torch.device("meta"):
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    new.to_empty(device=old.weight.device).to(old.weight.dtype)
    init_layer_(new, config.get("init", "he"), config.get("init_scale", 1.0), None, generator)
    model.head = new
    if config:
        config["num_classes"] = num_classes
    return model
