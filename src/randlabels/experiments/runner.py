"""Run an experiment by name and profile: train (skipping finished runs), analyse, plot.

randlabels experiment E2 --profile quick --data-dir ../shared/data
randlabels experiment E4a --profile paper --seeds 5
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path
from typing import Any

from randlabels.experiments.common import save_figure, write_results

EXPERIMENTS: dict[str, str] = {
    "E1": "randlabels.experiments.e1_transfer",
    "E2": "randlabels.experiments.e2_misalignment",
    "E3": "randlabels.experiments.e3_eigenvectors",
    "E4a": "randlabels.experiments.e4a_f_synthetic",
    "E4b": "randlabels.experiments.e4b_f_cifar",
    "E5": "randlabels.experiments.e5_covariance_init",
    "E6a": "randlabels.experiments.e6_deep_alignment",
    "E6t": "randlabels.experiments.e6_transfer_more",
    "E7": "randlabels.experiments.e7_specialization",
}
PROFILES = ("quick", "paper")


def get_experiment(name: str):
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; expected one of: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[name])


def experiment_config(
    name: str,
    profile: str = "quick",
    *,
    seeds: int | None = None,
    data_dir: str | None = None,
    runs_root: str | Path = "results/runs",
) -> dict[str, Any]:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of: {', '.join(PROFILES)}")
    if seeds is not None and seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    module = get_experiment(name)
    config = dict(module.PROFILES[profile])
    if seeds is not None:
        config["seeds"] = seeds
    config.update(
        {"experiment": name, "profile": profile, "data_dir": data_dir, "runs_root": str(runs_root)}
    )
    return config


def run_experiment(
    name: str,
    profile: str = "quick",
    *,
    seeds: int | None = None,
    data_dir: str | None = None,
    out: str | Path = "results",
    progress: bool = False,
) -> dict[str, Any]:
    """Run one experiment into ``out/<name>/`` (results.json and figures)."""
    module = get_experiment(name)
    out = Path(out)
    config = experiment_config(
        name, profile, seeds=seeds, data_dir=data_dir, runs_root=out / "runs"
    )
    config["progress"] = progress
    out_dir = out / name
    start = time.perf_counter()
    results = module.run(config, out_dir)
    results["wall_time_s"] = time.perf_counter() - start
    write_results(out_dir, results)
    plot_experiment(name, out_dir)
    return results


def plot_experiment(name: str, out_dir: str | Path) -> list[Path]:
    """Draw an experiment's figures from its results.json only."""
    out_dir = Path(out_dir)
    results = json.loads((out_dir / "results.json").read_text(encoding="utf-8"))
    paths = []
    for fname, fig in get_experiment(name).plot(results).items():
        path = out_dir / f"{fname}.png"
        save_figure(fig, path)
        paths.append(path)
    return paths
