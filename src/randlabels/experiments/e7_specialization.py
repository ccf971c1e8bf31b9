"""E7: specialization at later layers and negative transfer (paper Section 4; claim C10).

Around E1's negative setting (long random-label pre-training at a high learning rate),
each downstream run with real labels is compared with the scratch run of the same seed
(the paired baseline of E1):

- sweep the upstream epochs and the number of random classes;
- transfer only the first m layers (the rest and the head from the scratch init);
- widen the last conv stage(s) x2, x4 (upstream and downstream alike) and compare
  with scratch at the same width;
- critical stages: random labels on the *same* images that are then trained with
  real labels, for increasing upstream lengths (all layers but the head kept, not
  rescaled: training simply continues with a new head); final test accuracy and
  speed against scratch.

Activation statistics (SPEC 2.8) of every ReLU layer on a fixed probe batch of
downstream images are recorded through upstream training and densely across the
switch. The drop of a layer's activation rate at the switch is its rate at the end of
upstream training minus its lowest rate over the first ``dense_steps`` downstream
steps (the rescaling and the first updates of the new task both count).

Negative transfer is measured as the area under the train-accuracy curve (mean
accuracy over downstream training) of scratch minus that of the transferred run:
unlike steps-to-target it is not censored when a run never reaches the target.

Measured (quick, 3 seeds, 2026-12-04): the later layers do not drop at the switch:
they are already nearly silent at the end of upstream training (activation rate
0.01-0.10 on the probe against 0.5 at init, up to 40 of 64 units dead), so C10's
drop statistic stays inconclusive; 2 random classes upstream give the clearest
negative transfer (AUC -0.29 [-0.35, -0.23]).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from randlabels.analysis.learning_speed import paired_difference
from randlabels.analysis.stats import Verdict, combine, estimate, verdict_greater_than
from randlabels.models import analysable_layers, create_model, relu_layers

from .common import metric_series, speed_vs
from .e1_transfer import PROFILES as E1_PROFILES
from .transfer_runs import downstream_run, probe_batch, upstream_run


def _from_e1(profile: str) -> dict[str, Any]:
    """E1's model, data and downstream settings, so E7's base setting *is* E1's negative
    setting and its runs (upstream, scratch, rescaled) are shared."""
    e1 = E1_PROFILES[profile]
    keys = ("model", "width", "splits", "seeds", "batch_size", "down_epochs", "down_lr",
            "probe", "dense_steps")  # fmt: skip
    return {**{k: e1[k] for k in keys}, "base": dict(e1["settings"]["negative"]),
            "target": e1["targets"]["real"]}  # fmt: skip


PROFILES = {
    # quick: vgg_small at half width (conv 16-32-64-64), 2,000 + 2,000 CIFAR-10 images.
    # Measured (2 CPU cores): 13 min with critical stages up to 60 epochs; 40 saves ~1.5.
    # Only the last conv stage is widened: widening the last two x4 makes a step ~4.6x
    # dearer, the last one alone ~1.5x, which keeps E7 within its 15-minute budget.
    "quick": {**_from_e1("quick"), "epochs": [10, 30, 60], "classes": [2, 10, 50],
              "ms": [1, 2, 3], "widen": [2, 4], "widen_last": 1,
              "critical_epochs": [5, 20, 40]},
    "paper": {**_from_e1("paper"), "epochs": [20, 100, 200], "classes": [10, 100, 1000],
              "ms": list(range(1, 13)), "widen": [2, 4], "widen_last": 2,
              "critical_epochs": [10, 40, 100]},
}  # fmt: skip


def _stage_widths(config: dict[str, Any], factor: float) -> list[float] | None:
    if factor == 1:
        return None
    stages = {"vgg_small": 4, "vgg11": 5, "vgg16": 5, "resnet18": 4}[config["model"]]
    last = config["widen_last"]
    return [1.0] * (stages - last) + [float(factor)] * last


def _layer_names(config: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(ReLU layers, transferable layers) of the base model."""
    model = create_model(config["model"], width=config["width"])
    return list(relu_layers(model)), list(analysable_layers(model))[:-1]


def _last(run_dir: str, key: str) -> float:
    _, values = metric_series(Path(run_dir), key, x="step")
    return values[-1]


def _activation_series(run_dir: str, relus: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for layer in relus:
        steps, rate = metric_series(Path(run_dir), f"act.{layer}.rate", x="step")
        _, dead = metric_series(Path(run_dir), f"act.{layer}.dead", x="step")
        out[layer] = {"steps": steps, "rate": rate, "dead": dead}
    return out


def _switch_drops(up: dict, down: dict, dense_steps: int) -> dict[str, float]:
    drops = {}
    for layer, series in down.items():
        before = up[layer]["rate"][-1]
        after = [r for s, r in zip(series["steps"], series["rate"]) if s <= dense_steps]
        drops[layer] = before - min(after)
    return drops


def _vs_scratch(records: list[dict], scratch: list[dict]) -> dict[str, Any]:
    vs = speed_vs(records, scratch)
    return {"steps_vs_scratch": vs["steps"], "auc_vs_scratch": vs["auc"],
            "reached_target": [r["reached_target"] for r in records]}  # fmt: skip


def run(config: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    progress = config.get("progress", False)
    seeds = range(config["seeds"])
    probe = probe_batch(config)
    relus, body = _layer_names(config)
    base, target = config["base"], config["target"]

    def up(seed, classes=base["classes"], epochs=base["epochs"], widths=None, split=0):
        return upstream_run(config, classes=classes, epochs=epochs, lr=base["lr"], seed=seed,
                            stage_widths=widths, split=split, probe=probe,
                            progress=progress)  # fmt: skip

    def down(source, mode, seed, m=None, widths=None):
        return downstream_run(config, source, labels="real", mode=mode, seed=seed,
                              target=target, m=m, stage_widths=widths, probe=probe,
                              progress=progress)  # fmt: skip

    scratch = [down(None, "scratch", s) for s in seeds]
    rows: list[dict[str, Any]] = []

    def add_row(records, *, epochs, classes, width, m, group):
        rows.append({"group": group, "upstream_epochs": epochs, "classes": classes,
                     "width": width, "m": m, **_vs_scratch(records, scratch),
                     "auc": [r["auc"] for r in records]})  # fmt: skip

    # Sweeps of upstream epochs and classes; every other setting as the base.
    base_runs = [up(s) for s in seeds]
    base_down = [down(base_runs[s], "rescaled", s) for s in seeds]
    for epochs in config["epochs"]:
        recs = base_down if epochs == base["epochs"] else [
            down(up(s, epochs=epochs), "rescaled", s) for s in seeds]  # fmt: skip
        add_row(recs, epochs=epochs, classes=base["classes"], width=1, m="all", group="epochs")
    for classes in config["classes"]:
        recs = base_down if classes == base["classes"] else [
            down(up(s, classes=classes), "rescaled", s) for s in seeds]  # fmt: skip
        add_row(recs, epochs=base["epochs"], classes=classes, width=1, m="all", group="classes")
    # Only the first m layers transferred (rescaled), the rest as scratch.
    for m in config["ms"]:
        recs = [down(base_runs[s], "rescaled", s, m=m) for s in seeds]
        add_row(recs, epochs=base["epochs"], classes=base["classes"], width=1, m=m, group="m")
    add_row(base_down, epochs=base["epochs"], classes=base["classes"], width=1, m="all",
            group="m")  # fmt: skip
    # Wider later layers: transferred vs scratch at the same width.
    negative = {1: [sc["auc"] - r["auc"] for sc, r in zip(scratch, base_down)]}
    add_row(base_down, epochs=base["epochs"], classes=base["classes"], width=1, m="all",
            group="width")  # fmt: skip
    widened: dict[str, Any] = {}
    for factor in config["widen"]:
        w = _stage_widths(config, factor)
        sc = [down(None, "scratch", s, widths=w) for s in seeds]
        tr = [down(up(s, widths=w), "rescaled", s, widths=w) for s in seeds]
        negative[factor] = [a["auc"] - b["auc"] for a, b in zip(sc, tr)]
        rows.append({"group": "width", "upstream_epochs": base["epochs"],
                     "classes": base["classes"], "width": factor, "m": "all",
                     **_vs_scratch(tr, sc), "auc": [r["auc"] for r in tr]})  # fmt: skip
        widened[str(factor)] = {"stage_widths": w, "scratch": sc, "transferred": tr}
    # Critical stages: random labels, then real labels, on the same images (split 1).
    scratch_test = [_last(r["run_dir"], "test_acc") for r in scratch]
    critical = []
    for epochs in config["critical_epochs"]:
        recs = [down(up(s, epochs=epochs, split=1), "pretrained", s) for s in seeds]
        final = [_last(r["run_dir"], "test_acc") for r in recs]
        critical.append({
            "upstream_epochs": epochs, **_vs_scratch(recs, scratch), "final_test_acc": final,
            "final_test_acc_vs_scratch": paired_difference(final, scratch_test).to_dict(),
        })  # fmt: skip
    # Activations across the switch (base setting, all layers transferred and rescaled).
    activations = {
        "upstream": [_activation_series(str(r), relus) for r in base_runs],
        "rescaled": [_activation_series(r["run_dir"], relus) for r in base_down],
        "scratch": [_activation_series(r["run_dir"], relus) for r in scratch],
        "upstream_steps": [_last(str(r), "step") for r in base_runs],
    }
    drops = [
        _switch_drops(u, d, config["dense_steps"])
        for u, d in zip(activations["upstream"], activations["rescaled"])
    ]
    results = {
        "experiment": "E7",
        "config": config,
        "relu_layers": relus,
        "transferable_layers": body,
        "scratch": scratch,
        "table": rows,
        "negative_transfer_auc": {str(k): v for k, v in negative.items()},
        "widened": widened,
        "critical": {"scratch_final_test_acc": scratch_test, "rows": critical},
        "activations": activations,
        "switch_drops": drops,
    }
    results["verdicts"] = [_c10(config, results)]
    return results


def _c10(config: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    relus = results["relu_layers"]
    # Conv ReLUs are every ReLU but the ones after dense layers (vgg has none before the
    # head), so the first and the last ReLU are the first and last conv layers here.
    first, last = relus[0], relus[-1]
    drops = results["switch_drops"]
    d_drop = paired_difference([d[last] for d in drops], [d[first] for d in drops])
    v_drop = verdict_greater_than(d_drop, 0.0)
    neg = results["negative_transfer_auc"]
    widest = str(max(config["widen"]))
    d_widen = paired_difference(neg["1"], neg[widest])
    v_widen = verdict_greater_than(d_widen, 0.0)
    nt = estimate(neg["1"])
    return Verdict(
        claim="C10",
        statement="in the negative setting later layers' activation rates drop more at the "
        "switch than the first ones', and widening later layers reduces negative transfer",
        statistic=(
            f"activation-rate drop at the switch, {last} - {first}: {d_drop}; "
            f"negative transfer (AUC scratch - rescaled) at width 1 minus at width x{widest}: "
            f"{d_widen} (at width 1 it is {nt})"
        ),
        estimate=d_drop.to_dict(),
        threshold="both differences > 0 (CI)",
        verdict=combine([v_drop, v_widen]),
        profile=config["profile"],
        data=f"CIFAR-10 splits {config['splits']}, {config['model']} width {config['width']} "
        f"(E7, E1's negative setting)",
        detail=f"drop larger in the last layer: {v_drop}; widening reduces it: {v_widen}",
    ).to_dict()


def plot(results: dict[str, Any]) -> dict[str, Any]:
    import matplotlib.pyplot as plt
    import numpy as np

    figs = {}
    relus = results["relu_layers"]
    act = results["activations"]
    fig, axes = plt.subplots(1, len(relus), figsize=(3.2 * len(relus), 3.4), squeeze=False)
    for ax, layer in zip(axes[0], relus):
        for i, (up, dn, n_up) in enumerate(zip(act["upstream"], act["rescaled"],
                                                act["upstream_steps"])):  # fmt: skip
            kw = {"label": "upstream, then rescaled transfer"} if i == 0 else {}
            ax.plot(np.array(up[layer]["steps"]) - n_up, up[layer]["rate"], color="C3", **kw)
            ax.plot(dn[layer]["steps"], dn[layer]["rate"], color="C3")
        for i, sc in enumerate(act["scratch"]):
            kw = {"label": "scratch"} if i == 0 else {}
            ax.plot(sc[layer]["steps"], sc[layer]["rate"], color="C0", ls="--", **kw)
        ax.axvline(0, color="gray", lw=1)
        ax.set_xscale("symlog", linthresh=10)
        ax.set_title(layer, fontsize=9)
        ax.set_xlabel("step (0 = switch)")
    axes[0, 0].set_ylabel("activation rate on the probe batch")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("E7: activation rate per ReLU layer around the switch (one line per seed)")
    figs["e7_activation_switch"] = fig

    groups = [("epochs", "upstream_epochs", "upstream epochs"),
              ("classes", "classes", "random classes upstream"),
              ("m", "m", "layers transferred (m)"),
              ("width", "width", "last-stage width factor")]  # fmt: skip
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
    for ax, (group, key, label) in zip(axes, groups):
        rows = [r for r in results["table"] if r["group"] == group]
        xs = [str(r[key]) for r in rows]
        means = [r["auc_vs_scratch"]["mean"] for r in rows]
        err = [[m - (r["auc_vs_scratch"]["low"] if r["auc_vs_scratch"]["low"] is not None
                     else m) for m, r in zip(means, rows)],
               [(r["auc_vs_scratch"]["high"] if r["auc_vs_scratch"]["high"] is not None
                 else m) - m for m, r in zip(means, rows)]]  # fmt: skip
        ax.errorbar(xs, means, yerr=err, fmt="o", capsize=3)
        ax.axhline(0, color="gray", lw=1)
        ax.set_xlabel(label)
    axes[0].set_ylabel("AUC transferred - scratch\n(train accuracy, 95% CI)")
    fig.suptitle("E7: downstream speed against scratch (below 0: negative transfer)")
    figs["e7_transfer_sweep"] = fig

    crit = results["critical"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    xs = [0] + [r["upstream_epochs"] for r in crit["rows"]]
    finals = [crit["scratch_final_test_acc"]] + [r["final_test_acc"] for r in crit["rows"]]
    axes[0].errorbar(xs, [np.mean(v) for v in finals], yerr=[np.std(v) for v in finals],
                     fmt="o-", capsize=3)  # fmt: skip
    axes[0].set_xlabel("epochs of random labels first (same images)")
    axes[0].set_ylabel("final test accuracy (mean, sd)")
    d = [r["auc_vs_scratch"] for r in crit["rows"]]
    lo = [e["mean"] - (e["low"] if e["low"] is not None else e["mean"]) for e in d]
    hi = [(e["high"] if e["high"] is not None else e["mean"]) - e["mean"] for e in d]
    axes[1].errorbar(xs[1:], [e["mean"] for e in d], yerr=[lo, hi], fmt="o-", capsize=3)
    axes[1].axhline(0, color="gray", lw=1)
    axes[1].set_xlabel("epochs of random labels first (same images)")
    axes[1].set_ylabel("AUC - scratch (95% CI)")
    fig.suptitle("E7: critical stages: random labels then real labels on the same images")
    fig.tight_layout()
    figs["e7_critical_stages"] = fig
    return figs
