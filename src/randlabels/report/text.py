"""The report's words and numbers, shared by the HTML and Markdown renderers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from randlabels.experiments.plan import format_duration
from randlabels.report.claims import ClaimRow
from randlabels.report.collect import ExperimentRecord, ReportData

COLUMNS = (
    "claim", "paper's statement", "statistic", "threshold (SPEC)", "profile", "data", "seeds",
    "verdict", "experiment",
)  # fmt: skip


def row_cells(row: ClaimRow) -> list[str]:
    """The verdict-table cells of one row, in ``COLUMNS`` order (the detail goes under the
    statistic; for a "not measured" row it is the reason)."""
    return [row.claim, row.statement, row.statistic, row.threshold, row.profile, row.data,
            row.seeds, row.verdict, row.experiment]  # fmt: skip


def summary_line(data: ReportData) -> str:
    counts = Counter(r.verdict for r in data.claims)
    verdicts = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    have = ", ".join(e.name for e in data.experiments) or "none"
    profiles = sorted({str(e.results.get("config", {}).get("profile")) for e in data.experiments})
    return (
        f"Experiments with results: {have} (profile {', '.join(profiles) or 'n/a'}); "
        f"{len(data.not_run)} without results (listed below). "
        f"Verdict table rows: {verdicts}."
    )


def caption(exp: ExperimentRecord, path: Path) -> str:
    config = exp.results.get("config", {})
    seeds = config.get("seeds")
    return (
        f"{exp.title} Profile {config.get('profile', '?')}"
        + (f", {seeds} seeds" if seeds is not None else "")
        + f"; {exp.name}/{path.name}."
    )


def settings_rows(data: ReportData) -> list[tuple[str, Any]]:
    plan = data.plan
    if plan is None:
        return [("plan", "none (results written by `randlabels experiment`)")]
    return [
        ("command", "randlabels reproduce"),
        ("profile", plan.get("profile")),
        ("seeds", plan.get("seeds") or "each experiment's default"),
        ("only", plan.get("only") or "all experiments"),
        ("data directory", plan.get("data_dir") or "default ($RANDLABELS_DATA_DIR or cache)"),
        ("training runs", f"{len(data.runs)} (in runs/, shared between experiments)"),
    ]


def compute_rows(data: ReportData) -> list[tuple[str, Any]]:
    c = data.compute
    rows: list[tuple[str, Any]] = [
        ("report generated (UTC)", c["generated"]),
        ("total compute time (sum of experiment wall times)",
         format_duration(c["total_wall_time_s"])),
    ]  # fmt: skip
    for name, wall in c["experiment_wall_time_s"].items():
        rows.append((f"{name} wall time (last run)", format_duration(wall)))
    for i, inv in enumerate(c["invocations"], 1):
        rows.append(
            (f"reproduce invocation {i}",
             f"started {inv.get('started')}, {format_duration(inv.get('elapsed_s'))}, "
             f"{inv.get('outcome', 'running')}")
        )  # fmt: skip
    rows += list(data.environment.items())
    return rows
