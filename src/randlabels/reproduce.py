"""`randlabels reproduce`: every experiment of the paper in one command, then the report.

    randlabels reproduce                                  # offline: E4a; the rest needs CIFAR-10
    randlabels reproduce --data-dir /path/to/cifar10      # every implemented experiment
    randlabels reproduce --only E2,E4 --profile paper --seeds 5 --out results-paper

Experiments run one after the other into ``OUT/<NAME>/`` with their training runs in
``OUT/runs/`` (shared between experiments; a finished run is never trained again).
``OUT/plan.json`` records what was planned, skipped (with the reason), done or failed;
the report reads it. Rerunning the same command continues where it stopped: an
interrupted run resumes from its checkpoint, and an experiment recorded as done whose
results.json holds the same settings is not run again (its analysis can take minutes
in the paper profile); any other experiment is run, which re-trains nothing finished.
A lock on OUT keeps a second invocation out.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from randlabels.experiments import plan
from randlabels.experiments.plan import PlanEntry, format_duration
from randlabels.experiments.runner import PROFILES, experiment_config, get_experiment
from randlabels.report.collect import PLAN_FILE
from randlabels.utils.io import atomic_write_json, ensure_writable_dir
from randlabels.utils.lock import pid_lock
from randlabels.utils.signals import on_stop_signals

LOCK_FILE = "reproduce.lock"
# Settings that say where things are, not what is computed (as for run configs).
_LOCATION_KEYS = ("data_dir", "runs_root", "progress")


class ReproduceInterrupted(Exception):
    """SIGINT or SIGTERM arrived outside training (during analysis, plotting or the report)."""


def reproduce(
    *,
    profile: str = "quick",
    only: str | None = None,
    seeds: int | None = None,
    data_dir: str | None = None,
    out: str | Path = "results",
    tensorboard: bool = False,
    progress: bool = True,
    stream: TextIO | None = None,
) -> list[PlanEntry]:
    """Run the plan into ``out`` and write the report; returns the plan's entries.

    A failing experiment is recorded (status "failed") and the others still run.
    Raises ValueError for bad arguments before anything is written, LockHeldError when
    another invocation uses ``out``, and ReproduceInterrupted / TrainingInterrupted on
    SIGINT or SIGTERM (after recording the state; run again to continue).
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of: {', '.join(PROFILES)}")
    if seeds is not None and seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    names = plan.select(only)
    if tensorboard:
        from randlabels.report.tensorboard import require_tensorboard

        require_tensorboard()
    out = ensure_writable_dir(out)
    show = _Progress(stream if stream is not None else sys.stderr)
    started = time.monotonic()
    with pid_lock(out / LOCK_FILE, f"output directory {out}"), on_stop_signals(_raise_interrupted):
        previous = _read_plan(out)
        entries = [_entry(n, profile, seeds, data_dir) for n in names]
        record: dict[str, Any] = {
            "profile": profile, "seeds": seeds, "only": only, "data_dir": data_dir,
            "experiments": entries,
            "invocations": [*previous.get("invocations", []), _invocation()],
        }  # fmt: skip
        _write_plan(out, record)
        show.plan(entries, profile, out)
        try:
            for entry in entries:
                if entry.status != "pending":
                    continue
                config = experiment_config(
                    entry.name, profile, seeds=seeds, data_dir=data_dir, runs_root=out / "runs"
                )
                if _done_before(out, entry.name, config, previous):
                    entry.status = "done"
                    entry.wall_time_s = _results(out, entry.name).get("wall_time_s")
                    show.line(entries, entry, "done before with the same settings; not rerun")
                else:
                    _run_one(entry, profile, seeds, data_dir, out, progress, record, show)
                if tensorboard:
                    _export_tensorboard(out)
            # The report shows this invocation as finished, so it is recorded first.
            failed = sum(e.status == "failed" for e in entries)
            _finish(out, record, started, f"finished, {failed} failed" if failed else "finished")
            show.line(entries, None, "writing the report")
            from randlabels.report import write_report

            html_path, _ = write_report(out)
        except BaseException as exc:
            _finish(out, record, started, _outcome(exc))
            raise
        show.line(entries, None, f"report: {html_path}")
    return entries


def _entry(name: str, profile: str, seeds: int | None, data_dir: str | None) -> PlanEntry:
    reason = plan.skip_reason(name, data_dir)
    if reason is not None:
        return PlanEntry(name, "skipped", reason)
    default_seeds = get_experiment(name).PROFILES[profile].get("seeds")
    estimate = plan.estimate_s(name, profile, seeds, default_seeds)
    return PlanEntry(name, "pending", estimate_s=estimate)


def _run_one(entry, profile, seeds, data_dir, out, progress, record, show) -> None:
    from randlabels.experiments.runner import run_experiment
    from randlabels.train.trainer import TrainingInterrupted

    entry.status = "running"
    _write_plan(out, record)
    show.line(record["experiments"], entry, "running")
    start = time.perf_counter()
    try:
        results = run_experiment(
            entry.name, profile, seeds=seeds, data_dir=data_dir, out=out, progress=progress
        )
    except (TrainingInterrupted, ReproduceInterrupted, KeyboardInterrupt):
        entry.status = "pending"
        entry.reason = "interrupted; run the same command again to continue"
        _write_plan(out, record)
        raise
    except Exception as exc:  # one broken experiment should not cost the others
        import os

        if os.environ.get("RANDLABELS_DEBUG"):
            raise
        entry.status, entry.reason = "failed", f"{type(exc).__name__}: {exc}"
        entry.wall_time_s = time.perf_counter() - start
        _write_plan(out, record)
        show.line(record["experiments"], entry, f"FAILED: {entry.reason}")
        return
    entry.status, entry.reason = "done", ""
    entry.wall_time_s = results["wall_time_s"]
    _write_plan(out, record)
    show.line(record["experiments"], entry, f"done in {format_duration(entry.wall_time_s)}")


def _done_before(out: Path, name: str, config: dict[str, Any], previous: dict[str, Any]) -> bool:
    """Recorded as done by an earlier invocation, and its results.json has these settings."""
    was = next((e for e in previous.get("experiments", []) if e["name"] == name), None)
    if was is None or was["status"] != "done" or not (out / name / "results.json").exists():
        return False
    saved = _results(out, name).get("config", {})
    return _settings(saved) == _settings(json.loads(json.dumps(config, default=str)))


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in _LOCATION_KEYS}


def _results(out: Path, name: str) -> dict[str, Any]:
    try:
        return json.loads((out / name / "results.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _export_tensorboard(out: Path) -> None:
    from randlabels.report.tensorboard import export_runs

    export_runs(out / "runs", out / "tensorboard")


def _read_plan(out: Path) -> dict[str, Any]:
    try:
        return json.loads((out / PLAN_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _write_plan(out: Path, record: dict[str, Any]) -> None:
    atomic_write_json(
        out / PLAN_FILE,
        {**record, "experiments": [e.to_dict() for e in record["experiments"]]},
    )


def _invocation() -> dict[str, Any]:
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {"started": now, "elapsed_s": None, "outcome": "running (or killed)"}


def _outcome(exc: BaseException) -> str:
    from randlabels.train.trainer import TrainingInterrupted

    if isinstance(exc, (ReproduceInterrupted, TrainingInterrupted, KeyboardInterrupt)):
        return "interrupted"
    return f"stopped by {type(exc).__name__}"


def _finish(out: Path, record: dict[str, Any], started: float, outcome: str) -> None:
    record["invocations"][-1].update(elapsed_s=time.monotonic() - started, outcome=outcome)
    with contextlib.suppress(OSError):
        _write_plan(out, record)


def _raise_interrupted(signum: int, frame: Any) -> None:  # noqa: ARG001
    """SIGINT and SIGTERM outside training: stop where we are (every file is written
    atomically), record the plan and release the lock. During training the trainer's own
    handlers take over and stop after a checkpoint."""
    raise ReproduceInterrupted(f"interrupted by {signal.Signals(signum).name}")


def plan_lines(entries: list[PlanEntry]) -> list[tuple[str, str, str]]:
    """(name, status, estimate or reason) per entry; a reason given before is referred to."""
    first: dict[str, str] = {}
    lines = []
    for e in entries:
        if e.status == "pending":
            lines.append((e.name, "to run", f"~{format_duration(e.estimate_s)}"))
        elif e.status == "done":
            lines.append((e.name, "done", f"in {format_duration(e.wall_time_s)}"))
        else:
            lines.append(
                (e.name, e.status, f"same as {first[e.reason]}" if e.reason in first else e.reason)
            )
            first.setdefault(e.reason, e.name)
    return lines


class _Progress:
    """The whole plan's progress on stderr: one line per event, with counts, elapsed time
    and the estimated time left (quick-profile estimates; "unknown" without a basis)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.start = time.monotonic()
        self.current_start = self.start

    def plan(self, entries: list[PlanEntry], profile: str, out: Path) -> None:
        todo = [e for e in entries if e.status == "pending"]
        self._print(
            f"reproduce ({profile} profile) into {out}: {len(todo)} to run, "
            f"{len(entries) - len(todo)} skipped"
        )
        for name, status, what in plan_lines(entries):
            self._print(f"  {name:5s} {status:8s} {what}")

    def line(self, entries: list[PlanEntry], current: PlanEntry | None, message: str) -> None:
        now = time.monotonic()
        if current is not None and current.status == "running":
            self.current_start = now
        counts = {s: sum(e.status == s for e in entries) for s in ("done", "skipped", "failed")}
        left = [e for e in entries if e.status in ("pending", "running")]
        remaining: float | None = 0.0
        for e in left:
            if e.estimate_s is None:
                remaining = None
                break
            spent = now - self.current_start if e.status == "running" else 0.0
            remaining += max(e.estimate_s - spent, 0.0)
        self._print(
            f"[{current.name if current else 'plan'}] {message} | done {counts['done']}, "
            f"running {sum(e.status == 'running' for e in entries)}, "
            f"remaining {sum(e.status == 'pending' for e in entries)}, "
            f"skipped {counts['skipped']}, failed {counts['failed']} | elapsed "
            f"{format_duration(now - self.start)}, estimated remaining "
            f"{format_duration(remaining)}"
        )

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)
