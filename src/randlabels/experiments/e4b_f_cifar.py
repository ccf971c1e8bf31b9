"""E4b: the eigenvalue function f of the simple CNN on CIFAR-10 (paper Figure 4; claim C5).

Uses the runs of E2 (same settings, trained once): f(lambda_i) = sqrt(v_i^T Sigma_w v_i)
of the first layer after several epochs, random vs real labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from randlabels.analysis.stats import Verdict, combine, estimate, verdict_greater_than
from randlabels.train.run import read_metrics

from . import cifar_alignment_runs as runs

PROFILES = {
    "quick": {**runs.PROFILES["quick"], "f_epochs": [6, 12, 24]},
    "paper": {**runs.PROFILES["paper"], "f_epochs": [5, 10, 20, 40]},
}
# Read off the paper's Figure 4 (SPEC E4b): drawn into the figure for comparison.
PAPER_REFERENCE = {
    "init": 0.002,
    "random_peak": {"f": 0.10, "lambda": 0.25},
    "real_peak": {"f": 0.024, "lambda": 1.0},
}


def _f_by_epoch(run_dir: Path) -> tuple[list[float], dict[int, list[float]]]:
    eigenvalues: list[float] = []
    f: dict[int, list[float]] = {}
    for line in read_metrics(run_dir):
        for k, v in line.items():
            if k.endswith(".eigenvalues"):
                eigenvalues = v
            elif k.startswith("align.") and k.endswith(".f"):
                f[round(line["epoch"])] = v
    return eigenvalues, f


def run(config: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    dirs = runs.train_all(config)
    epochs = [0, *config["f_epochs"]]
    curves: dict[str, list[dict]] = {}
    peaks: dict[str, dict[int, list[float]]] = {}
    for labels, run_dirs in dirs.items():
        curves[labels], peaks[labels] = [], {e: [] for e in epochs}
        for run_dir in run_dirs:
            lam, f = _f_by_epoch(run_dir)
            missing = [e for e in epochs if e not in f]
            if missing:
                raise RuntimeError(f"{run_dir} has no f for epochs {missing}")
            curves[labels].append({"eigenvalues": lam, "f": {str(e): f[e] for e in epochs}})
            for e in epochs:
                peaks[labels][e].append(max(f[e]))
    first, last = config["f_epochs"][0], config["f_epochs"][-1]
    grows = estimate([b - a for a, b in zip(peaks["random:10"][first], peaks["random:10"][last])])
    random_vs_real = estimate(
        [r - q for r, q in zip(peaks["random:10"][last], peaks["real"][last])]
    )
    v1, v2 = verdict_greater_than(grows, 0.0), verdict_greater_than(random_vs_real, 0.0)
    verdict = Verdict(
        claim="C5",
        statement="f grows with training, and more with random labels than with real ones",
        statistic=(
            f"peak f at epoch {last} minus at epoch {first} (random labels): {grows}; "
            f"random minus real peak f at epoch {last}: {random_vs_real}"
        ),
        estimate=grows.to_dict(),
        threshold="both differences > 0",
        verdict=combine([v1, v2]),
        profile=config["profile"],
        data=f"CIFAR-10, {config['n_train'] or 50000} training images, simple_cnn (E4b)",
        detail=f"growth: {v1}; random > real: {v2}",
    )
    summary = {
        labels: {str(e): estimate(peaks[labels][e]).to_dict() for e in epochs} for labels in peaks
    }
    return {
        "experiment": "E4b",
        "config": config,
        "curves": curves,
        "peak_f": summary,
        "paper_reference": PAPER_REFERENCE,
        "verdicts": [verdict.to_dict()],
    }


def plot(results: dict[str, Any]) -> dict[str, Any]:
    import matplotlib.pyplot as plt
    import numpy as np

    ref = results["paper_reference"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, (labels, curves) in zip(axes, results["curves"].items()):
        lam = np.array(curves[0]["eigenvalues"])
        epochs = list(curves[0]["f"])
        cmap = plt.get_cmap("viridis")
        for i, e in enumerate(epochs):
            f = np.array([c["f"][e] for c in curves]).mean(0)
            ax.plot(lam, f, "o-", ms=3, color=cmap(i / max(len(epochs) - 1, 1)), label=f"epoch {e}")
        ax.axhline(ref["init"], color="gray", ls=":", label="paper: f at init")
        key = "random_peak" if labels.startswith("random") else "real_peak"
        ax.plot(ref[key]["lambda"], ref[key]["f"], "r*", ms=12, label="paper: peak")
        ax.set_xscale("log")
        ax.set_xlabel("data eigenvalue lambda")
        ax.set_title(f"{labels} labels (mean of {len(curves)} seeds)")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("f(lambda): weight std along data direction")
    fig.suptitle("E4b: the eigenvalue function f of the simple CNN's first layer (paper Fig. 4)")
    return {"e4b_f_cifar": fig}
