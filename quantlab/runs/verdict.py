"""One plain sentence on overfitting, from the statistics a run already computed.

A reader should not have to weigh DSR, PBO, the holdout percentile and the degradation
slope against each other to know whether to trust a winner. :func:`overfit_verdict`
grades each available statistic red, amber or green against fixed thresholds
(documented in docs/overfitting.md, "The verdict") and names the worst grade:

* any red: ``likely overfit``;
* otherwise any amber: ``inconclusive``;
* all green: ``no sign of overfitting``;
* nothing available: ``not assessed``.

The sentence lists the statistics worst first, e.g. ``likely overfit: PBO 0.53, DSR 0.70``.
Pure functions, no I/O: the CLI, summary.json and the report pages all call them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

RED, AMBER, GREEN = "red", "amber", "green"
_ORDER = {RED: 0, AMBER: 1, GREEN: 2}
LABELS = {
    RED: "likely overfit",
    AMBER: "inconclusive",
    GREEN: "no sign of overfitting",
    None: "not assessed",
}

#: Thresholds (inclusive where the comparison says so); see docs/overfitting.md.
PBO_RED = 0.5  # PBO >= 0.5: the in-sample winner is no better than a random pick out of sample
PBO_GREEN = 0.2  # PBO <= 0.2
DSR_RED = 0.5  # DSR < 0.5: no better than the best of N skill-less trials
DSR_GREEN = 0.95  # DSR >= 0.95: beats the luck benchmark at the 5% level
HOLDOUT_RED = 0.5  # held-out percentile < 0.5: the winner is below the median of all candidates held out
HOLDOUT_GREEN = 0.75  # percentile >= 0.75
EFFICIENCY_RED = 0.0  # walk-forward efficiency <= 0: out of sample the metric loses its sign
EFFICIENCY_GREEN = 0.5  # efficiency >= 0.5 (Pardo's rule of thumb)


@dataclass(frozen=True)
class Grade:
    """One statistic, its value and its grade."""

    name: str
    value: float
    grade: str

    @property
    def text(self) -> str:
        if self.name == "holdout percentile":
            return f"holdout percentile {self.value:.0%}"
        return f"{self.name} {self.value:.2f}"


@dataclass(frozen=True)
class Verdict:
    """The worst grade over the available statistics and the sentence that says so."""

    grade: str | None
    grades: tuple[Grade, ...]

    @property
    def label(self) -> str:
        return LABELS[self.grade]

    @property
    def sentence(self) -> str:
        if not self.grades:
            return f"{self.label}: no DSR, PBO, holdout or walk-forward statistic is available"
        ordered = sorted(self.grades, key=lambda g: _ORDER[g.grade])
        return f"{self.label}: " + ", ".join(g.text for g in ordered)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.label,
            "grade": self.grade,
            "sentence": self.sentence,
            "statistics": {g.name: {"value": g.value, "grade": g.grade} for g in self.grades},
        }


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def grade_pbo(pbo: float) -> str:
    return RED if pbo >= PBO_RED else GREEN if pbo <= PBO_GREEN else AMBER


def grade_dsr(dsr: float) -> str:
    return RED if dsr < DSR_RED else GREEN if dsr >= DSR_GREEN else AMBER


def grade_holdout(percentile: float) -> str:
    return RED if percentile < HOLDOUT_RED else GREEN if percentile >= HOLDOUT_GREEN else AMBER


def grade_degradation(slope: float) -> str:
    """The CSCV degradation slope alone is never red: selection among similar good
    configurations can make it negative (docs/overfitting.md)."""
    return GREEN if slope > 0 else AMBER


def grade_efficiency(efficiency: float) -> str:
    return RED if efficiency <= EFFICIENCY_RED else GREEN if efficiency >= EFFICIENCY_GREEN else AMBER


def overfit_verdict(
    *,
    pbo: Any = None,
    dsr: Any = None,
    holdout_percentile: Any = None,
    degradation_slope: Any = None,
    efficiency: Any = None,
) -> Verdict:
    """Grade whichever statistics are finite numbers and name the worst grade."""
    graders = (
        ("PBO", pbo, grade_pbo),
        ("DSR", dsr, grade_dsr),
        ("holdout percentile", holdout_percentile, grade_holdout),
        ("WF efficiency", efficiency, grade_efficiency),
        ("degradation slope", degradation_slope, grade_degradation),
    )
    grades = []
    for name, raw, grader in graders:
        value = _finite(raw)
        if value is not None:
            grades.append(Grade(name, value, grader(value)))
    worst = min((g.grade for g in grades), key=_ORDER.__getitem__, default=None)
    return Verdict(worst, tuple(grades))


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """The most severe of several verdicts (e.g. over symbols); ``not assessed`` when empty."""
    ranked = sorted(verdicts, key=lambda v: 3 if v.grade is None else _ORDER[v.grade])
    return ranked[0] if ranked else Verdict(None, ())


def optimize_verdicts(summary: Mapping[str, Any]) -> dict[str, Verdict]:
    """Per symbol verdict of an optimize ``summary.json`` (DSR, PBO, degradation, holdout)."""
    holdout = {str(row.get("symbol")): row for row in summary.get("holdout") or []}
    out = {}
    for symbol, stats in (summary.get("overfit") or {}).items():
        stats = stats or {}
        pbo = stats.get("pbo") or {}
        out[str(symbol)] = overfit_verdict(
            pbo=pbo.get("pbo"),
            dsr=(stats.get("deflated_sharpe") or {}).get("dsr"),
            degradation_slope=pbo.get("degradation_slope"),
            holdout_percentile=(holdout.get(str(symbol)) or {}).get("holdout_percentile"),
        )
    return out


def walkforward_verdicts(summary: Mapping[str, Any]) -> dict[str, Verdict]:
    """Per symbol verdict of a walk-forward ``summary.json`` (fold PBO, mean in-sample DSR,
    efficiency)."""
    wf = summary.get("walkforward") or {}
    out = {}
    for symbol, ov in (wf.get("overfit") or {}).items():
        eff = ((wf.get("efficiency") or {}).get(symbol) or {}).get("efficiency")
        out[str(symbol)] = overfit_verdict(pbo=(ov or {}).get("pbo"), dsr=(ov or {}).get("mean_is_dsr"), efficiency=eff)
    return out


def run_verdicts(summary: Mapping[str, Any]) -> dict[str, Verdict]:
    """Per symbol verdicts of any run summary (empty for a backtest: nothing was searched)."""
    kind = summary.get("kind")
    if kind == "optimize":
        return optimize_verdicts(summary)
    if kind == "walkforward":
        return walkforward_verdicts(summary)
    return {}
