"""E1 and E5 end to end on a tiny image set: results, verdicts, figures, paired runs."""

from __future__ import annotations

import json

import pytest
import torch

from randlabels.data.dataset import ArrayDataset
from randlabels.experiments import common, e1_transfer, e5_covariance_init
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
        "targets": {"real": 0.2, "random": 0.2},
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
