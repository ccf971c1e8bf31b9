"""Examples of use of randlabels.analysis: Sigma_x, Sigma_w, misalignment, f, filter images."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from randlabels.analysis import (
    Covariance,
    CovarianceAccumulator,
    check_compatible,
    covariance_from_f,
    eigenvalue_function,
    eigenvector_overlap,
    filter_images,
    haar_bases,
    layer_input_covariance,
    misalignment,
    misalignment_report,
    patch_covariance,
    weight_covariance,
)
from randlabels.data.loader import TensorLoader
from randlabels.models import analysable_layers, create_model


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def brute_force(x, kernel, *, stride=1, padding=0, centered=True):
    """Reference: every patch materialized in float64."""
    c = x.shape[1]
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    u = F.unfold(x.double(), (kh, kw), stride=stride, padding=padding)
    u = u.transpose(1, 2).reshape(-1, c * kh * kw)
    cov = torch.cov(u.T) if centered else u.T @ u / u.shape[0]
    return u.mean(0), cov, u.shape[0]


def close(a: torch.Tensor, b: torch.Tensor, rtol: float) -> bool:
    return float((a - b).norm() / b.norm()) <= rtol


# --- Sigma_x of image patches ------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, kernel, stride, padding, centered, dtype",
    [
        ((6, 3, 9, 8), 3, 1, 0, True, torch.float32),
        ((5, 3, 12, 12), 5, 1, 0, False, torch.float32),
        ((7, 2, 10, 11), (2, 3), 2, 0, True, torch.float64),
        ((4, 4, 7, 7), 3, (2, 1), 1, False, torch.float32),
        ((3, 1, 6, 6), 1, 1, 0, True, torch.float32),
    ],
)
def test_patch_covariance_matches_brute_force(shape, kernel, stride, padding, centered, dtype):
    # Offset data (mean 3) so that centering matters and precision loss would show.
    x = (torch.randn(shape, generator=gen()) * 2 + 3).to(dtype)
    mean, cov, count = brute_force(x, kernel, stride=stride, padding=padding, centered=centered)
    batches = [(x[:2], "labels are ignored"), x[2:]]  # an iterable of batches, tuples allowed
    got = patch_covariance(
        batches, kernel, stride=stride, padding=padding, centered=centered, chunk_size=2
    )
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    assert got.count == count and got.centered == centered
    assert got.shape == (shape[1], kh, kw) and got.cov.shape == (got.dim, got.dim)
    assert got.cov.dtype == torch.float64 and torch.equal(got.cov, got.cov.T)
    rtol = 1e-12 if dtype == torch.float64 else 1e-6
    assert close(got.cov, cov, rtol) and close(got.mean, mean, rtol)


def test_patch_covariance_any_layout_same_result():
    x = torch.randn(8, 3, 10, 10, generator=gen())
    plain = patch_covariance(x, 3)
    last = patch_covariance(x.contiguous(memory_format=torch.channels_last), 3, chunk_size=3)
    assert close(last.cov, plain.cov, 1e-6)


def test_patch_covariance_of_loader_batches_is_that_of_the_standardized_images():
    x = torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8, generator=gen())
    mean, std = torch.tensor([0.5, 0.4, 0.3]), torch.tensor([0.2, 0.25, 0.3])
    loader = TensorLoader(x, torch.zeros(20), batch_size=6, mean=mean, std=std, channels_last=True)
    images = torch.cat([xb for xb, _ in loader.batches(0)])
    got = patch_covariance(loader.batches(0), 3)
    assert got.count == 20 * 6 * 6
    assert close(got.cov, brute_force(images, 3)[1], 1e-6)


def test_patch_covariance_rejects_bad_input():
    with pytest.raises(ValueError, match="float images"):
        patch_covariance(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), 3)
    with pytest.raises(ValueError, match="does not fit"):
        patch_covariance(torch.zeros(2, 3, 4, 4), 5)
    with pytest.raises(ValueError, match=r"same \[C, H, W\]"):
        patch_covariance([torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 9, 9)], 3)
    with pytest.raises(ValueError, match="NaN"):
        patch_covariance(torch.full((2, 3, 8, 8), math.nan), 3)
    with pytest.raises(ValueError, match="no images"):
        patch_covariance([], 3)


# --- streaming ----------------------------------------------------------------------------


def test_accumulator_streaming_equals_one_shot():
    x = torch.randn(500, 7, generator=gen()) * torch.arange(1.0, 8.0) + 100.0  # large mean
    one_shot = CovarianceAccumulator(7)
    one_shot.update(x.double())
    streamed = CovarianceAccumulator(7)
    for chunk in x.split(37):
        streamed.update(chunk)
    # A pre-reduced chunk, summed about its own shift.
    tail = torch.randn(60, 7, generator=gen(1), dtype=torch.float64) + 5.0
    shift = tail[0]
    streamed.update_gram((tail - shift).T @ (tail - shift), (tail - shift).sum(0), 60, shift=shift)
    one_shot.update(tail)
    every = torch.cat([x.double(), tail])
    for centered in (True, False):
        a, b = streamed.result(centered), one_shot.result(centered)
        ref = torch.cov(every.T) if centered else every.T @ every / every.shape[0]
        assert a.count == b.count == 560
        assert close(a.cov, ref, 1e-7) and close(b.cov, ref, 1e-12)
        assert close(a.mean, every.mean(0), 1e-12)
    with pytest.raises(ValueError, match=r"\[n, 7\]"):
        streamed.update(torch.zeros(3, 6))
    with pytest.raises(ValueError, match="at least 2"):
        CovarianceAccumulator(3).result()


# --- Sigma_x of a layer inside a model ----------------------------------------------------


def test_layer_input_covariance_of_the_first_conv_is_the_patch_covariance():
    images = torch.randn(12, 3, 12, 12, generator=gen())
    # vgg_small's first conv pads; Sigma_x still uses valid positions only (SPEC 2.1).
    model = create_model("vgg_small", width=1 / 8, seed=0, first_kernel=5)
    got = layer_input_covariance(model, "features.0", [images[:5], images[5:]])
    want = patch_covariance(images, 5)
    assert got.shape == (3, 5, 5) and got.count == want.count
    assert close(got.cov, want.cov, 1e-7)
    # Or the patches the layer itself sees, zero padding included.
    padded = layer_input_covariance(model, "features.0", images, padding="layer")
    assert padded.count == 12 * 12 * 12
    assert close(padded.cov, brute_force(images, 5, padding=2)[1], 1e-6)


def test_layer_input_covariance_of_a_deeper_conv_uses_its_input_in_eval_mode():
    model = create_model("vgg_small", width=1 / 8, seed=0, batch_norm=True)
    model = model.to(memory_format=torch.channels_last)
    images = torch.randn(10, 3, 16, 16, generator=gen())
    model.train()
    bn = model.features[1]
    bn.running_mean.fill_(0.3)  # not the batch statistics, so eval mode shows
    ran_head = []
    model.head.register_forward_hook(lambda *_: ran_head.append(True))

    got = layer_input_covariance(model, "features.4", images, max_batches=1)

    assert model.training and bn.training  # modes restored
    assert not ran_head  # the forward pass stopped at the layer
    assert not model.features[4]._forward_pre_hooks  # hook removed
    model.eval()
    with torch.no_grad():
        activations = model.features[:4](images)  # conv, BN, ReLU, max-pool
    assert close(got.cov, brute_force(activations, 3)[1], 1e-6)


def test_layer_input_covariance_of_a_dense_layer_is_that_of_its_flattened_input():
    model = create_model("simple_cnn", width=1 / 16, input_size=8, seed=0)
    images = torch.randn(16, 3, 8, 8, generator=gen())
    got = layer_input_covariance(model, "fc", [(images[:9], None), (images[9:], None)])
    with torch.no_grad():
        flat = model.flatten(model.pool(model.relu1(model.conv(images))))
    assert got.count == 16 and got.shape == (flat.shape[1],)
    assert close(got.cov, torch.cov(flat.double().T), 1e-6)


def test_layer_input_covariance_names_the_valid_layers():
    model = create_model("simple_cnn", width=1 / 16, input_size=8, seed=0)
    with pytest.raises(ValueError, match="conv, fc, head"):
        layer_input_covariance(model, "conv2", torch.randn(2, 3, 8, 8))


# --- Sigma_w ------------------------------------------------------------------------------


def test_weight_covariance_pools_rows_over_seeds():
    layers = [analysable_layers(create_model("simple_cnn", width=1 / 16, seed=s)) for s in (0, 1)]
    weights = [layer["conv"].weight for layer in layers]  # [16, 3, 3, 3] each
    pooled = weight_covariance(weights)
    rows = torch.cat([w.detach().reshape(16, -1) for w in weights]).double()
    assert pooled.count == 32 and pooled.shape == (3, 3, 3)
    assert close(pooled.cov, torch.cov(rows.T), 1e-12)
    assert close(
        weight_covariance(weights[0], centered=False).cov, rows[:16].T @ rows[:16] / 16, 1e-12
    )


def test_weight_covariance_rejects_mismatched_shapes_and_nan():
    with pytest.raises(ValueError, match=r"\(8, 3, 5, 5\).*\(8, 3, 3, 3\)"):
        weight_covariance([torch.randn(8, 3, 5, 5), torch.randn(8, 3, 3, 3)])
    w = torch.randn(8, 27)
    w[2, 3] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        weight_covariance(w)


def test_check_compatible_names_both_kernels():
    sw = weight_covariance(torch.randn(100, 3, 5, 5, generator=gen()))
    sx = patch_covariance(torch.randn(2, 3, 8, 8, generator=gen()), 3)
    with pytest.raises(ValueError, match=r"d=75 \(5x5x3\).*d=27 \(3x3x3\)"):
        check_compatible(sw, sx)
    with pytest.raises(ValueError, match="NaN"):
        check_compatible(torch.full((27, 27), math.nan), sx)


# --- misalignment -------------------------------------------------------------------------


def random_spd(d: int, seed: int = 0) -> torch.Tensor:
    a = torch.randn(d, d, generator=gen(seed), dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def test_misalignment_is_zero_exactly_when_the_basis_diagonalizes_sigma_w():
    v = haar_bases(6, count=1, seed=3)[0]
    aligned = covariance_from_f(v, torch.tensor([3.0, 2.0, 1.5, 1.0, 0.5, 0.1]))
    assert misalignment(aligned, v) < 1e-9
    sigma = random_spd(6)
    m = misalignment(sigma, v)
    assert m > 0.1
    assert misalignment(7.5 * sigma, v) == pytest.approx(m, rel=1e-9)  # scale invariant


def test_misalignment_rejects_a_non_orthonormal_basis():
    v = haar_bases(5, count=1)[0]
    with pytest.raises(ValueError, match="orthonormal"):
        misalignment(random_spd(5), 1.01 * v)


def test_haar_bases_are_orthonormal_and_seeded():
    b = haar_bases(4, count=3, seed=1)
    assert b.shape == (3, 4, 4) and b.dtype == torch.float64
    assert torch.allclose(b.transpose(1, 2) @ b, torch.eye(4, dtype=torch.float64).expand(3, 4, 4))
    assert torch.equal(b, haar_bases(4, count=3, seed=1))
    assert not torch.equal(b, haar_bases(4, count=3, seed=2))


def test_report_separates_aligned_from_isotropic_weights():
    sigma_x = patch_covariance(torch.randn(20, 3, 10, 10, generator=gen()) + 0.5, 3)
    lam, v = sigma_x.eigh()
    d = 27
    f = torch.linspace(2.0, 0.1, d, dtype=torch.float64)  # decreasing in lambda
    aligned = misalignment_report(covariance_from_f(v, f), sigma_x, seed=0)
    assert aligned.ratio < 0.05 and aligned.ridge is None and aligned.d == d
    # Isotropic samples: no direction is special, so the data basis is like a random one.
    iso = weight_covariance(torch.randn(4000, d, generator=gen(5)))
    rep = misalignment_report(iso, sigma_x, num_random=20, seed=0)
    assert rep.samples == 4000
    assert 0.7 < rep.ratio < 1.3, rep


def test_report_needs_enough_samples_and_adds_a_ridge_when_singular():
    sigma_x = random_spd(27)
    few = weight_covariance(torch.randn(20, 3, 3, 3, generator=gen()))
    with pytest.raises(ValueError, match="needs at least 28.*pool"):
        misalignment_report(few, sigma_x)
    singular = torch.diag(torch.cat([torch.ones(26), torch.zeros(1)])).double()
    rep = misalignment_report(singular, sigma_x, num_random=3)
    assert rep.ridge == pytest.approx(1e-6 * 26 / 27)
    assert math.isfinite(rep.data) and rep.samples is None


# --- eigenvalue function and overlap ------------------------------------------------------


def test_eigenvalue_function_recovers_f():
    sigma_x = random_spd(10, seed=1)
    lam, v = torch.linalg.eigh(sigma_x)
    lam, v = lam.flip(0), v.flip(1)
    f = torch.rand(10, generator=gen(), dtype=torch.float64) + 0.1
    got_lam, got_f = eigenvalue_function(covariance_from_f(v, f), sigma_x)
    assert torch.allclose(got_lam, lam) and torch.allclose(got_f, f)
    assert bool((got_lam[:-1] >= got_lam[1:]).all())


def test_eigenvalue_function_at_isotropic_init_is_the_init_std():
    s = 0.05
    w = s * torch.randn(20000, 27, generator=gen(2))
    _, f = eigenvalue_function(weight_covariance(w), random_spd(27))
    assert torch.allclose(f, torch.full_like(f, s), rtol=0.05)


def test_eigenvector_overlap_is_one_for_shared_principal_directions():
    v = haar_bases(8, count=1, seed=4)[0]
    sx = covariance_from_f(v, torch.arange(8.0, 0.0, -1.0, dtype=torch.float64))
    sw = covariance_from_f(v, torch.arange(8.0, 0.0, -1.0, dtype=torch.float64).sqrt())
    assert torch.allclose(eigenvector_overlap(sw, sx, k=3), torch.ones(3, dtype=torch.float64))
    assert float(eigenvector_overlap(random_spd(8), sx, k=8).min()) < 0.9


# --- display ------------------------------------------------------------------------------


def test_filter_images_shape_range_and_sign():
    w = torch.randn(5, 3, 4, 4, generator=gen())
    tiles = filter_images(w.reshape(5, -1), 3, 4)
    assert tiles.shape == (5, 4, 4, 3) and float(tiles.min()) >= 0 and float(tiles.max()) <= 1
    # Each tile reaches 0 or 1 at its largest |value|; the sign is kept.
    assert torch.allclose((tiles - 0.5).abs().amax(dim=(1, 2, 3)), torch.full((5,), 0.5), atol=1e-6)
    assert torch.equal(tiles[0, :, :, 1] > 0.5, w[0, 1] > 0)
    gray = filter_images(torch.zeros(2, 9), 1, 3)
    assert gray.shape == (2, 3, 3, 1) and torch.all(gray == 0.5)
    with pytest.raises(ValueError, match=r"\[n, 27\]"):
        filter_images(torch.zeros(2, 25), 3, 3)


def test_covariance_eigh_is_descending_and_reconstructs():
    sigma = Covariance(torch.zeros(5), random_spd(5), 100, True)
    lam, v = sigma.eigh()
    assert bool((lam[:-1] >= lam[1:]).all())
    assert torch.allclose(v @ torch.diag(lam) @ v.T, sigma.cov)
