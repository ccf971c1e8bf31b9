"""E1 and E5 end to end on a tiny image set: results, verdicts, figures, paired runs."""

from __future__ import annotations

import json

import pytest
import torch

from randlabels.data.dataset import ArrayDataset
from randlabels.experiments import common, e1_transfer, e5_covariance_init, e7_specialization
from randlabels.experiments.runner import run_experiment


def tiny_images(n=320, seed=0) -> ArrayDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    base = torch.rand(n, 3, 4, 4, generator=g) * 0.5
    base[torch.arange(n), y % 3] += 0.5  # a learnable colour cue
    x = torch.nn.functional.interpolate(base, size=16, mode="bilinear", align_corners=False)
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    return ArrayDataset("tiny", x, y, x[:64], y[:64], [str(i) for i in range(10)])


@pytest.fixture
def tiny(monkeypatch):
    ds = tiny_images()
    monkeypatch.setattr(common, "dataset_for", lambda cfg: ds)
    return ds


def test_e1_runs_paired_variants_and_gives_verdicts(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(e1_transfer.PROFILES, "quick", {
        "model": "vgg_small", "width": 0.25, "splits": [128, 128], "seeds": 2,
        "batch_size": 32, "down_epochs": 2, "down_lr": 0.01,
        "settings": {"positive": {"classes": 10, "epochs": 1, "lr": 0.01},
                     "negative": {"classes": 10, "epochs": 2, "lr": 0.05}},
        "targets": {"real": 0.2, "random": 0.2}, "probe": 16, "dense_steps": 3,
    })  # fmt: skip
    run_experiment("E1", "quick", out=tmp_path)
    saved = json.loads((tmp_path / "E1/results.json").read_text())
    assert {v["claim"] for v in saved["verdicts"]} == {"C6", "C7", "C8"}
    assert (tmp_path / "E1/e1_transfer.png").exists()
    down = saved["settings"]["positive"]["downstream"]["real"]["curves"]
    assert set(down) == {"scratch", "rescaled", "not rescaled"} and len(down["scratch"]) == 2
    # Paired: the scratch and transferred runs of one seed share the fresh head.
    head = "head.weight"
    a = torch.load(f"{down['scratch'][0]['run_dir']}/weights/init.pt")[head]
    b = torch.load(f"{down['rescaled'][0]['run_dir']}/weights/init.pt")[head]
    assert torch.equal(a, b)
    info = json.loads(open(f"{down['rescaled'][0]['run_dir']}/transfer.json").read())
    assert info["mode"] == "rescaled" and len(info["layers"]) == 4


def test_e5_compares_four_first_layer_variants(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(e5_covariance_init.PROFILES, "quick", {
        "splits": [128, 128], "widths": [32, 16], "up_epochs": 1, "down_epochs": 2,
        "batch_size": 32, "lr": 0.01, "seeds": 2, "at_steps": [4],
    })  # fmt: skip
    run_experiment("E5", "quick", out=tmp_path)
    saved = json.loads((tmp_path / "E5/results.json").read_text())
    assert set(saved["accuracy_at"]["4"]) == {"scratch", "rescaled", "not rescaled", "covariance"}
    assert saved["verdicts"][0]["claim"] == "C9"
    cov_run = saved["curves"]["covariance"][0]["run_dir"]
    info = json.loads(open(f"{cov_run}/transfer.json").read())
    assert info["mode"] == "covariance" and info["samples"] == {"conv": 64}  # 32 x 2 pooled


def test_e1_shares_scratch_baselines_between_its_settings(tiny, tmp_path, monkeypatch):
    test_e1_runs_paired_variants_and_gives_verdicts(tiny, tmp_path, monkeypatch)
    saved = json.loads((tmp_path / "E1/results.json").read_text())
    settings = saved["settings"]
    pos = settings["positive"]["downstream"]["real"]["curves"]["scratch"]
    neg = settings["negative"]["downstream"]["real"]["curves"]["scratch"]
    assert [c["run_dir"] for c in pos] == [c["run_dir"] for c in neg]
    # Every upstream and downstream run logged activation statistics on the probe batch;
    # downstream ones at each of the first dense_steps steps.
    steps, _ = common.metric_series(pos[0]["run_dir"], "act.features.1.rate", x="step")
    assert steps[:5] == [0, 1, 2, 3, 4]


def test_e7_sweeps_and_reuses_e1_negative_runs(tiny, tmp_path, monkeypatch):
    e1 = {
        "model": "vgg_small", "width": 0.25, "splits": [128, 128], "seeds": 2,
        "batch_size": 32, "down_epochs": 2, "down_lr": 0.01,
        "settings": {"positive": {"classes": 10, "epochs": 1, "lr": 0.01},
                     "negative": {"classes": 10, "epochs": 2, "lr": 0.05}},
        "targets": {"real": 0.2, "random": 0.2}, "probe": 16, "dense_steps": 3,
    }  # fmt: skip
    monkeypatch.setitem(e1_transfer.PROFILES, "quick", e1)
    monkeypatch.setitem(e7_specialization.PROFILES, "quick", {
        **{k: e1[k] for k in ("model", "width", "splits", "seeds", "batch_size", "down_epochs",
                               "down_lr", "probe", "dense_steps")},
        "base": e1["settings"]["negative"], "target": 0.2, "epochs": [1, 2], "classes": [2, 10],
        "ms": [1], "widen": [2], "widen_last": 1, "critical_epochs": [1],
    })  # fmt: skip
    run_experiment("E1", "quick", out=tmp_path)
    e1_runs = set((tmp_path / "runs").iterdir())
    run_experiment("E7", "quick", out=tmp_path)
    saved = json.loads((tmp_path / "E7/results.json").read_text())
    new = set((tmp_path / "runs").iterdir()) - e1_runs
    # E7's base setting is E1's negative one: its upstream, scratch and rescaled runs are
    # E1's. New: upstream epochs 1 and classes 2 (x2 seeds, each with a transfer), m=1,
    # width x2 (upstream, scratch, transfer), critical stages (upstream, transfer).
    names = sorted(p.name.rsplit("-", 1)[0] for p in new)
    assert len(new) == 2 * (2 + 2 + 1 + 3 + 2), names
    assert not any(n.startswith("down-real-scratch-s") for n in names)
    groups = {
        (r["group"], str(r[k]))
        for r in saved["table"]
        for k in ("upstream_epochs", "classes", "m", "width")
        if r["group"] in k
    }
    assert {("epochs", "1"), ("epochs", "2"), ("classes", "2"), ("classes", "10"),
            ("m", "1"), ("m", "all"), ("width", "1"), ("width", "2")} <= groups  # fmt: skip
    relus = saved["relu_layers"]
    assert len(relus) == 4 and set(saved["switch_drops"][0]) == set(relus)
    # The drop is the last upstream rate minus the lowest of the first downstream rates.
    up = saved["activations"]["upstream"][0][relus[-1]]["rate"]
    dn = saved["activations"]["rescaled"][0][relus[-1]]
    lowest = min(r for s, r in zip(dn["steps"], dn["rate"]) if s <= 3)
    assert saved["switch_drops"][0][relus[-1]] == pytest.approx(up[-1] - lowest)
    assert saved["verdicts"][0]["claim"] == "C10"
    assert len(saved["critical"]["rows"]) == 1
    for name in ("e7_activation_switch", "e7_transfer_sweep", "e7_critical_stages"):
        assert (tmp_path / f"E7/{name}.png").exists()
