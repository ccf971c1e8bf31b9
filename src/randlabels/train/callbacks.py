"""Trainer callbacks that measure what the network learns while it trains."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from randlabels.analysis.alignment import eigenvalue_function, misalignment_report
from randlabels.analysis.covariance import Covariance, layer_input_covariance, weight_covariance
from randlabels.models import analysable_layers
from randlabels.train.trainer import Callback, Trainer


class AlignmentTracker(Callback):
    """Records M_data, M_random (mean, std), their ratio and f for chosen layers (SPEC 2.4, 2.5).

    Args:
        layers: analysable layer names; default the first layer.
        sigma_x: fixed input covariances per layer (e.g. the patch covariance of the
            training images for the first layer). Layers without one get the
            covariance of their input on ``probe`` at every measurement, since the
            inputs of deeper layers change as earlier layers train.
        probe: standardized inputs ``[B, ...]`` used for those layers.
        every: measure every this many steps; 0 measures at every epoch end.
        num_random: Haar-random bases for the control (SPEC: 20).
        seed: seed of the random bases (the same bases at every measurement).
        record_f: also log f (one value per data eigen-direction).

    Metrics are logged as ``align.<layer>.M_data``, ``.M_random``, ``.M_random_std``,
    ``.ratio`` and ``.f``, and once at step 0 (``.eigenvalues`` of Sigma_x there too).
    """

    def __init__(
        self,
        layers: Sequence[str] | None = None,
        *,
        sigma_x: dict[str, Covariance] | None = None,
        probe: torch.Tensor | None = None,
        every: int = 0,
        num_random: int = 20,
        seed: int = 0,
        record_f: bool = True,
    ) -> None:
        self.layers = list(layers) if layers is not None else None
        self.sigma_x = dict(sigma_x or {})
        self.probe = probe
        self.every = int(every)
        self.num_random = num_random
        self.seed = seed
        self.record_f = record_f

    def _layers(self, model: torch.nn.Module) -> list[str]:
        names = list(analysable_layers(model))
        if self.layers is None:
            return names[:1]
        unknown = [n for n in self.layers if n not in names]
        if unknown:
            raise ValueError(f"unknown layers {unknown}; analysable layers are: {', '.join(names)}")
        return self.layers

    def measure(self, model: torch.nn.Module, with_eigenvalues: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        layers = analysable_layers(model)
        for name in self._layers(model):
            sx = self.sigma_x.get(name)
            if sx is None:
                if self.probe is None:
                    raise ValueError(
                        f"layer {name!r} needs either a fixed sigma_x or a probe batch"
                    )
                sx = layer_input_covariance(model, name, [self.probe])
            sw = weight_covariance(layers[name].weight.detach())
            key = f"align.{name}"
            # One network's layer may have fewer units than d + 1: then Sigma_w is
            # singular and only f is recorded (pool seeds afterwards for M).
            if sw.count > sw.cov.shape[0]:
                rep = misalignment_report(sw, sx, num_random=self.num_random, seed=self.seed)
                out[f"{key}.M_data"] = rep.data
                out[f"{key}.M_random"] = rep.random_mean
                out[f"{key}.M_random_std"] = rep.random_std
                out[f"{key}.ratio"] = rep.ratio
            if self.record_f or with_eigenvalues:
                lam, f = eigenvalue_function(sw, sx)
                if self.record_f:
                    out[f"{key}.f"] = f.tolist()
                if with_eigenvalues:
                    out[f"{key}.eigenvalues"] = lam.tolist()
        return out

    def on_train_start(self, trainer: Trainer) -> dict[str, Any]:
        return self.measure(trainer.model, with_eigenvalues=True)

    def on_step_end(self, trainer: Trainer) -> dict[str, Any] | None:
        if self.every and trainer.step % self.every == 0:
            return self.measure(trainer.model)
        return None

    def on_epoch_end(self, trainer: Trainer) -> dict[str, Any] | None:
        if not self.every:
            return self.measure(trainer.model)
        return None


class ActivationTracker(Callback):
    """Records activation rate, dead units and mean activation of every ReLU (SPEC 2.8)
    on a fixed probe batch: at the start, every ``every`` steps (0: each epoch end), and
    at every one of the first ``dense_steps`` steps (to watch the switch to a new task).

    Metrics: ``act.<layer>.rate``, ``act.<layer>.dead``, ``act.<layer>.mean``.
    """

    def __init__(self, probe: torch.Tensor, *, every: int = 0, dense_steps: int = 0) -> None:
        self.probe = probe
        self.every = int(every)
        self.dense_steps = int(dense_steps)

    def measure(self, model: torch.nn.Module) -> dict[str, Any]:
        from randlabels.analysis.activations import activation_statistics

        out: dict[str, Any] = {}
        for s in activation_statistics(model, self.probe):
            out[f"act.{s.layer}.rate"] = s.activation_rate
            out[f"act.{s.layer}.dead"] = s.dead_units
            out[f"act.{s.layer}.mean"] = s.mean_activation
        return out

    def on_train_start(self, trainer: Trainer) -> dict[str, Any]:
        return self.measure(trainer.model)

    def on_step_end(self, trainer: Trainer) -> dict[str, Any] | None:
        if trainer.step <= self.dense_steps or (self.every and trainer.step % self.every == 0):
            return self.measure(trainer.model)
        return None

    def on_epoch_end(self, trainer: Trainer) -> dict[str, Any] | None:
        if not self.every and trainer.step > self.dense_steps:
            return self.measure(trainer.model)
        return None
