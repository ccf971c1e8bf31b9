"""Examples of use of randlabels.models: building, initializing and inspecting the models."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from randlabels.models import (
    MODEL_NAMES,
    analysable_layers,
    create_model,
    first_layer,
    head,
    init_layer_,
    init_weights_,
    list_models,
    relu_layers,
    reset_head_,
)

TINY = 1 / 16  # every model at 1/16 width runs a 32x32 forward in milliseconds


def images(n: int = 2, size: int = 32, channels: int = 3) -> torch.Tensor:
    return torch.randn(n, channels, size, size, generator=torch.Generator().manual_seed(0))


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv_channels(model: nn.Module) -> list[int]:
    return [m.out_channels for m in analysable_layers(model).values() if isinstance(m, nn.Conv2d)]


# --- shapes and architectures ----------------------------------------------------------------


def test_registry_lists_the_models_of_the_spec():
    assert list_models() == list(MODEL_NAMES)
    assert set(MODEL_NAMES) == {"mlp", "simple_cnn", "vgg_small", "vgg11", "vgg16", "resnet18"}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_maps_cifar_images_to_logits(name):
    model = create_model(name, width=TINY, num_classes=7, seed=0)
    out = model(images())
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()
    assert model.forward_features(images()).shape == (2, model.num_features)
    assert model.config["name"] == name


def test_mlp_takes_gaussian_vectors_and_flattens_images():
    # Synthetic Gaussian data (SPEC E4a): d = in_channels * input_size**2 = 30.
    model = create_model("mlp", in_channels=30, input_size=1, widths=(64, 32), seed=0)
    assert [m.out_features for m in analysable_layers(model).values()] == [64, 32, 10]
    assert model(torch.randn(5, 30)).shape == (5, 10)

    model = create_model("mlp", in_channels=3, input_size=4, widths=(8,), seed=0)
    x = torch.randn(5, 3, 4, 4)
    assert torch.equal(model(x), model(x.reshape(5, 48)))
    with pytest.raises(ValueError, match=r"mlp expects inputs \[N, 48\].*got shape \[5, 30\]"):
        model(torch.randn(5, 30))

    linear = create_model("mlp", in_channels=30, input_size=1, widths=(), seed=0)
    assert list(analysable_layers(linear)) == ["head"] and not relu_layers(linear)


def test_parameter_counts_match_the_reference_architectures():
    # 3*9*256+256 conv; 256*15*15 pooled features -> 64 dense; 64 -> 10 head.
    assert n_params(create_model("simple_cnn")) == 7168 + 57600 * 64 + 64 + 650
    # The CIFAR VGG/ResNet counts of the well-known pytorch-cifar implementations.
    assert n_params(create_model("vgg16", batch_norm=True)) == 14_728_266
    assert n_params(create_model("vgg16")) == 14_728_266 - 2 * 4224  # minus BN affine
    assert n_params(create_model("vgg11", batch_norm=True)) == 9_231_114
    assert n_params(create_model("resnet18")) == 11_173_962
    assert n_params(create_model("mlp")) == 3072 * 2048 + 2048 + 2048 * 256 + 256 + 2570


def test_simple_cnn_is_the_papers_two_layer_cnn():
    model = create_model("simple_cnn", seed=0)
    assert model.conv.weight.shape == (256, 3, 3, 3)
    assert (model.fc.in_features, model.fc.out_features) == (256 * 15 * 15, 64)
    assert relu_layers(model).keys() == {"relu1", "relu2"}
    # SPEC E3 uses a 5x5 first layer: 28x28 valid conv, pooled to 14x14.
    model5 = create_model("simple_cnn", first_kernel=5, width=TINY, seed=0)
    assert model5.conv.weight.shape == (16, 3, 5, 5)
    assert model5.fc.in_features == 16 * 14 * 14
    assert model5(images()).shape == (2, 10)


def test_vgg_convs_are_the_standard_configs_with_one_linear_head():
    vgg16 = create_model("vgg16", seed=0)
    layers = list(analysable_layers(vgg16).values())
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13 and all(c.kernel_size == (3, 3) for c in convs)
    assert [c.out_channels for c in convs] == [64] * 2 + [128] * 2 + [256] * 3 + [512] * 6
    assert layers[-1] is vgg16.head and vgg16.head.in_features == 512  # 1x1 after 5 pools
    assert sum(isinstance(m, nn.Linear) for m in layers) == 1
    assert len(conv_channels(create_model("vgg11", width=TINY))) == 8
    assert conv_channels(create_model("vgg_small")) == [32, 64, 128, 128]


def test_vgg_batch_norm_follows_every_conv():
    model = create_model("vgg11", width=TINY, batch_norm=True, seed=0)
    kinds = [type(m).__name__ for m in model.features if not isinstance(m, nn.MaxPool2d)]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU"] * 8
    assert not any(
        isinstance(m, nn.BatchNorm2d) for m in create_model("vgg11", width=TINY).modules()
    )


def test_resnet18_has_the_cifar_stem_and_always_batch_norm():
    model = create_model("resnet18", width=TINY, seed=0)
    stem = first_layer(model)
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert len(relu_layers(model)) == 1 + 8 * 2  # stem + two per BasicBlock
    # batch_norm is documented as ignored: BN is part of the ResNet either way.
    with_flag = create_model("resnet18", width=TINY, batch_norm=True, seed=0)
    assert n_params(with_flag) == n_params(model)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 17 + 3


def test_width_and_stage_widths_scale_channels():
    assert conv_channels(create_model("vgg11", width=TINY)) == [4, 8, 16, 16, 32, 32, 32, 32]
    # SPEC E7: widen later layers x2, x4 while the early stages stay as they are.
    wide = create_model("vgg11", width=TINY, stage_widths=(1, 1, 1, 2, 4))
    assert conv_channels(wide) == [4, 8, 16, 16, 64, 64, 128, 128]
    assert wide.head.in_features == 128
    assert wide(images()).shape == (2, 10)

    base = conv_channels(create_model("resnet18", width=TINY))
    wide = conv_channels(create_model("resnet18", width=TINY, stage_widths=(1, 1, 2, 2)))
    # stem, 4 convs of stage 1, then stage 2 (4 convs + 1x1 shortcut) are unchanged.
    assert wide[:10] == base[:10]
    assert wide[10:] == [2 * c for c in base[10:]]


# --- initialization ----------------------------------------------------------------------------


@pytest.mark.parametrize("init_scale", [1.0, 0.25])
def test_he_init_std_is_init_scale_times_sqrt_2_over_fan_in(init_scale):
    model = create_model("simple_cnn", init_scale=init_scale, seed=0)
    fc = model.fc  # 57600 -> 64: 3.7M weights, so the sample std is within 0.1%
    assert fc.weight.std().item() == pytest.approx(init_scale * math.sqrt(2 / 57600), rel=0.01)
    assert fc.weight.mean().abs().item() < 0.01 * init_scale * math.sqrt(2 / 57600)
    assert model.conv.weight.std().item() == pytest.approx(init_scale * math.sqrt(2 / 27), rel=0.05)
    assert model.head.weight.std().item() == pytest.approx(init_scale * math.sqrt(2 / 64), rel=0.1)
    assert all((m.bias == 0).all() for m in analysable_layers(model).values())


def test_lecun_init_gives_std_one_over_sqrt_fan_in():
    # SPEC E4a: f = 1/sqrt(30) = 0.1826 at initialization for input 30.
    model = create_model("mlp", in_channels=30, input_size=1, init="lecun", seed=0)
    assert first_layer(model).weight.std().item() == pytest.approx(1 / math.sqrt(30), rel=0.02)
    assert model.features[2].weight.std().item() == pytest.approx(1 / math.sqrt(2048), rel=0.02)


def test_torch_init_is_pytorch_default_uniform_times_init_scale():
    model = create_model("simple_cnn", init="torch", init_scale=0.5, width=TINY, seed=0)
    w, b = model.conv.weight, model.conv.bias
    bound = 1 / math.sqrt(27)
    assert w.abs().max().item() <= 0.5 * bound
    assert w.std().item() == pytest.approx(0.5 * bound / math.sqrt(3), rel=0.1)
    assert b.abs().max().item() <= bound and (b != 0).all()  # biases as PyTorch, not scaled


def test_first_layer_std_sets_only_the_first_layer():
    # SPEC E2/E4b: first-layer std 0.002 (paper Figure 4: f ≈ 0.002 at init).
    model = create_model("simple_cnn", first_layer_std=0.002, seed=0)
    assert model.conv.weight.std().item() == pytest.approx(0.002, rel=0.03)
    assert model.fc.weight.std().item() == pytest.approx(math.sqrt(2 / 57600), rel=0.01)
    vgg = create_model("vgg_small", first_layer_std=0.002, init="lecun", seed=0)
    assert first_layer(vgg).weight.std().item() == pytest.approx(0.002, rel=0.05)


def test_batch_norm_starts_at_identity():
    model = create_model("resnet18", width=TINY, seed=0)
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        assert (bn.weight == 1).all() and (bn.bias == 0).all()
        assert (bn.running_mean == 0).all() and (bn.running_var == 1).all()
        assert bn.num_batches_tracked.item() == 0


@pytest.mark.parametrize("name", ["simple_cnn", "resnet18"])
def test_seed_fixes_the_weights_without_touching_the_global_rng(name):
    rng_before = torch.get_rng_state()
    a = create_model(name, width=TINY, seed=1).state_dict()
    b = create_model(name, width=TINY, seed=1).state_dict()
    c = create_model(name, width=TINY, seed=2).state_dict()
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["head.weight"], c["head.weight"])


def test_without_seed_the_global_rng_decides():
    torch.manual_seed(3)
    a = create_model("vgg_small", width=TINY).state_dict()
    torch.manual_seed(3)
    b = create_model("vgg_small", width=TINY).state_dict()
    c = create_model("vgg_small", width=TINY).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["head.weight"], c["head.weight"])


def test_init_weights_reinitializes_in_place_like_create_model():
    model = create_model("vgg_small", width=TINY, batch_norm=True, first_layer_std=0.01, seed=5)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.train()(images())  # moves the BN running statistics
    out = init_weights_(model, "he", 1.0, 0.01, torch.Generator().manual_seed(5))
    assert out is model
    assert all(torch.equal(fresh[k], v) for k, v in model.state_dict().items())


def test_initializers_reject_what_they_cannot_initialize():
    with pytest.raises(TypeError, match=r"Embedding"):
        init_weights_(nn.Sequential(nn.Linear(2, 2), nn.Embedding(3, 2)))
    with pytest.raises(TypeError, match=r"expects nn.Conv2d or nn.Linear; got BatchNorm2d"):
        init_layer_(nn.BatchNorm2d(3))
    with pytest.raises(ValueError, match=r"init must be one of he, lecun, torch; got 'orth'"):
        init_layer_(nn.Linear(2, 2), init="orth")
    with pytest.raises(ValueError, match=r"std must be a positive finite number; got 0"):
        init_layer_(nn.Linear(2, 2), std=0)


# --- uniform layer access ----------------------------------------------------------------------


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_layers_are_listed_in_forward_order(name):
    model = create_model(name, width=TINY, seed=0)
    layers, relus = analysable_layers(model), relu_layers(model)
    fired: list[str] = []
    handles = [
        m.register_forward_hook(lambda mod, inp, out, n=n: fired.append(n))
        for n, m in {**layers, **relus}.items()
    ]
    model(images())
    for h in handles:
        h.remove()
    assert [n for n in fired if n in layers] == list(layers)
    assert [n for n in fired if n in relus] == list(relus)  # each ReLU fires exactly once
    assert list(layers)[-1] == "head" and layers["head"] is head(model) is model.head
    assert first_layer(model) is next(iter(layers.values()))
    assert not any(r.inplace for r in relus.values())


def test_reset_head_gives_a_fresh_head_for_the_downstream_task():
    model = create_model("vgg_small", width=TINY, init_scale=0.5, seed=0)
    body = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head")}
    rng_before = torch.get_rng_state()
    out = reset_head_(model, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert out is model and model(images()).shape == (2, 5)
    assert list(analysable_layers(model))[-1] == "head"
    assert all(torch.equal(body[k], v) for k, v in model.state_dict().items() if k in body)
    assert model.config["num_classes"] == 5
    again = reset_head_(
        create_model("vgg_small", width=TINY, init_scale=0.5, seed=0),
        5,
        generator=torch.Generator().manual_seed(1),
    )
    assert torch.equal(again.head.weight, model.head.weight)
    assert (model.head.bias == 0).all()  # He init, as the model was built with


# --- bad input, clear messages ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("resnet50", {}, r"unknown model 'resnet50'; expected one of: mlp, simple_cnn, vgg_small"),
        ("vgg16", {"width": 0}, r"width must be a positive finite number; got 0"),
        ("vgg16", {"width": float("nan")}, r"width must be a positive finite number; got nan"),
        ("mlp", {"init_scale": -1.0}, r"init_scale must be a positive finite number; got -1.0"),
        ("vgg16", {"first_kernel": 4}, r"first_kernel must be a positive odd integer .* got 4"),
        ("vgg16", {"first_kernel": 0}, r"first_kernel must be a positive odd integer .* got 0"),
        ("vgg16", {"first_kernel": 3.0}, r"first_kernel must be a positive odd integer .*3.0"),
        ("vgg16", {"num_classes": 0}, r"num_classes must be an integer >= 1; got 0"),
        ("vgg16", {"in_channels": 2.5}, r"in_channels must be an integer >= 1; got 2.5"),
        ("vgg16", {"init": "xavier"}, r"init must be one of he, lecun, torch; got 'xavier'"),
        ("mlp", {"first_layer_std": 0.0}, r"first_layer_std must be a positive finite number"),
        ("mlp", {"seed": -1}, r"seed must be an integer >= 0; got -1"),
        ("mlp", {"seed": True}, r"seed must be an integer >= 0; got True"),
        ("vgg16", {"batch_norm": "yes"}, r"batch_norm must be True or False; got 'yes'"),
        (
            "mlp",
            {"batch_norm": True},
            r"model 'mlp' does not use batch_norm; expected the default batch_norm=False, "
            r"got batch_norm=True",
        ),
        ("mlp", {"first_kernel": 5}, r"'mlp' does not use first_kernel; .*got first_kernel=5"),
        ("simple_cnn", {"stage_widths": (1, 2)}, r"'simple_cnn' does not use stage_widths"),
        ("simple_cnn", {"batch_norm": True}, r"'simple_cnn' does not use batch_norm"),
        ("vgg16", {"widths": (8,)}, r"'vgg16' does not use widths"),
        ("resnet18", {"widths": (8,)}, r"'resnet18' does not use widths"),
        ("vgg16", {"stage_widths": (1, 2)}, r"vgg16 has 5 stages, so stage_widths needs 5 .*got 2"),
        ("resnet18", {"stage_widths": (1,) * 5}, r"resnet18 has 4 stages.* got 5"),
        ("vgg11", {"stage_widths": (1, 0, 1, 1, 1)}, r"stage_widths\[1\] must be a positive"),
        ("mlp", {"widths": (64, 0)}, r"widths\[1\] must be an integer >= 1; got 0"),
        ("mlp", {"widths": "64"}, r"widths must be a sequence of numbers or None; got '64'"),
        ("simple_cnn", {"widths": (8, 8, 8)}, r"expected 2 numbers, got 3"),
        ("vgg16", {"width": 0.001}, r"vgg16 stage 0: 64 units x multiplier 0.001 rounds to 0"),
        ("simple_cnn", {"input_size": 3}, r"simple_cnn needs input_size >= 4 .* got input_size=3"),
        ("simple_cnn", {"input_size": 5, "first_kernel": 5}, r"needs input_size >= 6"),
        ("vgg16", {"input_size": 16}, r"5 max-pool stages needs input_size >= 32; got .*=16"),
        ("vgg_small", {"input_size": 8}, r"4 max-pool stages needs input_size >= 16"),
    ],
)
def test_bad_arguments_say_what_was_expected_and_what_was_given(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_model(name, **kwargs)


def test_bad_head_requests_are_refused():
    model = create_model("vgg_small", width=TINY, seed=0)
    with pytest.raises(ValueError, match=r"num_classes must be an integer >= 1; got 0"):
        reset_head_(model, 0)
    with pytest.raises(
        ValueError, match=r"expected Sequential.head to be an nn.Linear; got NoneType"
    ):
        head(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match=r"has no Conv2d or Linear layer"):
        first_layer(nn.Sequential(nn.ReLU()))
