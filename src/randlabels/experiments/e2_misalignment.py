"""E2: misalignment of the first layer over training (paper Figure 2; SPEC E2, claims C1, C2).

simple_cnn on CIFAR-10 with random and real labels; at every epoch M_data (the
misalignment of Sigma_w in the data eigenbasis) and M_random (mean over 20
Haar-random bases). Alignment shows as M_data staying low while M_random grows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from randlabels.analysis.stats import (
    Verdict,
    estimate,
    verdict_less_than,
)
from randlabels.train.run import read_metrics

from . import cifar_alignment_runs as runs
from .common import metric_series

PROFILES = runs.PROFILES
THRESHOLD = 0.5  # SPEC C1, C2


def run(config: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    dirs = runs.train_all(config)
    curves: dict[str, list[dict]] = {}
    for labels, run_dirs in dirs.items():
        curves[labels] = []
        for run_dir in run_dirs:
            series = {}
            for key in ("M_data", "M_random", "M_random_std", "ratio"):
                epochs, values = _series(run_dir, key)
                series[key] = values
            _, acc = metric_series(run_dir, "epoch_train_acc")
            series["epochs"] = epochs
            series["train_acc"] = [None, *acc]  # no training accuracy before step 0
            series["run_dir"] = str(run_dir)
            curves[labels].append(series)
    verdicts = []
    for claim, labels, statement in (
        ("C1", "random:10", "after random-label training the first layer is aligned with the data"),
        ("C2", "real", "alignment also holds with real labels"),
    ):
        ratios = [c["ratio"][-1] for c in curves[labels]]
        est = estimate(ratios)
        verdicts.append(
            Verdict(
                claim=claim,
                statement=statement,
                statistic=f"M_data / mean(M_random), first layer, last epoch ({labels} labels)",
                estimate=est.to_dict(),
                threshold=f"< {THRESHOLD}",
                verdict=verdict_less_than(est, THRESHOLD),
                profile=config["profile"],
                data=f"CIFAR-10, {config['n_train'] or 50000} training images, simple_cnn (E2)",
            ).to_dict()
        )
    return {"experiment": "E2", "config": config, "curves": curves, "verdicts": verdicts}


def _series(run_dir: Path, key: str) -> tuple[list[float], list[float]]:
    """Epochs and values of ``align.<first layer>.<key>`` (the tracker's metric names)."""
    first = next(
        line for line in read_metrics(run_dir) if any(k.startswith("align.") for k in line)
    )
    name = next(k for k in first if k.startswith("align.") and k.endswith("." + key))
    return metric_series(run_dir, name)


def plot(results: dict[str, Any]) -> dict[str, Any]:
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (labels, curves) in zip(axes, results["curves"].items()):
        for key, color in (("M_data", "C0"), ("M_random", "C3")):
            arr = np.array([c[key] for c in curves], dtype=float)
            epochs = curves[0]["epochs"]
            mean = arr.mean(0)
            ax.plot(epochs, mean, color=color, label=f"{key} (mean of {len(curves)} seeds)")
            if len(curves) > 1:
                ax.fill_between(epochs, arr.min(0), arr.max(0), color=color, alpha=0.2)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(f"simple_cnn, CIFAR-10, {labels} labels")
        ax.legend()
    axes[0].set_ylabel("misalignment of the first layer")
    fig.suptitle("E2: M_data stays low while M_random grows (paper Figure 2); band: min-max")
    return {"e2_misalignment": fig}
