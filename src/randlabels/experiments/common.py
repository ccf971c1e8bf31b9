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


def metric_series(run_dir: Path, key: str, x: str = "epoch") -> tuple[list[Any], list[Any]]:
    """(x, values) of a metric over a run's log lines that have it; x is "epoch" or "step"."""
    xs, values = [], []
    for line in read_metrics(run_dir):
        if key in line:
            xs.append(line[x])
            values.append(line[key])
    return xs, values


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


def split_config(
    config: dict[str, Any],
    *,
    split: int,
    labels: str,
    epochs: int,
    lr: float,
    seed: int,
    model: dict[str, Any],
) -> RunConfig:
    """A CIFAR-10 run on one of the disjoint splits ``config["splits"]`` (transfer experiments:
    split 0 upstream, split 1 downstream), SGD with momentum 0.9, logged every 10 steps."""
    return make_config(
        {
            "seed": seed,
            "data": {
                "dataset": "cifar10",
                "data_dir": config.get("data_dir"),
                "splits": config["splits"],
                "split": split,
                "n_test": 1000,
                "labels": labels,
            },
            "model": model,
            "train": {
                "epochs": epochs,
                "batch_size": config["batch_size"],
                "lr": lr,
                "momentum": 0.9,
                "log_every": 10,
            },
        }
    )


def train_acc_curve(run_dir: Path) -> tuple[list[int], list[float]]:
    """(steps, train accuracy) of a run's logged lines."""
    return metric_series(run_dir, "train_acc", x="step")


def train_downstream(
    cfg: RunConfig,
    run_dir: Path,
    init: Callable[[torch.nn.Module], dict[str, Any]],
    *,
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
) -> tuple[list[int], list[float]]:
    """Train a downstream run whose model is first changed by ``init(model)`` (a transfer
    or an initialization; what it returns is kept in ``run_dir/transfer.json``).

    Returns the run's train-accuracy curve."""

    def hook(model, _data):
        atomic_write_json(run_dir / "transfer.json", init(model))

    run_training(
        cfg, run_dir, callbacks=callbacks, dataset=dataset_for(cfg), progress=progress,
        model_hook=hook,
    )  # fmt: skip
    return train_acc_curve(run_dir)


def speed_record(
    steps: list[int], acc: list[float], target: float, run_dir: Path
) -> dict[str, Any]:
    """Learning-speed numbers of one curve. A run that never reaches the target is censored
    at its last step: a lower bound, which makes "slower than scratch" conservative."""
    from randlabels.analysis.learning_speed import area_under_curve, steps_to_target

    reached = steps_to_target(steps, acc, target)
    return {
        "steps": steps,
        "train_acc": acc,
        "steps_to_target": min(reached, steps[-1]),
        "reached_target": reached <= steps[-1],
        "auc": area_under_curve(steps, acc),
        "run_dir": str(run_dir),
    }


def speed_vs(records: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> dict[str, Any]:
    """Paired differences (95% CI over seeds) of steps-to-target and AUC between speed
    records and the baseline records of the same seeds."""
    from randlabels.analysis.learning_speed import paired_difference

    return {
        key: paired_difference([r[field] for r in records], [r[field] for r in baseline]).to_dict()
        for key, field in (("steps", "steps_to_target"), ("auc", "auc"))
    }
