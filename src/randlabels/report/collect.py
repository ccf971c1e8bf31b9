"""Everything the report shows, read from an output directory (no rendering here).

Reads ``OUT/<EXPERIMENT>/results.json`` and its PNG figures, ``OUT/plan.json`` (written
by `randlabels reproduce`: what was skipped and why), and ``OUT/runs/*/config.yaml``.
Paths inside the output directory are shown relative to it (runs_root: "runs"), so two
output directories with the same results give the same report.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from randlabels.experiments import plan as plan_mod
from randlabels.report.claims import ClaimRow, claim_rows

PLAN_FILE = "plan.json"


@dataclass
class ExperimentRecord:
    name: str
    title: str  # the first line of the experiment module's docstring
    results: dict[str, Any]
    figures: list[Path]  # PNG files in OUT/<name>/, sorted


@dataclass
class ReportData:
    out_dir: Path
    plan: dict[str, Any] | None
    experiments: list[ExperimentRecord]
    claims: list[ClaimRow]
    not_run: list[tuple[str, str]]  # (experiment, why it has no results)
    runs: list[tuple[str, str]]  # (run directory name, config.yaml text)
    environment: dict[str, Any] = field(default_factory=dict)
    compute: dict[str, Any] = field(default_factory=dict)


def collect(out_dir: str | os.PathLike) -> ReportData:
    """Read an output directory. Raises ValueError when it holds nothing to report."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise ValueError(
            f"report: {out_dir} is not a directory (expected an output directory written "
            "by `randlabels reproduce` or `randlabels experiment`)"
        )
    plan = _read_json(out_dir / PLAN_FILE) if (out_dir / PLAN_FILE).exists() else None
    experiments = [_experiment(out_dir, name) for name in _experiment_names(out_dir)]
    if plan is None and not experiments:
        raise ValueError(
            f"report: nothing to report in {out_dir}: expected {PLAN_FILE} or "
            "<EXPERIMENT>/results.json (run `randlabels reproduce --out DIR` first)"
        )
    results = {e.name: _relative(e.results, out_dir) for e in experiments}
    for e in experiments:
        e.results = results[e.name]
    measured = set(results)
    names = [n for n in plan_mod.all_names() if n not in measured]
    if plan is not None:
        names += [p["name"] for p in plan["experiments"] if p["name"] not in names + [*measured]]
    return ReportData(
        out_dir=out_dir,
        plan=plan,
        experiments=experiments,
        claims=claim_rows(results, lambda n: why_missing(n, plan, short=True)),
        not_run=[(n, why_missing(n, plan)) for n in names],
        runs=_runs(out_dir / "runs"),
        environment=environment(),
        compute=_compute(experiments, plan),
    )


def why_missing(name: str, plan: dict[str, Any] | None, short: bool = False) -> str:
    """Why experiment ``name`` has no results.json in the output directory (``short``: the
    first sentence only)."""
    entry = next((e for e in (plan or {}).get("experiments", []) if e["name"] == name), None)
    if entry is not None:
        status, reason = entry["status"], entry.get("reason") or ""
        reason = plan_mod.short_reason(reason) if short else reason
        if status in ("skipped", "failed"):
            return f"{status}: {reason}"
        return "has not finished (run `randlabels reproduce` again to continue)"
    if name not in plan_mod.implemented():
        return plan_mod.NOT_IMPLEMENTED.get(name, "not implemented in this version")
    if plan is not None and plan.get("only"):
        return f"not selected (--only {plan['only']})"
    return f"not run (no {name}/results.json)"


def _experiment_names(out_dir: Path) -> list[str]:
    """Directories holding a results.json: plan order first, then others by name."""
    present = sorted(p.parent.name for p in out_dir.glob("*/results.json"))
    order = plan_mod.all_names()
    return [n for n in order if n in present] + [n for n in present if n not in order]


def _experiment(out_dir: Path, name: str) -> ExperimentRecord:
    results = _read_json(out_dir / name / "results.json")
    return ExperimentRecord(
        name=name,
        title=_title(name),
        results=results,
        figures=sorted((out_dir / name).glob("*.png")),
    )


def _title(name: str) -> str:
    module = plan_mod.implemented().get(name)
    if module is None:
        return name
    import importlib

    doc = importlib.import_module(module).__doc__ or name
    return doc.strip().splitlines()[0]


def _runs(runs_root: Path) -> list[tuple[str, str]]:
    if not runs_root.is_dir():
        return []
    return [
        (p.parent.name, p.read_text(encoding="utf-8"))
        for p in sorted(runs_root.glob("*/config.yaml"))
    ]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"report: cannot read {path}: {exc}") from None


def _relative(obj: Any, out_dir: Path) -> Any:
    """``obj`` with every string that is a path inside ``out_dir`` made relative to it."""
    root = out_dir.resolve()
    if isinstance(obj, dict):
        return {k: _relative(v, out_dir) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_relative(v, out_dir) for v in obj]
    if isinstance(obj, str) and os.sep in obj:
        try:
            return str(Path(obj).resolve().relative_to(root))
        except (ValueError, OSError):
            return obj
    return obj


def environment() -> dict[str, Any]:
    """Library versions, hardware and the package's git commit ("unknown" outside git)."""
    import matplotlib
    import torch

    from randlabels.train.run import environment_info

    env = environment_info(torch.device("cpu"))
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    commit = env.get("git_commit") or "unknown"
    if env.get("git_dirty"):
        commit += " (with uncommitted changes)"
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": env["numpy"],
        "matplotlib": matplotlib.__version__,
        "randlabels": env["randlabels"],
        "git commit": commit,
        "platform": platform.platform(),
        "CPU": _cpu_model(),
        "CPU cores": os.cpu_count(),
        "GPU": ", ".join(gpus) if gpus else "none",
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _compute(experiments: list[ExperimentRecord], plan: dict[str, Any] | None) -> dict[str, Any]:
    walls = {e.name: e.results.get("wall_time_s") for e in experiments}
    return {
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "experiment_wall_time_s": walls,
        "total_wall_time_s": sum(w for w in walls.values() if w is not None),
        "invocations": (plan or {}).get("invocations", []),
    }
