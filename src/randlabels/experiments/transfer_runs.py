"""Upstream and downstream runs shared by the transfer experiments E1 and E7.

A run is named by what it is (upstream: labels, epochs, learning rate, widths, split;
downstream: labels, transfer mode, m and the upstream run it starts from) plus its
config hash, so a setting that two experiments ask for is trained once: E1's negative
setting is E7's base setting, and every scratch baseline of one downstream task is
the same run.

Every run records activation statistics (SPEC 2.8) of its ReLU layers on one fixed
probe batch of *downstream* inputs: at the start and every epoch upstream, and also
at each of the first ``dense_steps`` steps downstream, to watch the switch (E7).
The config keys used here: model, width, splits, batch_size, down_epochs, down_lr,
probe, dense_steps, runs_root, data_dir.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from randlabels.train.callbacks import ActivationTracker
from randlabels.train.run import prepare_data
from randlabels.transfer.pipeline import apply_transfer_

from . import common
from .common import (
    run_dir_for,
    speed_record,
    split_config,
    standardized,
    train,
    train_downstream,
)

DOWNSTREAM = {"real": "real", "random": "random:10"}


def _model(config: dict[str, Any], stage_widths: list[float] | None) -> dict[str, Any]:
    model = {"name": config["model"], "width": config["width"]}
    if stage_widths is not None:
        model["stage_widths"] = list(stage_widths)
    return model


def _widths_tag(stage_widths: list[float] | None) -> str:
    return "" if stage_widths is None else "-w" + "x".join(f"{w:g}" for w in stage_widths)


def probe_batch(config: dict[str, Any]) -> torch.Tensor:
    """The first ``config["probe"]`` standardized images of the downstream split."""
    cfg = downstream_config(config, "real", seed=0)
    data = prepare_data(cfg, common.dataset_for(cfg), progress=False)
    return standardized(data)[: config["probe"]]


def upstream_config(
    config: dict[str, Any],
    classes: int,
    epochs: int,
    lr: float,
    seed: int,
    stage_widths: list[float] | None = None,
    split: int = 0,
):
    return split_config(
        config, split=split, labels=f"random:{classes}", epochs=epochs, lr=lr, seed=seed,
        model=_model(config, stage_widths),
    )  # fmt: skip


def upstream_run(
    config: dict[str, Any],
    *,
    classes: int,
    epochs: int,
    lr: float,
    seed: int,
    stage_widths: list[float] | None = None,
    split: int = 0,
    probe: torch.Tensor | None = None,
    progress: bool = False,
) -> Path:
    """Train (or find) a random-label upstream run on ``split``; returns its directory."""
    cfg = upstream_config(config, classes, epochs, lr, seed, stage_widths, split)
    tag = f"up-r{classes}-e{epochs}-lr{lr:g}{_widths_tag(stage_widths)}-split{split}-s{seed}"
    run_dir = run_dir_for(cfg, config["runs_root"], tag)
    probe = probe_batch(config) if probe is None else probe
    train(cfg, run_dir, callbacks=lambda: [ActivationTracker(probe)], progress=progress)
    return run_dir


def downstream_config(
    config: dict[str, Any], labels: str, seed: int, stage_widths: list[float] | None = None
):
    """The downstream run on split 1; its seed is 100 + the upstream seed it pairs with."""
    return split_config(
        config, split=1, labels=DOWNSTREAM.get(labels, labels), epochs=config["down_epochs"],
        lr=config["down_lr"], seed=100 + seed, model=_model(config, stage_widths),
    )  # fmt: skip


def downstream_run(
    config: dict[str, Any],
    source: Path | None,
    *,
    labels: str,
    mode: str,
    seed: int,
    target: float,
    m: int | None = None,
    stage_widths: list[float] | None = None,
    probe: torch.Tensor | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Train (or find) a downstream run that starts from ``source`` per ``mode`` (the
    first ``m`` layers; all but the head when None); returns its speed record."""
    base = downstream_config(config, labels, seed, stage_widths)
    if mode == "scratch":
        tag = f"down-{labels}-scratch{_widths_tag(stage_widths)}-s{seed}"
    else:
        if source is None:
            raise ValueError(f"transfer mode {mode!r} needs an upstream run")
        tag = f"down-{labels}-{mode}" + ("" if m is None else f"-m{m}") + f"-from-{source.name}"
    run_dir = run_dir_for(base, config["runs_root"], tag)
    probe = probe_batch(config) if probe is None else probe

    def init(model):
        if mode == "scratch":
            return {"mode": mode, "layers": []}
        return {**apply_transfer_(model, mode, [source], m=m), "sources": [str(source)]}

    tracker = ActivationTracker(probe, dense_steps=config["dense_steps"])
    steps, acc = train_downstream(base, run_dir, init, callbacks=[tracker], progress=progress)
    return speed_record(steps, acc, target, run_dir)
