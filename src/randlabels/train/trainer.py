"""The training loop: metrics as JSON lines, callbacks, exact checkpoint and resume.

A checkpoint holds everything the next step depends on: model, optimizer,
step counters, the partial metric accumulators, every RNG state and the
callbacks' own state. The data order and augmentation are pure functions of
``(seed, epoch)`` (see :mod:`randlabels.data.loader`) and the learning rate a
pure function of the step (:func:`randlabels.train.optim.lr_at`). So a run
stopped at any step and resumed ends with exactly the weights and metrics of
the uninterrupted run on the same device (on CPU this is checked by a test).
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from randlabels.data.loader import TensorLoader
from randlabels.train.config import OptimConfig
from randlabels.train.optim import build_optimizer, lr_at
from randlabels.utils.io import atomic_open, atomic_torch_save
from randlabels.utils.signals import on_stop_signals

CHECKPOINT_FORMAT = 1


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingInterrupted(Exception):
    """SIGINT/SIGTERM arrived; a checkpoint of the current step was written."""

    def __init__(self, step: int, checkpoint: Path | None) -> None:
        where = f"; checkpoint {checkpoint}" if checkpoint else ""
        super().__init__(f"training interrupted at step {step}{where}")
        self.step = step
        self.checkpoint = checkpoint


class Callback:
    """Hooks into training. Any hook may return a dict of metrics for the current step.

    A callback that keeps state across steps must save it in :meth:`state_dict`
    and restore it in :meth:`load_state_dict`, so that resuming stays exact.
    """

    def on_train_start(self, trainer: Trainer) -> dict[str, Any] | None:
        return None

    def on_step_end(self, trainer: Trainer) -> dict[str, Any] | None:
        return None

    def on_epoch_end(self, trainer: Trainer) -> dict[str, Any] | None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: TensorLoader) -> dict[str, float]:
    """Mean cross-entropy and accuracy of ``model`` (in eval mode) over a loader."""
    was_training = model.training
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    for xb, yb in loader.batches(0):
        out = model(xb)
        loss_sum += F.cross_entropy(out, yb, reduction="sum").item()
        correct += (out.argmax(1) == yb).sum().item()
        count += yb.shape[0]
    model.train(was_training)
    return {"loss": loss_sum / max(count, 1), "acc": correct / max(count, 1)}


class Trainer:
    """Trains ``model`` on ``train_loader`` with the optimizer and schedule of ``cfg``.

    Args:
        model: already on the loaders' device.
        train_loader: yields standardized (and augmented) batches per epoch.
        cfg: optimizer, schedule, epochs and logging cadence.
        eval_loaders: name -> loader; each evaluation logs ``<name>_acc`` and
            ``<name>_loss`` (e.g. ``{"test": ...}``, and ``"train_full"`` for the
            whole training set without augmentation when ``cfg.eval_train``).
        run_dir: where ``metrics.jsonl``, ``checkpoints/`` and ``weights/`` go;
            ``None`` keeps everything in memory (``trainer.history``).
        callbacks: see :class:`Callback`.
        progress: show a progress bar (only on a terminal).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        train_loader: TensorLoader,
        cfg: OptimConfig,
        *,
        eval_loaders: dict[str, TensorLoader] | None = None,
        run_dir: str | Path | None = None,
        callbacks: Sequence[Callback] = (),
        progress: bool = True,
    ) -> None:
        self.model = model
        self.train_loader = train_loader
        self.cfg = cfg
        self.eval_loaders = dict(eval_loaders or {})
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.callbacks = list(callbacks)
        self.progress = progress
        self.optimizer = build_optimizer(model, cfg)
        self.steps_per_epoch = len(train_loader)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.history: list[dict[str, Any]] = []
        self.train_time_s = 0.0
        self._acc = _Accumulators()
        self._stop_requested = False
        self._last_loss = float("nan")

    # ----------------------------------------------------------------- paths
    @property
    def checkpoint_path(self) -> Path | None:
        return self.run_dir / "checkpoints" / "last.pt" if self.run_dir else None

    @property
    def metrics_path(self) -> Path | None:
        return self.run_dir / "metrics.jsonl" if self.run_dir else None

    @property
    def finished(self) -> bool:
        return self.step >= self.total_steps

    def request_stop(self) -> None:
        """Stop after the current step, writing a checkpoint (what SIGINT/SIGTERM do)."""
        self._stop_requested = True

    # ------------------------------------------------------------- main loop
    def fit(self) -> dict[str, Any]:
        """Train to the end (resuming from ``run_dir`` if it holds a checkpoint).

        Returns a summary: steps, epochs, train time and the last value of every metric.
        Raises :class:`TrainingInterrupted` after writing a checkpoint when asked to
        stop, and :class:`NonFiniteLossError` (without checkpointing) when the loss is
        not finite.
        """
        resumed = self.load_checkpoint()
        if not resumed:
            self._reset_metrics_file()
            if self.run_dir is not None:
                atomic_torch_save(self.run_dir / "weights" / "init.pt", self.model.state_dict())
            record = self._evaluate_all()
            for cb in self.callbacks:
                record.update(cb.on_train_start(self) or {})
            self._log(record)
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            disable=not self.progress or None,
            unit="step",
            dynamic_ncols=True,
            leave=False,
        )
        try:
            with self._signal_handlers(), bar:
                while self.epoch < self.cfg.epochs:
                    self._run_epoch(bar)
        finally:
            bar.close()
        return self.summary()

    def _run_epoch(self, bar) -> None:
        model, cfg = self.model, self.cfg
        model.train()
        t_window = time.perf_counter()
        for xb, yb in self.train_loader.batches(self.epoch, start=self.batch_in_epoch):
            t0 = time.perf_counter()
            lr = lr_at(self.step, cfg, self.steps_per_epoch)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise NonFiniteLossError(self._nonfinite_message(loss_value))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self._last_loss = loss_value
            self.step += 1
            self.batch_in_epoch += 1
            correct = (out.detach().argmax(1) == yb).sum().item()
            self._acc.add(loss_value, correct, yb.shape[0])
            self.train_time_s += time.perf_counter() - t0
            bar.update(1)

            end_of_epoch = self.batch_in_epoch == self.steps_per_epoch
            record: dict[str, Any] = {}
            if self.step % cfg.log_every == 0 or end_of_epoch:
                elapsed = time.perf_counter() - t_window
                record.update(self._acc.window_metrics(lr, elapsed))
                t_window = time.perf_counter()
            if end_of_epoch:
                record.update(self._acc.epoch_metrics())
            if (cfg.eval_every and self.step % cfg.eval_every == 0) or (
                end_of_epoch and not cfg.eval_every
            ):
                record.update(self._evaluate_all())
            for cb in self.callbacks:
                record.update(cb.on_step_end(self) or {})
            if end_of_epoch:
                self.epoch += 1
                self.batch_in_epoch = 0
                self._acc.new_epoch()
                for cb in self.callbacks:
                    record.update(cb.on_epoch_end(self) or {})
            self._log(record)
            if record.get("train_acc") is not None:
                bar.set_postfix(loss=f"{self._last_loss:.3f}", acc=f"{record['train_acc']:.3f}")
            if end_of_epoch:
                if self.epoch in cfg.save_epochs and self.run_dir is not None:
                    atomic_torch_save(
                        self.run_dir / "weights" / f"epoch_{self.epoch:03d}.pt",
                        self.model.state_dict(),
                    )
                self.save_checkpoint()
            if self._stop_requested:
                if not end_of_epoch:
                    self.save_checkpoint()
                raise TrainingInterrupted(self.step, self.checkpoint_path)
            if end_of_epoch:
                return

    def _nonfinite_message(self, value: float) -> str:
        where = (
            f"the last good checkpoint is kept at {self.checkpoint_path}"
            if self.checkpoint_path is not None and self.checkpoint_path.exists()
            else "no checkpoint was written yet"
        )
        return (
            f"training loss became {value} at step {self.step + 1} (epoch {self.epoch + 1}, "
            f"lr {lr_at(self.step, self.cfg, self.steps_per_epoch):g}); stopping. {where}. "
            "A lower learning rate or a smaller initialization scale usually helps."
        )

    def _evaluate_all(self) -> dict[str, Any]:
        record: dict[str, Any] = {}
        for name, loader in self.eval_loaders.items():
            for key, value in evaluate(self.model, loader).items():
                record[f"{name}_{key}"] = value
        return record

    # --------------------------------------------------------------- metrics
    def _log(self, record: dict[str, Any]) -> None:
        if not record:
            return
        line = {"step": self.step, "epoch": self.step / self.steps_per_epoch, **record}
        self.history.append(line)
        if self.metrics_path is not None:
            with open(self.metrics_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\n")

    def _reset_metrics_file(self) -> None:
        self.history = []
        if self.metrics_path is not None:
            self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(self.metrics_path, "w"):
                pass

    def summary(self) -> dict[str, Any]:
        last: dict[str, Any] = {}
        for line in self.history:
            last.update({k: v for k, v in line.items() if k not in ("step", "epoch")})
        return {
            "steps": self.step,
            "epochs": self.epoch,
            "train_time_s": self.train_time_s,
            "final": last,
        }

    # ----------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "steps_per_epoch": self.steps_per_epoch,
            "accumulators": self._acc.state_dict(),
            "train_time_s": self.train_time_s,
            "callbacks": [
                (type(cb).__qualname__, cb.state_dict()) for cb in self.callbacks if cb.state_dict()
            ],
            "rng": _rng_state(),
        }

    def save_checkpoint(self) -> Path | None:
        if self.checkpoint_path is None:
            return None
        atomic_torch_save(self.checkpoint_path, self.state_dict())
        return self.checkpoint_path

    def load_checkpoint(self) -> bool:
        """Restore from ``run_dir/checkpoints/last.pt`` if present; truncate later metrics."""
        path = self.checkpoint_path
        if path is None or not path.exists():
            return False
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise RuntimeError(
                f"checkpoint {path} has format {state.get('format')!r}, "
                f"this version reads format {CHECKPOINT_FORMAT}"
            )
        if state["steps_per_epoch"] != self.steps_per_epoch:
            raise RuntimeError(
                f"checkpoint {path} was written with {state['steps_per_epoch']} steps per "
                f"epoch but this run has {self.steps_per_epoch}: the data or batch size changed"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = state["step"]
        self.epoch = state["epoch"]
        self.batch_in_epoch = state["batch_in_epoch"]
        self._acc.load_state_dict(state["accumulators"])
        self.train_time_s = state["train_time_s"]
        # Stateful callbacks are matched by class, in order; stateless ones may come and go.
        saved = list(state["callbacks"])
        for cb in self.callbacks:
            match = next(
                (i for i, (name, _) in enumerate(saved) if name == type(cb).__qualname__), None
            )
            if match is not None:
                cb.load_state_dict(saved.pop(match)[1])
        if saved:
            raise RuntimeError(
                f"checkpoint {path} holds state of callbacks "
                f"{', '.join(name for name, _ in saved)} that this run does not have"
            )
        _set_rng_state(state["rng"])
        self._truncate_metrics(self.step)
        return True

    def _truncate_metrics(self, step: int) -> None:
        # Lines after the checkpoint were written by the interrupted process and
        # will be written again; keep only those up to the checkpoint's step.
        kept: list[dict[str, Any]] = []
        if self.metrics_path is not None and self.metrics_path.exists():
            for raw in self.metrics_path.read_text(encoding="utf-8").splitlines():
                if not raw.strip():
                    continue
                try:
                    line = json.loads(raw)
                except json.JSONDecodeError:
                    break  # a line cut short by a hard kill: everything after is stale
                if line.get("step", 0) > step:
                    break
                kept.append(line)
            with atomic_open(self.metrics_path, "w") as fh:
                fh.writelines(json.dumps(line) + "\n" for line in kept)
        self.history = kept

    # --------------------------------------------------------------- signals
    def _signal_handlers(self) -> contextlib.AbstractContextManager[None]:
        def handler(signum, frame):  # noqa: ARG001
            if self._stop_requested and signum == signal.SIGINT:
                raise KeyboardInterrupt  # a second Ctrl-C stops at once
            self._stop_requested = True

        return on_stop_signals(handler)


class _Accumulators:
    """Running sums of the training loss and accuracy (per log window and per epoch)."""

    def __init__(self) -> None:
        self.w_loss = self.e_loss = 0.0
        self.w_correct = self.w_count = self.e_correct = self.e_count = 0

    def add(self, loss: float, correct: int, count: int) -> None:
        self.w_loss += loss * count
        self.e_loss += loss * count
        self.w_correct += correct
        self.e_correct += correct
        self.w_count += count
        self.e_count += count

    def window_metrics(self, lr: float, elapsed: float) -> dict[str, Any]:
        n = max(self.w_count, 1)
        out = {
            "train_loss": self.w_loss / n,
            "train_acc": self.w_correct / n,
            "lr": lr,
            "images_per_s": self.w_count / elapsed if elapsed > 0 else None,
        }
        self.w_loss, self.w_correct, self.w_count = 0.0, 0, 0
        return out

    def epoch_metrics(self) -> dict[str, Any]:
        n = max(self.e_count, 1)
        return {"epoch_train_loss": self.e_loss / n, "epoch_train_acc": self.e_correct / n}

    def new_epoch(self) -> None:
        self.e_loss, self.e_correct, self.e_count = 0.0, 0, 0

    def state_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def load_state_dict(self, state: dict[str, Any]) -> None:
        vars(self).update(state)


def _rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
