"""Activation statistics of ReLU layers (SPEC 2.8)."""

from __future__ import annotations

import pytest
import torch

from randlabels.analysis.activations import activation_statistics
from randlabels.data.loader import TensorLoader
from randlabels.models import create_model
from randlabels.train.callbacks import ActivationTracker
from randlabels.train.config import OptimConfig
from randlabels.train.trainer import Trainer


def test_rates_dead_units_and_means_on_a_hand_made_layer():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU())
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
        model[0].bias.zero_()
    x = torch.tensor([[1.0, -1.0], [2.0, 3.0]])
    # outputs: [[1, 0, 0], [2, 3, 0]] -> 3 of 6 positive, unit 2 dead, mean 1.0
    (s,) = activation_statistics(model, x)
    assert s.layer == "1" and s.units == 3
    assert s.activation_rate == pytest.approx(0.5)
    assert s.dead_units == 1 and s.mean_activation == pytest.approx(1.0)


def test_conv_units_are_channels_and_every_relu_is_reported():
    model = create_model("vgg_small", width=0.25, seed=0)
    with torch.no_grad():
        model.features[0].bias.fill_(-100.0)  # kill every channel of the first layer
    stats = activation_statistics(model, torch.randn(8, 3, 32, 32))
    assert len(stats) == 4
    assert stats[0].dead_units == stats[0].units == 8 and stats[0].activation_rate == 0.0
    with pytest.raises(ValueError, match="ReLU layers are"):
        activation_statistics(model, torch.randn(2, 3, 32, 32), layers=["nope"])


def test_tracker_logs_the_first_steps_densely():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 5, generator=g), torch.randint(0, 2, (64,), generator=g)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    tracker = ActivationTracker(x[:16], dense_steps=3)
    trainer = Trainer(
        model,
        TensorLoader(x, y, batch_size=16),
        OptimConfig(epochs=2, lr=0.1),
        callbacks=[tracker],
        progress=False,
    )
    trainer.fit()
    steps = [line["step"] for line in trainer.history if "act.1.rate" in line]
    assert steps == [0, 1, 2, 3, 4, 8]  # start, the first 3 steps densely, then epoch ends
