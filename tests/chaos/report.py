"""benchmarks/chaos.json and chaos.md: schedules, faults by kind, violations, recovery times."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from tests.chaos.cli import replay_command
from tests.chaos.invariants import NAMES
from tests.chaos.schedule import KINDS


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(np.asarray(values), q)), 3) if values else None


def summarize(results: list[dict[str, Any]], jobs: int, wall: float = 0.0) -> dict[str, Any]:
    """Deterministic given the results (sorted by seed; wall times are the only measured values)."""
    results = sorted(results, key=lambda r: r["seed"])
    faults = Counter(f["kind"] for r in results for f in r["faults"])
    by_inv = Counter(v["invariant"] for r in results for v in r["violations"])
    by_pair: Counter[tuple[str, str]] = Counter()
    for r in results:
        kinds = sorted({f["kind"] for f in r["faults"]}) or ["none"]
        for v in {v["invariant"] for v in r["violations"]}:
            for k in kinds:
                by_pair[(v, k)] += 1
    rec = {k: [t for r in results for t in r["recovery"][k]] for k in ("drop", "kill")}
    secs = [r["seconds"] for r in results if not r["error"]]
    return {
        "schedules": len(results),
        "jobs": jobs,
        "wall_seconds": round(wall, 1),
        "seconds_per_schedule": {"p50": _pct(secs, 50), "p99": _pct(secs, 99), "total": round(sum(secs), 1)},
        "faults_by_kind": {k: faults.get(k, 0) for k in KINDS},
        "violations": sum(by_inv.values()),
        "violations_by_invariant": {n: by_inv.get(n, 0) for n in NAMES},
        "schedules_failing_by_invariant_and_fault": {f"{v} / {k}": n for (v, k), n in sorted(by_pair.items())},
        "harness_errors": [
            {"seed": r["seed"], "error": r["error"].strip().splitlines()[-1]} for r in results if r["error"]
        ],
        "recovery_seconds": {k: {"n": len(v), "p50": _pct(v, 50), "p99": _pct(v, 99)} for k, v in rec.items()},
        "brackets": {
            "schedules": sum(1 for r in results if r.get("brackets")),
            "protection_exercised": sum(1 for r in results if r.get("protection_exercised")),
            "reconcile_met_unprotected": sum(1 for r in results if r.get("protection_bound_tested")),
            "partial_entry_held": sum(1 for r in results if r.get("held_partial")),
        },
        "failing_seeds": [
            {
                "seed": r["seed"],
                "replay": replay_command(r),
                "schedule": r["schedule"],
                "violations": r["violations"],
            }
            for r in results
            if r["violations"]
        ],
    }


def markdown(s: dict[str, Any]) -> str:
    lines = [
        "# Fault-injection suite (`make chaos`)",
        "",
        f"{s['schedules']} schedules on {s['jobs']} worker(s) in {s['wall_seconds']} s; seconds per schedule p50 "
        f"{s['seconds_per_schedule']['p50']}, p99 {s['seconds_per_schedule']['p99']}. "
        f"**Invariant violations: {s['violations']}** (must be 0).",
        "",
        "| Invariant | Violations |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in s["violations_by_invariant"].items()]
    b = s.get("brackets", {})
    if b.get("schedules"):
        lines += [
            "",
            f"Bracket schedules (exit rules on every entry): {b['schedules']}; a protected position held at the "
            f"gateway in {b['protection_exercised']} (invariant 8 exercised), a reconcile started while a position was "
            f"unprotected in {b['reconcile_met_unprotected']}, a partly filled entry held in {b['partial_entry_held']}.",
        ]
    lines += ["", "| Fault kind | Injected |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in s["faults_by_kind"].items()]
    rs = s["recovery_seconds"]
    lines += [
        "",
        "| Recovery (fault -> runner reconciled and resubscribed) | n | p50 s | p99 s |",
        "|---|---|---|---|",
        f"| after a socket drop | {rs['drop']['n']} | {rs['drop']['p50']} | {rs['drop']['p99']} |",
        f"| after a SIGKILL (restart included) | {rs['kill']['n']} | {rs['kill']['p50']} | {rs['kill']['p99']} |",
    ]
    if s["schedules_failing_by_invariant_and_fault"]:
        lines += [
            "",
            "Failing schedules by invariant and fault kind present in the schedule:",
            "",
            "| Invariant / fault kind | Schedules |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v} |" for k, v in s["schedules_failing_by_invariant_and_fault"].items()]
    if s["failing_seeds"]:
        lines += ["", "Failing seeds (replay with the command shown):", ""]
        for f in s["failing_seeds"]:
            lines.append(
                f"- `{f['replay']}`: {', '.join(sorted({v['invariant'] for v in f['violations']}))} -- {f['schedule']}"
            )
    if s["harness_errors"]:
        lines += ["", "Harness errors:", ""] + [f"- seed {e['seed']}: {e['error']}" for e in s["harness_errors"]]
    return "\n".join(lines) + "\n"


def write(results: list[dict[str, Any]], out: Path, jobs: int, wall: float = 0.0) -> dict[str, Any]:
    s = summarize(results, jobs, wall)
    out.mkdir(parents=True, exist_ok=True)
    (out / "chaos.json").write_text(json.dumps(s, indent=2) + "\n")
    (out / "chaos.md").write_text(markdown(s))
    return s
