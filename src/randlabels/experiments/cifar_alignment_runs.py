"""The simple-CNN runs on CIFAR-10 shared by E2 (misalignment over training) and E4b (f).

SPEC section 4 and the paper's Figure 2 and 4: simple_cnn (conv 3x3, 256 filters,
dense 64), first-layer std 0.002, SGD lr 0.01 momentum 0.9, batch 256, random
and real labels; the first layer's alignment and f are recorded at every epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from randlabels.models import analysable_layers
from randlabels.train.callbacks import AlignmentTracker
from randlabels.train.config import RunConfig
from randlabels.train.run import build_model, prepare_data

from .common import dataset_for, input_covariance, make_config, run_dir_for, train

# paper: the paper's simple CNN (256 filters, dense 64) and its ~195 iterations per
# epoch (50k images, batch 256). quick (2 CPU cores): 64 first-layer filters, which
# makes a step 4x cheaper (the 256-filter conv output dominates the cost), 2,000 images.
# Measured: with 256 filters and 12 epochs E2 alone took 7 minutes; C1/C2 came out the
# same (ratio 0.027 / 0.019) as with 64 filters and 24 epochs (0.027 / 0.021) in 2.
PROFILES = {
    "quick": {"n_train": 2000, "n_test": 1000, "epochs": 24, "seeds": 3, "first_kernel": 3,
              "widths": [64, 64]},
    "paper": {"n_train": None, "n_test": None, "epochs": 40, "seeds": 5, "first_kernel": 3,
              "widths": [256, 64]},
}  # fmt: skip
LABELS = ("random:10", "real")


def run_config(config: dict[str, Any], labels: str, seed: int, first_kernel: int = 3) -> RunConfig:
    return make_config(
        {
            "seed": seed,
            "data": {
                "dataset": "cifar10",
                "data_dir": config.get("data_dir"),
                "n_train": config["n_train"],
                "n_test": config["n_test"],
                "labels": labels,
            },
            "model": {
                "name": "simple_cnn",
                "first_layer_std": 0.002,
                "first_kernel": first_kernel,
                "width": config.get("width", 1.0),
                "widths": config.get("widths"),
            },
            "train": {
                "epochs": config["epochs"],
                "batch_size": 256,
                "optimizer": "sgd",
                "lr": 0.01,
                "momentum": 0.9,
                "log_every": 10,
            },
        }
    )


def first_layer_name(cfg: RunConfig) -> str:
    data = prepare_data(cfg, dataset_for(cfg), progress=False)
    model = build_model(cfg, data.num_classes, data.input_shape)
    return next(iter(analysable_layers(model)))


def train_all(
    config: dict[str, Any],
    first_kernel: int = 3,
    tag: str = "simple_cnn",
    labels_list: tuple[str, ...] = LABELS,
    track: bool = True,
) -> dict:
    """Train every (labels, seed) run; returns {labels: [run_dir per seed]}."""
    out: dict[str, list[Path]] = {}
    sigma_x = None
    layer = None
    for labels in labels_list:
        out[labels] = []
        for seed in range(config["seeds"]):
            cfg = run_config(config, labels, seed, first_kernel)
            run_dir = run_dir_for(
                cfg, config["runs_root"], f"{tag}-{labels.replace(':', '')}-s{seed}"
            )

            def callbacks(cfg=cfg):
                nonlocal sigma_x, layer
                if not track:
                    return []
                if sigma_x is None:
                    # The training subset does not depend on the seed or the labels.
                    sigma_x = input_covariance(cfg, first_kernel)
                    layer = first_layer_name(cfg)
                return [AlignmentTracker([layer], sigma_x={layer: sigma_x})]

            train(cfg, run_dir, callbacks=callbacks, progress=config.get("progress", False))
            out[labels].append(run_dir)
    return out
