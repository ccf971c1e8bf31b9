"""The claims of SPEC section 5 and the report's verdict table: one row per measurement.

A claim measured in two experiments (C1: E2 and E4a) gets a row for each; an expected
measurement that is missing (experiment skipped, failed, not run, not implemented) gets
a "not measured" row that says why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from randlabels.analysis.stats import Estimate

NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str  # the paper's statement, in short
    threshold: str  # as fixed in SPEC section 5, before looking at results
    experiments: tuple[str, ...]  # where SPEC measures it


CLAIMS: tuple[Claim, ...] = (
    Claim("C1", "After random-label training the first layer's weight covariance is aligned "
          "with the covariance of its inputs (data patches).",
          "M_data / mean(M_random) < 0.5, first layer", ("E2", "E4a")),
    Claim("C2", "The alignment also appears with real labels.",
          "M_data / mean(M_random) < 0.5, first layer, real labels", ("E2",)),
    Claim("C3", "The function f is reproducible across seeds.",
          "max over sigma of (max - min) / mean of f across seeds < 10%", ("E4a",)),
    Claim("C4", "f is decreasing, has an interior peak, or increases then saturates, "
          "depending on the setting.",
          "the three E4a settings give the three shapes as listed", ("E4a",)),
    Claim("C5", "f grows with training, and more with random labels than with real labels.",
          "peak f at epoch 40 > at epoch 5, and random-label peak > real-label peak", ("E4b",)),
    Claim("C6", "Random-label pre-training can speed up training on real labels "
          "(positive transfer).",
          "pretrained + rescaled reaches the target train accuracy in fewer steps than "
          "scratch (CI of the difference excludes 0)", ("E1",)),
    Claim("C7", "The transfer survives rescaling each layer to its initial norm.",
          "C6 holds with rescaling, and the no-rescaling variant is at least as fast", ("E1",)),
    Claim("C8", "Random-label pre-training can also slow down later training "
          "(negative transfer).",
          "negative setting: pretrained slower than scratch (CI excludes 0)", ("E1",)),
    Claim("C9", "Sampling the first layer from the covariance of pre-trained filters gives "
          "the speed-up of pre-training.",
          "covariance init beats scratch at 1000 iterations (CI excludes 0) and is within "
          "3 accuracy points of pretrained", ("E5",)),
    Claim("C10", "Later layers specialize to the upstream task, which causes negative transfer.",
          "activation-rate drop at the switch larger in the last conv layers than in the "
          "first, and widening later layers reduces the negative transfer", ("E7",)),
    Claim("C11", "Deeper layers align with the covariance of their inputs too.",
          "M_data / mean(M_random) < 0.5 for most conv layers of a random-label VGG", ("E6a",)),
)  # fmt: skip


@dataclass
class ClaimRow:
    claim: str
    statement: str
    statistic: str  # what was measured, with the 95% CI over seeds where there is one
    threshold: str
    profile: str
    data: str
    seeds: str
    verdict: str  # reproduced | not reproduced | inconclusive | not measured
    experiment: str
    detail: str = ""


def format_estimate(est: Mapping[str, Any] | None) -> str:
    """ "mean [low, high] 95% CI (n=k)" of an Estimate dict, "" for None."""
    if not est:
        return ""
    text = str(Estimate(**est))
    return text.replace("] (n=", "] 95% CI (n=", 1) if est.get("low") is not None else text


def _with_estimate(statistic: str, est: Mapping[str, Any] | None, text: str) -> str:
    """The statistic, followed by its estimate unless the statistic already states it."""
    if not text:
        return statistic
    plain = str(Estimate(**est)) if est else ""
    if plain and plain in statistic:
        return statistic.replace(plain, text, 1)
    return f"{statistic}: {text}"


def claim_rows(
    results: Mapping[str, Mapping[str, Any]], why_missing: Callable[[str], str]
) -> list[ClaimRow]:
    """The verdict table: claims in SPEC order (then any other claim id), measurements in
    ``results`` order (experiment name -> its results.json). ``why_missing(name)`` says
    why an experiment has no results ("skipped: ...")."""
    known = {c.id: c for c in CLAIMS}
    found: dict[str, list[ClaimRow]] = {}
    for name, res in results.items():
        seeds = res.get("config", {}).get("seeds")
        for v in res.get("verdicts", []):
            claim = known.get(v["claim"])
            est = format_estimate(v.get("estimate"))
            tested = v.get("threshold", "")
            found.setdefault(v["claim"], []).append(
                ClaimRow(
                    claim=v["claim"],
                    statement=claim.statement if claim else v.get("statement", ""),
                    statistic=_with_estimate(v.get("statistic", ""), v.get("estimate"), est),
                    threshold=(claim.threshold if claim else tested)
                    + (f" (tested as: {tested})" if claim and tested else ""),
                    profile=v.get("profile", ""),
                    data=v.get("data", ""),
                    seeds="" if seeds is None else str(seeds),
                    verdict=v.get("verdict", ""),
                    experiment=name,
                    detail=v.get("detail", ""),
                )
            )
    rows: list[ClaimRow] = []
    for claim in CLAIMS:
        measured = found.pop(claim.id, [])
        rows += measured
        for name in claim.experiments:
            if any(r.experiment == name for r in measured):
                continue
            reason = (
                f"{name} ran but recorded no verdict for {claim.id}"
                if name in results
                else f"{name} {why_missing(name)}"
            )
            rows.append(
                ClaimRow(
                    claim.id,
                    claim.statement,
                    "",
                    claim.threshold,
                    "",
                    "",
                    "",
                    NOT_MEASURED,
                    name,
                    reason,
                )  # fmt: skip
            )
    for claim_id in sorted(found, key=_natural_key):
        rows += found[claim_id]
    return rows


def _natural_key(text: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]
