"""Which experiments `randlabels reproduce` runs, in which order, and which it must skip.

The list of implemented experiments is ``runner.EXPERIMENTS``, read when a plan is made,
so a newly registered experiment joins the plan without changes here. SPEC section 4
names more experiments than are implemented; those appear as skipped with the reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Experiments that share training runs stay adjacent: E4b reads E2's runs and E7 reuses
# E1's negative-setting upstream runs. E4a (synthetic, no download) goes first.
ORDER = ("E4a", "E2", "E4b", "E3", "E1", "E7", "E5", "E6a", "E6t", "E8")
SHORTHANDS = {"E4": ("E4a", "E4b"), "E6": ("E6a", "E6t")}
NOT_IMPLEMENTED = {
    "E8": "ImageNet (SPEC E8): paper profile only and multi-GPU; not implemented in this version",
}
# Experiments that need no dataset file (synthetic data); every other one reads CIFAR-10.
SYNTHETIC = frozenset({"E4a"})
# Seconds each experiment took in one full `randlabels reproduce --data-dir ...` of the
# quick profile with default seeds on 2 CPU cores (2026-12-04, 31 min in all; E7 after E1,
# whose runs it reuses). No basis for the paper profile.
QUICK_ESTIMATE_S = {
    "E1": 299, "E2": 134, "E3": 60, "E4a": 195, "E4b": 1, "E5": 218,
    "E6a": 82, "E6t": 98, "E7": 766,
}  # fmt: skip


@dataclass
class PlanEntry:
    """One experiment of a reproduce plan and what became of it."""

    name: str
    status: str  # pending | running | done | skipped | failed
    reason: str = ""  # why skipped or failed
    estimate_s: float | None = None
    wall_time_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def implemented() -> dict[str, str]:
    from randlabels.experiments.runner import EXPERIMENTS

    return dict(EXPERIMENTS)


def all_names() -> list[str]:
    """SPEC's experiments in plan order, then any registered experiment not in ``ORDER``."""
    return [*ORDER, *(n for n in implemented() if n not in ORDER)]


def select(only: str | None) -> list[str]:
    """Experiment names in plan order; ``only`` is a comma-separated subset ("E1,E4,E6a").

    "E4" and "E6" stand for their parts; names are case-insensitive. Raises ValueError
    naming what was expected for an unknown or empty name.
    """
    names = all_names()
    if only is None:
        return names
    canonical = {n.lower(): (n,) for n in names}
    canonical.update({k.lower(): v for k, v in SHORTHANDS.items()})
    wanted: set[str] = set()
    for part in only.split(","):
        key = part.strip().lower()
        if key not in canonical:
            shorthands = ", ".join(f"{k} ({'+'.join(v)})" for k, v in SHORTHANDS.items())
            listed = sorted(names, key=lambda n: (int(n[1]), n))  # E1 < E4a < E4b < E10
            raise ValueError(
                f"--only: unknown experiment {part.strip()!r}; expected a comma-separated list "
                f"of {', '.join(listed)} or {shorthands}"
            )
        wanted.update(canonical[key])
    return [n for n in names if n in wanted]


def skip_reason(name: str, data_dir: str | Path | None) -> str | None:
    """Why ``name`` cannot run here (not implemented, or CIFAR-10 missing), or None."""
    if name not in implemented():
        return NOT_IMPLEMENTED.get(name, f"{name} is not implemented in this version")
    if name in SYNTHETIC:
        return None
    return _missing_cifar10(data_dir)


def _missing_cifar10(data_dir: str | Path | None) -> str | None:
    from randlabels.data.cifar import CIFAR_RELEASES
    from randlabels.data.registry import default_data_dir, locate_dataset

    if locate_dataset("cifar10", data_dir) is not None:
        return None
    where = Path(data_dir) if data_dir is not None else default_data_dir()
    return (
        f"CIFAR-10 not found in {where} nor prepared in the cache. Add it with --data-dir DIR "
        "(a directory holding cifar-10-python.tar.gz or cifar-10-batches-py/) or with "
        f"`randlabels data prepare cifar10 --source {CIFAR_RELEASES['cifar10'].url}`, "
        "then run the same command again"
    )


def short_reason(reason: str) -> str:
    """The first sentence of a skip reason (what; the rest says how to fix it)."""
    return reason.split(". ", 1)[0]


def estimate_s(
    name: str, profile: str, seeds: int | None, default_seeds: int | None
) -> float | None:
    """Expected seconds for one experiment: the quick-profile table, scaled by the number of
    seeds (training dominates); None (unknown) for the paper profile."""
    if profile != "quick" or name not in QUICK_ESTIMATE_S:
        return None
    base = float(QUICK_ESTIMATE_S[name])
    if seeds is not None and default_seeds:
        base *= seeds / default_seeds
    return base


def format_duration(seconds: float | None) -> str:
    """ "1h 02m", "2m 44s", "9s"; "unknown" for None."""
    if seconds is None:
        return "unknown"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"
