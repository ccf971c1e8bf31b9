"""E6 (transfer half): covariance initialization of the first m conv layers (paper 2.5).

Upstream: the VGG of E6a (BatchNorm, small init scale), random labels on split A.
Downstream: real labels on the disjoint split B from scratch, and with the first
m = 1, 2, 3 conv layers covariance-initialized (``covariance_init_layers_``: layer 1
from the pooled filter covariance, deeper layers from the pooled f in the
eigenbasis of their new inputs). No pre-trained weight is copied. SPEC section 5
has no claim for this part; the report gives the paired differences to scratch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from randlabels.train.run import prepare_data
from randlabels.transfer.pipeline import covariance_init_layers_

from .common import (
    dataset_for,
    run_dir_for,
    speed_record,
    speed_vs,
    split_config,
    standardized,
    train_downstream,
)
from .common import train as train_run

PROFILES = {
    # quick: vgg_small at half width (like E1/E7), ~2x cheaper than full width, which
    # showed no effect either (m=1,2,3 minus scratch, steps to 0.5: +2.2, +0.3, +0.6).
    "quick": {"model": "vgg_small", "width": 0.5, "splits": [2000, 2000], "seeds": 3,
              "up_epochs": 20, "down_epochs": 12, "lr": 0.05, "batch_size": 128, "batch_norm": True,
              "init_scale": 0.1, "ms": [1, 2, 3], "target": 0.5, "probe": 500},
    "paper": {"model": "vgg16", "width": 1.0, "splits": [20000, 25000], "seeds": 5,
              "up_epochs": 100, "down_epochs": 30, "lr": 0.05, "batch_size": 128,
              "batch_norm": True, "init_scale": 0.1, "ms": [1, 2, 3], "target": 0.9,
              "probe": 2000},
}  # fmt: skip


def _config(config, split: int, labels: str, epochs: int, seed: int):
    model = {
        "name": config["model"],
        "width": config.get("width", 1.0),
        "batch_norm": config["batch_norm"],
        "init_scale": config["init_scale"],
    }
    return split_config(
        config, split=split, labels=labels, epochs=epochs, lr=config["lr"], seed=seed, model=model
    )


def run(config: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    progress = config.get("progress", False)
    upstream = []
    for seed in range(config["seeds"]):
        cfg = _config(config, 0, "random:10", config["up_epochs"], seed)
        run_dir = run_dir_for(cfg, config["runs_root"], f"e6t-up-s{seed}")
        train_run(cfg, run_dir, progress=progress)
        upstream.append(run_dir)
    variants = ["scratch", *[f"covariance m={m}" for m in config["ms"]]]
    curves: dict[str, list[dict]] = {v: [] for v in variants}
    for seed in range(config["seeds"]):
        base = _config(config, 1, "real", config["down_epochs"], 100 + seed)
        data = prepare_data(base, dataset_for(base), progress=False)
        probe = standardized(data)[: config["probe"]]
        for variant in variants:
            m = 0 if variant == "scratch" else int(variant.split("=")[1])
            # Covariance runs pool every upstream run: their number is part of the identity.
            tag = f"e6t-down-m{m}" + (f"-pool{len(upstream)}" if m else "")
            run_dir = run_dir_for(base, config["runs_root"], f"{tag}-s{seed}")

            def init(model, m=m, seed=seed, probe=probe):
                if m == 0:
                    return {"mode": "scratch", "layers": []}
                g = torch.Generator().manual_seed(seed)
                return covariance_init_layers_(model, upstream, m, probe, generator=g)

            steps, acc = train_downstream(base, run_dir, init, progress=progress)
            curves[variant].append(speed_record(steps, acc, config["target"], run_dir))
    vs_scratch = {v: speed_vs(curves[v], curves["scratch"]) for v in variants[1:]}
    return {
        "experiment": "E6t",
        "config": config,
        "curves": curves,
        "vs_scratch": vs_scratch,
        "verdicts": [],
    }


def plot(results: dict[str, Any]) -> dict[str, Any]:
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (variant, curves) in enumerate(results["curves"].items()):
        n = min(len(c["train_acc"]) for c in curves)
        arr = np.array([c["train_acc"][:n] for c in curves])
        ax.plot(curves[0]["steps"][:n], arr.mean(0), color=f"C{i}", label=variant)
        ax.fill_between(curves[0]["steps"][:n], arr.min(0), arr.max(0), color=f"C{i}", alpha=0.15)
    ax.axhline(results["config"]["target"], color="gray", ls=":", lw=1)
    ax.set_xlabel("downstream step")
    ax.set_ylabel("train accuracy (real labels)")
    ax.set_title("E6: covariance initialization of the first m conv layers")
    ax.legend(fontsize=8)
    return {"e6_transfer_more": fig}
