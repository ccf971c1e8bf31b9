"""E3: eigenvectors of Sigma_w look like those of Sigma_x (paper Figure 3; SPEC E3).

First-layer filters with a 5x5 kernel, trained on random labels, pooled over
seeds. Shows the top eigenvectors of Sigma_w and of Sigma_x (5x5 patches) as RGB
tiles side by side with random filters, and quantifies |<u_i, v_i>| for the top
10. The paper used WRN-28-4 and 70 runs; we use the simple CNN with a 5x5 first
layer (SPEC E3 allows it), so the filter count per run is 256.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from randlabels.analysis.alignment import eigenvector_overlap, misalignment_report
from randlabels.analysis.covariance import weight_covariance
from randlabels.analysis.stats import estimate

from . import cifar_alignment_runs as runs
from .common import input_covariance

PROFILES = {
    # quick: 64 filters per run (as in E2 quick), 3 runs pooled = 192 filters.
    "quick": {**runs.PROFILES["quick"], "first_kernel": 5, "top": 10},
    "paper": {**runs.PROFILES["paper"], "first_kernel": 5, "top": 10, "seeds": 10},
}


def _first_weight(path: Path) -> torch.Tensor:
    state = torch.load(path, map_location="cpu")
    key = next(k for k in state if k.endswith("weight"))
    return state[key]


def run(config: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    k = config["first_kernel"]
    dirs = runs.train_all(
        config, first_kernel=k, tag=f"simple_cnn{k}", labels_list=("random:10",), track=False
    )
    run_dirs = dirs["random:10"]
    cfg = runs.run_config(config, "random:10", 0, k)
    sigma_x = input_covariance(cfg, k)
    trained = [_first_weight(d / "weights" / "final.pt") for d in run_dirs]
    init = [_first_weight(d / "weights" / "init.pt") for d in run_dirs]
    out: dict[str, Any] = {"experiment": "E3", "config": config, "kernel": k}
    top = config["top"]
    lam_x, v_x = sigma_x.eigh()
    out["data_eigenvalues"] = lam_x.tolist()
    out["data_eigenvectors"] = v_x[:, :top].T.tolist()
    for tag, weights in (("trained", trained), ("init", init)):
        sw = weight_covariance(weights)
        lam_w, v_w = sw.eigh()
        rep = misalignment_report(sw, sigma_x, seed=0)
        overlap = eigenvector_overlap(sw, sigma_x, k=top)
        # Sigma_w orders its eigenvectors by f(lambda)^2, which need not follow lambda;
        # so also match each data eigenvector with its closest weight eigenvector.
        best = (v_w.T @ v_x[:, :top]).abs().max(dim=0).values
        out[tag] = {
            "samples": sw.count,
            "overlap_top": overlap.tolist(),
            "best_match_top": best.tolist(),
            "weight_eigenvalues": lam_w.tolist(),
            "weight_eigenvectors": v_w[:, :top].T.tolist(),
            "M_data": rep.data,
            "M_random": rep.random_mean,
            "ratio": rep.ratio,
            "example_filters": weights[0].reshape(weights[0].shape[0], -1)[:top].tolist(),
        }
    per_seed = [eigenvector_overlap(weight_covariance(w), sigma_x, k=top) for w in trained]
    out["overlap_mean_top"] = estimate([float(o.mean()) for o in per_seed]).to_dict()
    out["verdicts"] = []  # E3 has no claim of its own in SPEC section 5
    return out


def plot(results: dict[str, Any]) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    from randlabels.analysis.filters import filter_images

    k = results["kernel"]
    top = len(results["data_eigenvectors"])
    rows = [
        ("eigenvectors of Sigma_x (data)", results["data_eigenvectors"]),
        ("eigenvectors of Sigma_w (trained, pooled)", results["trained"]["weight_eigenvectors"]),
        ("eigenvectors of Sigma_w (at init)", results["init"]["weight_eigenvectors"]),
        ("trained filters (one run)", results["trained"]["example_filters"]),
    ]
    fig, axes = plt.subplots(len(rows), top, figsize=(top * 1.1, len(rows) * 1.3))
    for r, (title, vecs) in enumerate(rows):
        tiles = filter_images(torch.tensor(vecs, dtype=torch.float64), 3, k)
        for i in range(top):
            ax = axes[r, i]
            ax.imshow(tiles[i].numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(title, fontsize=6, rotation=0, ha="right", va="center")
        if r == 1:
            for i, o in enumerate(results["trained"]["overlap_top"]):
                axes[r, i].set_title(f"|<u,v>|={o:.2f}", fontsize=6)
    fig.suptitle(
        f"E3: top {top} eigenvectors, {k}x{k} first layer, random labels "
        f"({results['trained']['samples']} pooled filters)",
        fontsize=9,
    )
    return {"e3_eigenvectors": fig}
