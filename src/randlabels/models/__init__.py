"""Models of the paper (SPEC section 4) behind one constructor, with uniform layer access.

``create_model(name, **kwargs)`` builds any of :data:`MODEL_NAMES`;
``analysable_layers`` / ``relu_layers`` list a model's conv/linear layers and
ReLUs in forward order; ``init_weights_`` and friends initialize in place.
"""

from .init import INIT_SCHEMES, fan_in, init_layer_, init_weights_
from .mlp import MLP
from .registry import (
    MODEL_NAMES,
    analysable_layers,
    create_model,
    first_layer,
    head,
    list_models,
    relu_layers,
    reset_head_,
)
from .resnet import BasicBlock, ResNet
from .simple_cnn import SimpleCNN
from .vgg import VGG, VGG_STAGES

__all__ = [
    "INIT_SCHEMES",
    "MODEL_NAMES",
    "MLP",
    "VGG",
    "VGG_STAGES",
    "BasicBlock",
    "ResNet",
    "SimpleCNN",
    "analysable_layers",
    "create_model",
    "fan_in",
    "first_layer",
    "head",
    "init_layer_",
    "init_weights_",
    "list_models",
    "relu_layers",
    "reset_head_",
]
