"""E1: transfer after random-label pre-training (paper Figure 1; claims C6, C7, C8).

Pre-train on split A with random labels, then train on the disjoint split B with
(a) real labels and (b) 10 random labels, from: scratch; pre-trained and rescaled
to initial norms (SPEC 2.6); pre-trained without rescaling. New head downstream;
untransferred parts are the scratch initialization of the downstream seed, so
every comparison is paired by seed. Two upstream settings: one meant to give
positive transfer (short, gentle pre-training) and one meant to give negative
transfer (long pre-training at a high learning rate, so later layers specialize).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from randlabels.analysis.learning_speed import paired_difference
from randlabels.analysis.stats import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    Verdict,
    combine,
    verdict_greater_than,
    verdict_less_than,
)

from .common import speed_vs
from .transfer_runs import DOWNSTREAM, downstream_run, probe_batch, upstream_run

VARIANTS = {"scratch": "scratch", "rescaled": "rescaled", "not rescaled": "pretrained"}
PROFILES = {
    # quick: a small VGG (vgg_small at half width), 2,000 + 2,000 images (paper: VGG16, 20k + 25k).
    "quick": {
        "model": "vgg_small", "width": 0.5, "splits": [2000, 2000], "seeds": 3,
        "batch_size": 128, "down_epochs": 12, "down_lr": 0.01,
        "settings": {
            "positive": {"classes": 10, "epochs": 10, "lr": 0.01},
            "negative": {"classes": 10, "epochs": 60, "lr": 0.05},
        },
        "targets": {"real": 0.5, "random": 0.3}, "probe": 256, "dense_steps": 30,
    },
    "paper": {
        "model": "vgg16", "width": 1.0, "splits": [20000, 25000], "seeds": 5,
        "batch_size": 128, "down_epochs": 60, "down_lr": 0.01,
        "settings": {
            "positive": {"classes": 10, "epochs": 20, "lr": 0.01},
            "negative": {"classes": 1000, "epochs": 200, "lr": 0.05},
        },
        "targets": {"real": 0.9, "random": 0.5}, "probe": 500, "dense_steps": 100,
    },
}  # fmt: skip


def run(config: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    progress = config.get("progress", False)
    probe = probe_batch(config)
    results: dict[str, Any] = {}
    for setting, up in config["settings"].items():
        upstream = [
            upstream_run(config, classes=up["classes"], epochs=up["epochs"], lr=up["lr"],
                         seed=seed, probe=probe, progress=progress)
            for seed in range(config["seeds"])
        ]  # fmt: skip
        results[setting] = {"upstream": up, "downstream": {}}
        for down in DOWNSTREAM:
            target = config["targets"][down]
            curves: dict[str, list[dict]] = {v: [] for v in VARIANTS}
            for seed in range(config["seeds"]):
                for variant, mode in VARIANTS.items():
                    curves[variant].append(
                        downstream_run(config, upstream[seed], labels=down, mode=mode,
                                       seed=seed, target=target, probe=probe,
                                       progress=progress)
                    )  # fmt: skip
            vs = {v: speed_vs(curves[v], curves["scratch"]) for v in ("rescaled", "not rescaled")}
            results[setting]["downstream"][down] = {
                "target": target,
                "curves": curves,
                "steps_vs_scratch": {v: d["steps"] for v, d in vs.items()},
                "auc_vs_scratch": {v: d["auc"] for v, d in vs.items()},
            }
    return {
        "experiment": "E1",
        "config": config,
        "settings": results,
        "verdicts": _verdicts(config, results),
    }


def _est(d: dict):
    from randlabels.analysis.stats import Estimate

    return Estimate(d["mean"], d["low"], d["high"], d["n"], d["values"])


def _verdicts(config: dict[str, Any], results: dict[str, Any]) -> list[dict]:
    profile = config["profile"]
    data = f"CIFAR-10 splits {config['splits']}, {config['model']} (E1), downstream real labels"
    pos = results["positive"]["downstream"]["real"]
    neg = results["negative"]["downstream"]["real"]
    target = pos["target"]
    d_pos = _est(pos["steps_vs_scratch"]["rescaled"])
    c6v = verdict_less_than(d_pos, 0.0)
    c6 = Verdict(
        "C6",
        "random-label pre-training speeds up training on real labels (positive "
        "setting, pre-trained + rescaled vs scratch)",
        f"steps to train accuracy {target}, rescaled - scratch: {d_pos}",
        d_pos.to_dict(),
        "< 0 (CI)",
        c6v,
        profile,
        data,
    )
    # "no rescaling at least as fast": slower is a CI entirely above 0.
    d_nr = paired_difference(
        [c["steps_to_target"] for c in pos["curves"]["not rescaled"]],
        [c["steps_to_target"] for c in pos["curves"]["rescaled"]],
    )
    if d_nr.low is None:
        part = INCONCLUSIVE
    elif d_nr.low > 0:
        part = NOT_REPRODUCED
    elif d_nr.mean <= 0:
        part = REPRODUCED
    else:
        part = INCONCLUSIVE
    c7 = Verdict(
        "C7",
        "the transfer survives rescaling and no rescaling is at least as fast",
        f"C6: {c6v}; steps, not rescaled - rescaled: {d_nr}",
        d_nr.to_dict(),
        "C6 reproduced and the difference not above 0",
        combine([c6v, part]),
        profile,
        data,
    )
    d_neg = _est(neg["steps_vs_scratch"]["rescaled"])
    c8 = Verdict(
        "C8",
        "negative transfer exists (negative setting, pre-trained slower)",
        f"steps to train accuracy {neg['target']}, rescaled - scratch: {d_neg}",
        d_neg.to_dict(),
        "> 0 (CI)",
        verdict_greater_than(d_neg, 0.0),
        profile,
        data,
    )
    return [c6.to_dict(), c7.to_dict(), c8.to_dict()]


def plot(results: dict[str, Any]) -> dict[str, Any]:
    import matplotlib.pyplot as plt
    import numpy as np

    settings = results["settings"]
    fig, axes = plt.subplots(len(settings), 2, figsize=(11, 4 * len(settings)), squeeze=False)
    for r, (setting, res) in enumerate(settings.items()):
        for c, (down, d) in enumerate(res["downstream"].items()):
            ax = axes[r, c]
            for i, (variant, curves) in enumerate(d["curves"].items()):
                n = min(len(x["train_acc"]) for x in curves)
                arr = np.array([x["train_acc"][:n] for x in curves])
                ax.plot(curves[0]["steps"][:n], arr.mean(0), color=f"C{i}", label=variant)
                ax.fill_between(
                    curves[0]["steps"][:n], arr.min(0), arr.max(0), color=f"C{i}", alpha=0.15
                )
            ax.axhline(d["target"], color="gray", ls=":", lw=1)
            up = res["upstream"]
            ax.set_title(
                f"{setting} setting: upstream random:{up['classes']}, {up['epochs']} "
                f"epochs, lr {up['lr']}\ndownstream {down} labels",
                fontsize=9,
            )
            ax.set_xlabel("downstream step")
            ax.set_ylabel("train accuracy")
            ax.legend(fontsize=8)
    fig.suptitle("E1: downstream training after random-label pre-training (paper Figure 1)")
    return {"e1_transfer": fig}
