"""In-place initializers of SPEC 2.6 and 2.7, named like ``torch.nn.init``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from randlabels.analysis.alignment import covariance_from_f
from randlabels.analysis.covariance import Covariance
from randlabels.models import analysable_layers

# Eigenvalues of a "covariance" below -PSD_TOLERANCE * (largest |eigenvalue|) mean the
# matrix is not a covariance at all; smaller negative ones are rounding and are floored at 0.
PSD_TOLERANCE = 1e-8


@torch.no_grad()
def rescale_to_init_norm_(
    model: nn.Module, init_state: dict[str, Tensor], *, include_biases: bool = False
) -> dict[str, float]:
    """Multiply every conv/linear weight by ||W_init||_F / ||W||_F (SPEC 2.6).

    Args:
        model: the pre-trained model, changed in place.
        init_state: the model's ``state_dict`` at its own initialization
            (``weights/init.pt`` of a run directory).
        include_biases: also rescale biases to their initial norm (an option; SPEC
            leaves biases and normalization parameters as trained). A bias initialized
            to zero cannot be rescaled and is left alone.

    Returns:
        The factor applied to each weight, by parameter name.
    """
    factors: dict[str, float] = {}
    for name, layer in analysable_layers(model).items():
        params = [("weight", layer.weight)]
        if include_biases and getattr(layer, "bias", None) is not None:
            params.append(("bias", layer.bias))
        for pname, p in params:
            key = f"{name}.{pname}" if name else pname
            if key not in init_state:
                raise ValueError(
                    f"init_state has no {key!r}; it must be the state_dict of the same "
                    f"architecture at initialization (keys like {next(iter(init_state))!r})"
                )
            w0 = init_state[key]
            if w0.shape != p.shape:
                raise ValueError(
                    f"{key}: initial shape {tuple(w0.shape)} differs from the model's "
                    f"{tuple(p.shape)}"
                )
            n0, n1 = w0.double().norm().item(), p.double().norm().item()
            if n0 == 0.0 or n1 == 0.0:
                continue
            factor = n0 / n1
            p.mul_(factor)
            factors[key] = factor
    return factors


def _sampling_factor(sigma: Tensor) -> Tensor:
    """A matrix L with L L^T = sigma, refusing matrices that are not PSD."""
    sigma = sigma.double()
    if not torch.isfinite(sigma).all():
        raise ValueError("the covariance contains NaN or Inf")
    if not torch.allclose(sigma, sigma.T, rtol=1e-6, atol=1e-12):
        raise ValueError("the covariance is not symmetric")
    evals, evecs = torch.linalg.eigh(sigma)
    scale = evals.abs().max().item()
    if evals.min().item() < -PSD_TOLERANCE * scale:
        raise ValueError(
            f"the covariance is not positive semi-definite: smallest eigenvalue "
            f"{evals.min().item():.3g} (largest |eigenvalue| {scale:.3g}); "
            f"eigenvalues down to -{PSD_TOLERANCE:g} x that are floored at 0 as rounding"
        )
    return evecs * evals.clamp_min(0).sqrt()


@torch.no_grad()
def covariance_init_(
    layer: nn.Module,
    sigma_w: Covariance | Tensor,
    mean: Tensor | None = None,
    *,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Sample each filter (row of ``weight.reshape(out, -1)``) i.i.d. from N(mean, Sigma_w).

    SPEC 2.7 / paper Figure 5: Sigma_w (and mean) are the statistics of filters of
    networks pre-trained on random labels. With a :class:`Covariance`, its mean is
    used unless ``mean`` is given; with a bare matrix the mean defaults to 0.
    Biases are left as they are.
    """
    if not isinstance(layer, (nn.Conv2d, nn.Linear)):
        raise ValueError(f"covariance_init_ needs a Conv2d or Linear layer, got {type(layer)}")
    w = layer.weight
    out, d = w.shape[0], w[0].numel()
    if isinstance(sigma_w, Covariance):
        mean = sigma_w.mean if mean is None else mean
        sigma = sigma_w.cov
    else:
        sigma = torch.as_tensor(sigma_w)
    if sigma.shape != (d, d):
        raise ValueError(
            f"the layer's filters have d={d} (weight shape {tuple(w.shape)}) but the "
            f"covariance is {tuple(sigma.shape)}"
        )
    mean = torch.zeros(d, dtype=torch.float64) if mean is None else torch.as_tensor(mean)
    if mean.numel() != d:
        raise ValueError(f"mean has {mean.numel()} entries, the layer's filters have d={d}")
    factor = _sampling_factor(sigma)
    z = torch.randn(out, d, dtype=torch.float64, generator=generator)
    sample = mean.double().flatten()[None, :] + z @ factor.T
    w.copy_(sample.reshape(w.shape).to(w.dtype))
    return layer


@torch.no_grad()
def data_covariance_init_(
    layer: nn.Module,
    sigma_x: Covariance | Tensor,
    f: Tensor | Callable[[Tensor], Tensor],
    *,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Covariance initialization without pre-training (SPEC 2.7, variant).

    Sigma_w = sum_i f(lambda_i)^2 v_i v_i^T from the data eigenbasis (lambda_i, v_i of
    ``sigma_x``) and a stored ``f`` (a tensor with one value per eigenvalue, in the
    descending order of :meth:`Covariance.eigh`) or a function of the eigenvalues.
    """
    if isinstance(sigma_x, Covariance):
        lam, vecs = sigma_x.eigh()
    else:
        lam, vecs = torch.linalg.eigh(torch.as_tensor(sigma_x).double())
        lam, vecs = lam.flip(0), vecs.flip(1)
    fv = f(lam) if callable(f) else torch.as_tensor(f, dtype=torch.float64)
    if fv.shape != lam.shape:
        raise ValueError(
            f"f has shape {tuple(fv.shape)}, expected one value per eigenvalue {tuple(lam.shape)}"
        )
    return covariance_init_(layer, covariance_from_f(vecs, fv.double()), generator=generator)
