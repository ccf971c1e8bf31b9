"""The trainer: metrics, schedules, non-finite loss, and exact kill-and-resume."""

from __future__ import annotations

import json

import pytest
import torch

from randlabels.data.loader import TensorLoader
from randlabels.train.config import OptimConfig
from randlabels.train.optim import lr_at
from randlabels.train.trainer import (
    Callback,
    NonFiniteLossError,
    Trainer,
    TrainingInterrupted,
)


def small_images(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 4, (n,), generator=g)
    return x, y


def small_cnn(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 6 * 6, 4),
    )


def make_trainer(run_dir, *, seed=0, epochs=3, callbacks=(), **cfg_kwargs):
    x, y = small_images()
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.25)
    loader = TensorLoader(x, y, batch_size=16, augment=True, mean=mean, std=std, seed=seed)
    test = TensorLoader(x[:32], y[:32], batch_size=32, shuffle=False, mean=mean, std=std)
    cfg = OptimConfig(epochs=epochs, lr=0.05, momentum=0.9, log_every=2, **cfg_kwargs)
    return Trainer(
        small_cnn(seed),
        loader,
        cfg,
        eval_loaders={"test": test},
        run_dir=run_dir,
        callbacks=callbacks,
        progress=False,
    )


def strip_timing(lines):
    return [{k: v for k, v in line.items() if k != "images_per_s"} for line in lines]


class StopAt(Callback):
    """Simulates SIGTERM arriving during step ``step``."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer):
        if trainer.step == self.step:
            trainer.request_stop()


class CountSteps(Callback):
    """A stateful callback: its count must survive the resume."""

    def __init__(self):
        self.count = 0

    def on_step_end(self, trainer):
        self.count += 1
        return {"cb_count": self.count} if trainer.step % 5 == 0 else None

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state["count"]


@pytest.mark.parametrize("stop_step", [7, 12])  # mid-epoch and exactly at an epoch end
def test_killed_and_resumed_run_matches_uninterrupted_run(tmp_path, stop_step):
    ref = make_trainer(tmp_path / "ref", callbacks=[CountSteps()])
    ref.fit()

    first = make_trainer(tmp_path / "resumed", callbacks=[StopAt(stop_step), CountSteps()])
    with pytest.raises(TrainingInterrupted) as info:
        first.fit()
    assert info.value.step == stop_step
    # A different initialization seed proves the weights come from the checkpoint.
    second = make_trainer(tmp_path / "resumed", seed=0, callbacks=[StopAt(-1), CountSteps()])
    torch.nn.init.zeros_(second.model[0].weight)
    second.fit()

    for (name, a), b in zip(ref.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), name
    ref_lines = [json.loads(x) for x in (tmp_path / "ref/metrics.jsonl").read_text().splitlines()]
    res_lines = [
        json.loads(x) for x in (tmp_path / "resumed/metrics.jsonl").read_text().splitlines()
    ]
    assert strip_timing(ref_lines) == strip_timing(res_lines)
    assert any("cb_count" in line for line in res_lines)


def test_resume_after_hard_kill_restarts_from_last_epoch_checkpoint(tmp_path):
    """A SIGKILL leaves metric lines after the last checkpoint; they are dropped and redone."""
    ref = make_trainer(tmp_path / "ref")
    ref.fit()
    first = make_trainer(tmp_path / "run", callbacks=[StopAt(9)])
    with pytest.raises(TrainingInterrupted):
        first.fit()
    # Pretend the process died hard: the mid-epoch checkpoint never happened,
    # so put back the epoch-1 checkpoint, and leave a torn line in the metrics.
    epoch1 = make_trainer(tmp_path / "epoch1", epochs=3, callbacks=[StopAt(6)])
    with pytest.raises(TrainingInterrupted):
        epoch1.fit()
    (tmp_path / "run/checkpoints/last.pt").write_bytes(
        (tmp_path / "epoch1/checkpoints/last.pt").read_bytes()
    )
    with open(tmp_path / "run/metrics.jsonl", "a") as fh:
        fh.write('{"step": 10, "trai')
    resumed = make_trainer(tmp_path / "run")
    resumed.fit()
    for a, b in zip(ref.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    lines = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    ref_lines = [json.loads(x) for x in (tmp_path / "ref/metrics.jsonl").read_text().splitlines()]
    assert strip_timing(lines) == strip_timing(ref_lines)


def test_metrics_lines_have_train_and_test_values(tmp_path):
    trainer = make_trainer(tmp_path / "run", epochs=2)
    summary = trainer.fit()
    lines = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert lines[0]["step"] == 0 and "test_acc" in lines[0]  # evaluation before training
    train_lines = [x for x in lines if "train_acc" in x]
    assert [x["step"] for x in train_lines] == [2, 4, 6, 8, 10, 12]
    assert all(0.0 <= x["train_acc"] <= 1.0 and x["lr"] == 0.05 for x in train_lines)
    epoch_ends = [x for x in lines if "epoch_train_acc" in x]
    assert [x["epoch"] for x in epoch_ends] == [1.0, 2.0]
    assert all("test_acc" in x for x in epoch_ends)
    assert summary["steps"] == 12 and summary["epochs"] == 2
    assert (tmp_path / "run/weights/init.pt").exists()


def test_training_reduces_loss_on_learnable_data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(256, 5, generator=g)
    y = (x[:, 0] > 0).long()
    loader = TensorLoader(x, y, batch_size=32)
    model = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    cfg = OptimConfig(epochs=15, lr=0.1, log_every=8)
    trainer = Trainer(model, loader, cfg, eval_loaders={"train": loader}, progress=False)
    summary = trainer.fit()
    assert summary["final"]["train_acc"] > 0.9
    assert trainer.history[0]["train_loss"] > 0.5 > summary["final"]["train_loss"]


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    class PoisonAt(Callback):
        def on_step_end(self, trainer):
            if trainer.step == 8:  # after epoch 1 (6 steps) was checkpointed
                with torch.no_grad():
                    trainer.model[3].weight.fill_(float("nan"))

    trainer = make_trainer(tmp_path / "run", callbacks=[PoisonAt()])
    with pytest.raises(NonFiniteLossError, match=r"step 9 .*last good checkpoint"):
        trainer.fit()
    state = torch.load(tmp_path / "run/checkpoints/last.pt", weights_only=False)
    assert state["step"] == 6
    assert all(torch.isfinite(v).all() for v in state["model"].values())


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({"schedule": "constant"}, [0.1, 0.1, 0.1, 0.1]),
        ({"schedule": "step", "milestones": [1.0]}, [0.1, 0.1, 0.01, 0.01]),
        ({"schedule": "cosine"}, [0.1, 0.1 * 0.5 * (1 + 2**-0.5), 0.05, 0.1 * 0.5 * (1 - 2**-0.5)]),
        ({"schedule": "constant", "warmup_epochs": 1.0}, [0.05, 0.1, 0.1, 0.1]),
    ],
)
def test_learning_rate_schedules(kwargs, expected):
    cfg = OptimConfig(epochs=2, lr=0.1, **kwargs)
    got = [lr_at(s, cfg, steps_per_epoch=2) for s in range(4)]
    assert got == pytest.approx(expected)
