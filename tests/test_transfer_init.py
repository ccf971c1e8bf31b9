"""Weight rescaling (SPEC 2.6) and covariance initialization (SPEC 2.7)."""

from __future__ import annotations

import pytest
import torch

from randlabels.analysis import covariance_from_f, weight_covariance
from randlabels.models import analysable_layers, create_model
from randlabels.transfer import covariance_init_, data_covariance_init_, rescale_to_init_norm_


def test_rescaling_restores_every_layers_initial_norm_and_keeps_directions():
    model = create_model("vgg_small", width=0.25, seed=0)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0).add_(0.01)
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    factors = rescale_to_init_norm_(model, init)
    assert set(factors) == {f"{n}.weight" for n in analysable_layers(model)}
    for key in factors:
        w = model.state_dict()[key]
        assert w.norm().item() == pytest.approx(init[key].norm().item(), rel=1e-5)
        cos = torch.nn.functional.cosine_similarity(w.flatten(), trained[key].flatten(), dim=0)
        assert cos.item() == pytest.approx(1.0, abs=1e-6)
    bias = next(k for k in trained if k.endswith("bias"))
    assert torch.equal(model.state_dict()[bias], trained[bias])  # biases left as trained


def test_rescaling_refuses_another_architecture():
    model = create_model("vgg_small", width=0.25, seed=0)
    other = create_model("vgg_small", width=0.5, seed=0).state_dict()
    with pytest.raises(ValueError, match="initial shape"):
        rescale_to_init_norm_(model, other)


def test_covariance_init_samples_filters_with_the_given_mean_and_covariance():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(27, 27, generator=g, dtype=torch.float64)
    sigma = a @ a.T / 27
    mean = torch.linspace(-1, 1, 27, dtype=torch.float64)
    conv = torch.nn.Conv2d(3, 20000, 3)
    covariance_init_(conv, sigma, mean, generator=g)
    got = weight_covariance(conv.weight)
    assert torch.allclose(got.mean, mean, atol=0.05)
    assert (got.cov - sigma).norm() / sigma.norm() < 0.05


def test_covariance_init_from_data_and_f_reproduces_f():
    g = torch.Generator().manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(12, 12, generator=g, dtype=torch.float64))
    lam = torch.logspace(1, -3, 12, dtype=torch.float64)
    sigma_x = q @ torch.diag(lam) @ q.T
    f = lambda x: 0.01 + 0.05 * x / (1 + x)  # noqa: E731
    layer = torch.nn.Linear(12, 50000)
    data_covariance_init_(layer, sigma_x, f, generator=g)
    sw = weight_covariance(layer.weight).cov
    expected = covariance_from_f(
        q[:, lam.argsort(descending=True)], f(lam.sort(descending=True).values)
    )
    assert (sw - expected).norm() / expected.norm() < 0.05


def test_covariance_init_rejects_bad_covariances():
    conv = torch.nn.Conv2d(3, 8, 3)
    with pytest.raises(ValueError, match="d=27"):
        covariance_init_(conv, torch.eye(75))
    not_psd = torch.diag(torch.tensor([1.0] * 26 + [-0.5], dtype=torch.float64))
    with pytest.raises(ValueError, match="not positive semi-definite: smallest eigenvalue -0.5"):
        covariance_init_(conv, not_psd)
    rounding = torch.diag(torch.tensor([1.0] * 26 + [-1e-12], dtype=torch.float64))
    covariance_init_(conv, rounding)  # rounding-level negatives are floored at 0
    assert torch.isfinite(conv.weight).all()
