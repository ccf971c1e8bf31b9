"""Alignment tracking during training, `randlabels align`, and the experiment runner."""

from __future__ import annotations

import json

import pytest
import torch

from randlabels.analysis import patch_covariance
from randlabels.cli import main
from randlabels.data.dataset import ArrayDataset
from randlabels.experiments import e4a_f_synthetic
from randlabels.experiments.runner import run_experiment
from randlabels.train.callbacks import AlignmentTracker
from randlabels.train.config import load_config
from randlabels.train.run import prepare_data, read_metrics, run_training


def tiny_images(n=256, seed=0) -> ArrayDataset:
    g = torch.Generator().manual_seed(seed)
    # Smooth random images: neighbouring pixels correlate, as in natural images.
    base = torch.rand(n, 3, 6, 6, generator=g)
    x = torch.nn.functional.interpolate(base, size=12, mode="bilinear", align_corners=False)
    x = (x * 255).round().to(torch.uint8)
    y = torch.randint(0, 10, (n,), generator=g)
    return ArrayDataset("tiny", x, y, x[:64], y[:64], [str(i) for i in range(10)])


CNN = [
    "data.dataset=cifar10",  # name only; the tensors come from `dataset=`
    "data.labels=random:10",
    "model.name=simple_cnn",
    "model.widths=[64,16]",
    "model.first_layer_std=0.002",
    "train.epochs=3",
    "train.batch_size=32",
    "train.lr=0.05",
]


def test_tracker_logs_misalignment_and_f_at_start_and_every_epoch(tmp_path):
    ds = tiny_images()
    cfg = load_config(None, CNN)
    data = prepare_data(cfg, ds, progress=False)
    x = data.train_x.float() / 255
    x = (x - data.mean.float()[None, :, None, None]) / data.std.float()[None, :, None, None]
    tracker = AlignmentTracker(["conv"], sigma_x={"conv": patch_covariance(x, 3)})
    run_training(cfg, tmp_path / "run", callbacks=[tracker], dataset=ds, progress=False)
    lines = [x for x in read_metrics(tmp_path / "run") if "align.conv.ratio" in x]
    assert [x["epoch"] for x in lines] == [0.0, 1.0, 2.0, 3.0]
    assert len(lines[0]["align.conv.eigenvalues"]) == 27 and len(lines[-1]["align.conv.f"]) == 27
    # At an isotropic initialization both scores are sampling noise of similar size.
    assert 0.6 < lines[0]["align.conv.ratio"] < 1.4
    assert all(x["align.conv.M_random"] > 0 for x in lines)


def test_align_command_prints_a_table_and_writes_figures(tmp_path, capsys, monkeypatch):
    ds = tiny_images()
    cfg = load_config(None, CNN)
    for seed in (0, 1):
        run_training(
            load_config(None, [*CNN, f"seed={seed}"]),
            tmp_path / f"r{seed}",
            dataset=ds,
            progress=False,
        )
    monkeypatch.setattr("randlabels.experiments.common.dataset_for", lambda cfg: ds)
    assert cfg.model.name == "simple_cnn"
    code = main(
        [
            "align",
            str(tmp_path / "r0"),
            str(tmp_path / "r1"),
            "--layer",
            "conv",
            "--out",
            str(tmp_path / "al"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "conv" in out and " 27 " in out and "128" in out  # d = 27, 2 x 64 pooled filters
    table = json.loads((tmp_path / "al/align.json").read_text())["layers"][0]
    assert table["samples"] == 128 and table["M_random"] > 0
    assert (tmp_path / "al/f_conv.png").exists()
    assert (tmp_path / "al/eigenvectors_conv.png").exists()
    assert main(["align", str(tmp_path / "r0"), "--layer", "nope"]) == 2
    assert "analysable layers are: conv" in capsys.readouterr().err


def test_experiment_runner_writes_results_figures_and_skips_finished_runs(tmp_path, monkeypatch):
    tiny = {
        "seeds": 2,
        "batch_size": 128,
        "overrides": {
            "left": {"n_samples": 512, "epochs": 2, "widths": [64, 16]},
            "middle": {"n_samples": 512, "epochs": 2, "widths": [64, 16]},
            "right": {"n_samples": 512, "epochs": 2, "widths": [64, 16]},
        },
    }
    monkeypatch.setitem(e4a_f_synthetic.PROFILES, "quick", tiny)
    results = run_experiment("E4a", "quick", out=tmp_path)
    saved = json.loads((tmp_path / "E4a/results.json").read_text())
    assert saved["experiment"] == "E4a" and (tmp_path / "E4a/e4a_f_synthetic.png").exists()
    claims = {v["claim"]: v for v in saved["verdicts"]}
    assert set(claims) == {"C1", "C3", "C4"}
    assert all(
        v["verdict"] in ("reproduced", "not reproduced", "inconclusive") for v in claims.values()
    )
    assert len(saved["settings"]["middle"]["mean_f"]) == 30
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 6
    stamps = [(r / "summary.json").stat().st_mtime_ns for r in runs]
    again = run_experiment("E4a", "quick", out=tmp_path)
    assert [(r / "summary.json").stat().st_mtime_ns for r in runs] == stamps  # not retrained
    assert again["verdicts"] == results["verdicts"]


def test_unknown_experiment_and_profile_are_named():
    with pytest.raises(ValueError, match="unknown experiment 'E99'; expected one of: E1, E2"):
        run_experiment("E99")
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        run_experiment("E4a", "fast")
