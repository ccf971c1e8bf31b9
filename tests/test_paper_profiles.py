"""Every experiment's paper profile yields valid run configs (they run only on a GPU)."""

from __future__ import annotations

import pytest

from randlabels.experiments import (
    cifar_alignment_runs,
    e4a_f_synthetic,
    e5_covariance_init,
    e6_deep_alignment,
    e6_transfer_more,
    e7_specialization,
    transfer_runs,
)
from randlabels.experiments.runner import EXPERIMENTS, experiment_config


@pytest.mark.parametrize("name", list(EXPERIMENTS))
@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_profiles_resolve(name, profile):
    config = experiment_config(name, profile, data_dir="/data")
    assert config["seeds"] >= 3 and config["profile"] == profile


def test_paper_run_configs_validate():
    for name in ("E2", "E3"):
        c = experiment_config(name, "paper")
        cfg = cifar_alignment_runs.run_config(c, "random:10", 0, c["first_kernel"])
        assert cfg.train.epochs == 40 and cfg.model.widths == [256, 64]
        assert cfg.data.n_train is None  # all 50,000 images: ~195 iterations per epoch
    c = experiment_config("E4a", "paper")
    for setting in e4a_f_synthetic.SETTINGS:
        cfg = e4a_f_synthetic.setting_config(c, setting, 0)
        assert cfg.train.epochs == e4a_f_synthetic.SETTINGS[setting]["epochs"]
    c = experiment_config("E1", "paper")
    for up in c["settings"].values():
        cfg = transfer_runs.upstream_config(c, up["classes"], up["epochs"], up["lr"], 0)
        assert cfg.model.name == "vgg16" and cfg.data.splits == [20000, 25000]
    c = experiment_config("E7", "paper")
    widths = e7_specialization._stage_widths(c, 4)
    assert widths == [1, 1, 1, 4, 4]
    cfg = transfer_runs.downstream_config(c, "real", 0, widths)
    assert cfg.model.stage_widths == widths and cfg.train.epochs == c["down_epochs"]
    c = experiment_config("E5", "paper")
    assert e5_covariance_init._config(c, 1, "real", c["down_epochs"], 0).data.split == 1
    c = experiment_config("E6a", "paper")
    assert e6_deep_alignment.run_config(c, 0).model.name == "vgg16"
    c = experiment_config("E6t", "paper")
    assert e6_transfer_more._config(c, 0, "random:10", c["up_epochs"], 0).model.batch_norm
