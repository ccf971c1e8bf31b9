"""Pre-train / fine-tune: build a downstream model from a pre-trained run (SPEC E1, E5, E6).

Every variant starts from the downstream model as initialized from scratch with the
downstream run's seed; only the transferred layers are then overwritten, so the
comparison with scratch is paired (the untransferred layers and the fresh head are
identical across variants).

Variants (``mode``):
    scratch     nothing transferred
    pretrained  the first ``m`` layers (default: all but the head) as pre-trained
    rescaled    as pretrained, then every transferred weight back to its initial norm
                (SPEC 2.6, ``rescale_to_init_norm_``)
    covariance  the first ``m`` layers sampled from N(mu_w, Sigma_w) of the pooled,
                rescaled pre-trained filters (SPEC 2.7, ``covariance_init_``)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from randlabels.analysis.covariance import weight_covariance
from randlabels.models import analysable_layers
from randlabels.transfer.init import covariance_init_

MODES = ("scratch", "pretrained", "rescaled", "covariance")


class TransferError(ValueError):
    """A pre-trained run cannot be transferred into the downstream model."""


def load_pretrained(run_dir: str | Path) -> tuple[dict, dict]:
    """(init_state, final_state) of a finished run directory."""
    run_dir = Path(run_dir)
    if not (run_dir / "summary.json").exists():
        raise TransferError(
            f"pre-trained run {run_dir} has not finished (no summary.json); "
            "finish it first (rerun its command to resume)"
        )
    init = torch.load(run_dir / "weights" / "init.pt", map_location="cpu")
    final = torch.load(run_dir / "weights" / "final.pt", map_location="cpu")
    return init, final


def transfer_keys(model: nn.Module, m: int | None = None) -> tuple[list[str], list[str]]:
    """State keys of the first ``m`` analysable layers and the modules between them.

    Returns ``(keys, layer_names)``. The head is never transferred; ``m=None`` means
    every layer but the head. BatchNorm layers that follow a transferred layer (before
    the next analysable layer) go with it.
    """
    layers = list(analysable_layers(model))
    body = layers[:-1]
    if m is None:
        m = len(body)
    if not 0 <= m <= len(body):
        raise TransferError(
            f"m={m} but the model has {len(body)} transferable layers (its head is not "
            f"transferred): {', '.join(body)}"
        )
    chosen = set(body[:m])
    stop = body[m] if m < len(body) else layers[-1]
    keys: list[str] = []
    seen = 0
    for name, module in model.named_modules():
        if name == stop:
            break
        if name in layers:
            seen += 1
        if seen == 0 or list(module.children()):
            continue
        if name in chosen or (seen <= m and not isinstance(module, (nn.Conv2d, nn.Linear))):
            keys.extend(f"{name}.{k}" for k in module.state_dict())
    return keys, body[:m]


@torch.no_grad()
def apply_transfer_(
    model: nn.Module,
    mode: str,
    pretrained_runs: Sequence[str | Path] = (),
    *,
    m: int | None = None,
    generator: torch.Generator | None = None,
) -> dict:
    """Overwrite the first ``m`` layers of ``model`` per ``mode``; returns what was done."""
    if mode not in MODES:
        raise TransferError(f"unknown transfer mode {mode!r}; expected one of: {', '.join(MODES)}")
    if mode == "scratch":
        return {"mode": mode, "layers": []}
    if not pretrained_runs:
        raise TransferError(f"mode {mode!r} needs at least one pre-trained run")
    keys, names = transfer_keys(model, m)
    own = model.state_dict()
    states = [load_pretrained(r) for r in pretrained_runs]
    for (_, final), run in zip(states, pretrained_runs):
        for k in keys:
            if k not in final:
                raise TransferError(
                    f"pre-trained run {run} has no parameter {k!r}: the architectures differ"
                )
            if final[k].shape != own[k].shape:
                raise TransferError(
                    f"layer {k.rsplit('.', 1)[0]!r} does not match: pre-trained "
                    f"{tuple(final[k].shape)}, downstream {tuple(own[k].shape)} ({run})"
                )
    if mode in ("pretrained", "rescaled"):
        init, final = states[0]
        model.load_state_dict({**own, **{k: final[k] for k in keys}})
        factors = {}
        if mode == "rescaled":
            sub_init = {f"{n}.weight": init[f"{n}.weight"] for n in names}
            factors = _rescale_named_(model, names, sub_init)
        return {"mode": mode, "layers": names, "rescale_factors": factors}
    # covariance: filters of every pre-trained run, each rescaled to its own initial norm.
    layers = analysable_layers(model)
    report = {"mode": mode, "layers": names, "samples": {}}
    for n in names:
        pooled = []
        for init, final in states:
            w, w0 = final[f"{n}.weight"].double(), init[f"{n}.weight"].double()
            pooled.append(w * (w0.norm() / w.norm()))
        cov = weight_covariance(pooled)
        covariance_init_(layers[n], cov, generator=generator)
        report["samples"][n] = cov.count
    return report


def _rescale_named_(model: nn.Module, names: list[str], init: dict) -> dict[str, float]:
    """SPEC 2.6 for the transferred layers only: weight * ||W_init|| / ||W||."""
    factors = {}
    layers = analysable_layers(model)
    for n in names:
        w = layers[n].weight
        factor = init[f"{n}.weight"].double().norm().item() / w.double().norm().item()
        w.mul_(factor)
        factors[n] = factor
    return factors


@torch.no_grad()
def covariance_init_layers_(
    model: nn.Module,
    pretrained_runs: Sequence[str | Path],
    m: int,
    probe: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> dict:
    """Covariance initialization of the first ``m`` layers ("transferring more", paper 2.5).

    Layer 1 is sampled from N(mu_w, Sigma_w) of the pooled, rescaled pre-trained filters
    (as in :func:`apply_transfer_`). A deeper layer's filters live in the coordinates of
    the features below it, which differ from network to network, so its Sigma_w cannot
    be pooled across runs. Instead [ours, after SPEC 2.7]: from each pre-trained run we
    measure that layer's f (weight std along each eigenvector of the layer's own input
    covariance, weights rescaled to their initial norm), pool the (lambda, f) points of all
    runs into one function of lambda (piecewise linear in log lambda), and set the new
    layer's Sigma_w = sum_i f(lambda_i)^2 v_i v_i^T in the eigenbasis of *its* input
    covariance on ``probe``, through the already initialized lower layers.

    Args:
        model: the downstream model (scratch initialization), changed in place.
        pretrained_runs: finished pre-trained run directories (same architecture).
        m: number of layers to initialize (the head excluded).
        probe: standardized inputs ``[B, ...]`` used for the layers' input covariances.
    """
    import copy

    from randlabels.analysis.alignment import eigenvalue_function
    from randlabels.analysis.covariance import layer_input_covariance
    from randlabels.transfer.init import data_covariance_init_

    _, names = transfer_keys(model, m)
    report = apply_transfer_(model, "covariance", pretrained_runs, m=1, generator=generator)
    report["f_points"] = {}
    head_keys = {k for k in model.state_dict() if k.startswith("head.")}
    for depth, name in enumerate(names[1:], start=2):
        lams, fs = [], []
        for run in pretrained_runs:
            init, final = load_pretrained(run)
            ref = copy.deepcopy(model)
            ref.load_state_dict(
                {k: v for k, v in final.items() if k not in head_keys}, strict=False
            )
            w = analysable_layers(ref)[name].weight
            w.mul_(init[f"{name}.weight"].norm() / w.norm())
            sx = layer_input_covariance(ref, name, [probe])
            lam, f = eigenvalue_function(weight_covariance(w), sx)
            keep = lam > lam.max() * 1e-9  # directions the probe actually spans
            lams.append(lam[keep])
            fs.append(f[keep])
        lam_all = torch.cat(lams).clamp_min(1e-30).log()
        f_all = torch.cat(fs)
        order = torch.argsort(lam_all)
        xs, ys = lam_all[order], f_all[order]

        def f_of(lam, xs=xs, ys=ys):
            import numpy as np

            x = lam.clamp_min(1e-30).log().numpy()
            return torch.from_numpy(np.interp(x, xs.numpy(), ys.numpy()))

        layer = analysable_layers(model)[name]
        sx_new = layer_input_covariance(model, name, [probe])
        data_covariance_init_(layer, sx_new, f_of, generator=generator)
        report["layers"] = names[:depth]
        report["f_points"][name] = int(xs.numel())
    report["mode"] = f"covariance (first {m} layers)"
    return report
