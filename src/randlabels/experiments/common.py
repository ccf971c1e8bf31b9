"""Helpers shared by the experiment modules: runs, data, seeds and figures."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from randlabels.analysis.covariance import Covariance, patch_covariance
from randlabels.data.dataset import ArrayDataset
from randlabels.train.config import RunConfig, config_from_dict
from randlabels.train.run import (
    PreparedData,
    config_hash,
    is_finished,
    prepare_data,
    read_metrics,
    run_training,
)
from randlabels.train.trainer import Callback
from randlabels.utils.io import atomic_open, atomic_write_json

_DATASETS: dict[tuple[str, str | None], ArrayDataset] = {}


def dataset_for(cfg: RunConfig) -> ArrayDataset | None:
    """Load a file-based dataset once per process (synthetic sets are cheap: None)."""
    if cfg.data.dataset.startswith("gaussian") or cfg.data.dataset == "imagenet":
        return None
    from randlabels.train.run import load_run_dataset

    key = (cfg.data.dataset, cfg.data.data_dir)
    if key not in _DATASETS:
        _DATASETS[key] = load_run_dataset(cfg, progress=False)
    return _DATASETS[key]


def make_config(d: dict[str, Any]) -> RunConfig:
    return config_from_dict(d).validate()


def run_dir_for(cfg: RunConfig, runs_root: str | Path, tag: str) -> Path:
    """Runs are named by their config hash, so two experiments asking for the same
    run share one directory and it is trained once."""
    return Path(runs_root) / f"{tag}-{config_hash(cfg)}"


def standardized(data: PreparedData) -> torch.Tensor:
    """The run's training inputs as the network sees them (no augmentation), float32."""
    x = data.train_x
    if x.dim() == 4:
        x = x.float() / 255.0
        if data.mean is not None:
            m = data.mean.float()[None, :, None, None]
            s = data.std.float()[None, :, None, None]
            x = (x - m) / s
        return x
    return x.float()


def input_covariance(cfg: RunConfig, kernel_size: int | None) -> Covariance:
    """Sigma_x of the first layer: patches (conv) or input vectors (dense), SPEC 2.1."""
    data = prepare_data(cfg, dataset_for(cfg), progress=False)
    x = standardized(data)
    if kernel_size is None:
        from randlabels.analysis.covariance import CovarianceAccumulator

        acc = CovarianceAccumulator(x[0].numel())
        acc.update(x.reshape(x.shape[0], -1))
        return acc.result()
    return patch_covariance(x, kernel_size)


def train(
    cfg: RunConfig,
    run_dir: Path,
    *,
    callbacks: Sequence[Callback] | Callable[[], Sequence[Callback]] = (),
    progress: bool = False,
) -> dict[str, Any]:
    """Train one run (skipped when finished); returns its summary."""
    if not is_finished(run_dir) and callable(callbacks):
        callbacks = callbacks()
    elif callable(callbacks):
        callbacks = ()
    return run_training(
        cfg, run_dir, callbacks=callbacks, dataset=dataset_for(cfg), progress=progress
    )


def metric_series(run_dir: Path, key: str) -> tuple[list[float], list[Any]]:
    """(epochs, values) of a metric over a run's log lines that have it."""
    epochs, values = [], []
    for line in read_metrics(run_dir):
        if key in line:
            epochs.append(line["epoch"])
            values.append(line[key])
    return epochs, values


def write_results(out_dir: Path, results: dict[str, Any]) -> Path:
    path = Path(out_dir) / "results.json"
    atomic_write_json(path, results)
    return path


def save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    with atomic_open(path, "wb") as fh:
        fh.write(buf.getvalue())


def seeds(n: int) -> list[int]:
    return list(range(n))
