"""`randlabels align`: alignment of trained runs' layers with their inputs (SPEC 2.4, 2.5).

    randlabels align runs/a runs/b --layer conv --out align/
    randlabels align runs/a/weights/epoch_010.pt --layer all

Each argument is a run directory (its final weights, or its last checkpoint when
unfinished) or a weights/checkpoint file inside a run directory. Several runs are
pooled into one Sigma_w (SPEC 2.2); Sigma_x is collected on the first run's
training images through the first run's model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from randlabels.train.run import build_model, prepare_data, read_run_config


def _resolve(arg: str) -> tuple[Path, Path]:
    """(run_dir, weights file) of a run directory or a file inside one."""
    p = Path(arg)
    if p.is_dir():
        for cand in (p / "weights" / "final.pt", p / "checkpoints" / "last.pt"):
            if cand.exists():
                return p, cand
        raise FileNotFoundError(
            f"{p} has neither weights/final.pt nor checkpoints/last.pt; is it a run directory?"
        )
    if p.is_file():
        for parent in p.parents:
            if (parent / "config.yaml").exists():
                return parent, p
        raise FileNotFoundError(f"{p} is not inside a run directory (no config.yaml above it)")
    raise FileNotFoundError(f"{p} does not exist")


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(state, dict) and "model" in state and "optimizer" in state:
        state = state["model"]  # a full training checkpoint
    return state


def run_align(
    targets: list[str],
    layers: list[str] | None,
    out: str | None,
    probe: int = 2000,
    num_random: int = 20,
    seed: int = 0,
) -> list[dict[str, Any]]:
    from randlabels.analysis.model_alignment import align_models
    from randlabels.experiments.common import dataset_for, save_figure, standardized
    from randlabels.models import analysable_layers
    from randlabels.utils.io import atomic_write_json, ensure_writable_dir

    resolved = [_resolve(t) for t in targets]
    cfgs = [read_run_config(run_dir) for run_dir, _ in resolved]
    first = cfgs[0]
    data = prepare_data(first, dataset_for(first), progress=False)
    models = []
    for (_, wpath), cfg in zip(resolved, cfgs):
        model = build_model(cfg, data.num_classes, data.input_shape)
        try:
            model.load_state_dict(_load_state(wpath))
        except RuntimeError as exc:
            raise ValueError(
                f"{wpath} does not fit the model of {cfgs[0].model.name!r} built from "
                f"{resolved[0][0]}: {str(exc).splitlines()[0]}"
            ) from None
        models.append(model.eval())
    names = list(analysable_layers(models[0]))
    if layers == ["all"]:
        layers = [n for n in names if n != names[-1]]  # every layer but the head
    x = standardized(data)
    n_probe = min(probe, x.shape[0])
    rows = align_models(models, x[:n_probe], layers, num_random=num_random, seed=seed)
    table = []
    print(
        f"{'layer':24s} {'d':>6s} {'samples':>8s} {'M_data':>10s} {'M_random':>18s} {'ratio':>7s}"
    )
    for r in rows:
        m = r.misalignment
        note = f"  (ridge {m.ridge:.1e} added)" if m.ridge else ""
        print(
            f"{r.layer:24s} {m.d:6d} {m.samples:8d} {m.data:10.3f} "
            f"{m.random_mean:10.3f} ± {m.random_std:5.2f} {m.ratio:7.3f}{note}"
        )
        table.append(
            {
                "layer": r.layer,
                "d": m.d,
                "samples": m.samples,
                "M_data": m.data,
                "M_random": m.random_mean,
                "M_random_std": m.random_std,
                "ratio": m.ratio,
                "ridge": m.ridge,
                "eigenvalues": r.eigenvalues.tolist(),
                "f": r.f.tolist(),
            }
        )
    if out is not None:
        out_dir = ensure_writable_dir(out)
        atomic_write_json(
            out_dir / "align.json",
            {"targets": [str(w) for _, w in resolved], "probe": n_probe, "layers": table},
        )
        for r in rows:
            for fname, fig in _figures(r).items():
                save_figure(fig, out_dir / f"{fname}.png")
        print(f"wrote {out_dir / 'align.json'} and figures")
    return table


def _figures(r) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    from randlabels.analysis.filters import filter_images

    safe = r.layer.replace(".", "_")
    figs: dict[str, Any] = {}
    fig, ax = plt.subplots(figsize=(5, 3.5))
    lam = r.eigenvalues.clamp_min(1e-12)
    ax.plot(lam.numpy(), r.f.numpy(), "o-", ms=3)
    ax.set_xscale("log")
    ax.set_xlabel("data eigenvalue lambda")
    ax.set_ylabel("f(lambda)")
    ax.set_title(f"{r.layer}: M_data/M_random = {r.misalignment.ratio:.3f}")
    figs[f"f_{safe}"] = fig
    d = r.sigma_x.cov.shape[0]
    for c in (3, 1):
        k = round((d / c) ** 0.5)
        if c * k * k == d:
            break
    else:
        return figs
    top = min(10, d)
    _, vx = r.sigma_x.eigh()
    _, vw = r.sigma_w.eigh()
    fig, axes = plt.subplots(2, top, figsize=(top * 1.0, 2.4), squeeze=False)
    for row, (title, vecs) in enumerate((("Sigma_x", vx), ("Sigma_w", vw))):
        tiles = filter_images(vecs[:, :top].T, c, k)
        for i in range(top):
            axes[row, i].imshow(
                tiles[i].squeeze(-1).numpy() if c == 1 else tiles[i].numpy(),
                cmap="gray" if c == 1 else None,
            )
            axes[row, i].set_xticks([])
            axes[row, i].set_yticks([])
        axes[row, 0].set_ylabel(title, fontsize=7)
    fig.suptitle(f"{r.layer}: top eigenvectors of the data and of the weights", fontsize=8)
    figs[f"eigenvectors_{safe}"] = fig
    return figs
