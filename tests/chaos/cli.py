"""Command line of the suite: replay one seed, or run many and write benchmarks/chaos.md/json."""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from tests.chaos.invariants import bound_tested, check, exercised
from tests.chaos.schedule import draw
from tests.chaos.session import run_schedule

REPLAY = "make chaos SEED={seed}"  # or: python -m tests.chaos --seed {seed}, with the venv and PYTHONPATH set


def replay_command(res: dict[str, Any]) -> str:
    """How to replay one result (a bracket schedule needs BRACKETS=1, i.e. --brackets)."""
    return REPLAY.format(seed=res["seed"]) + (" BRACKETS=1" if res.get("brackets") else "")


def outcome(seed: int, keep: bool = False, brackets: bool = False) -> dict[str, Any]:
    """Run seed's schedule (with exit rules if ``brackets``); a plain dict (picklable, JSON-able)
    of what happened and what broke."""
    sched = draw(seed, brackets=brackets)
    folder = Path(tempfile.mkdtemp(prefix=f"chaos-{seed}-"))
    try:
        rec = run_schedule(sched, folder)
        violations = [{"invariant": v.invariant, "message": v.message} for v in check(rec)]
        result = {
            "seed": seed,
            "schedule": sched.describe(),
            "seconds": round(rec.seconds, 2),
            "faults": rec.faults,
            "recovery": rec.recovery,
            "violations": violations,
            "error": None,
            "brackets": brackets,
            "protection_exercised": exercised(rec),
            "protection_bound_tested": bound_tested(rec),
            "held_partial": rec.held_partial,
        }
    except Exception:  # noqa: BLE001 - a harness failure is reported with its seed, not hidden
        result = {
            "seed": seed,
            "schedule": sched.describe(),
            "seconds": 0.0,
            "faults": [],
            "recovery": {"drop": [], "kill": []},
            "violations": [],
            "error": traceback.format_exc(limit=4),
            "brackets": brackets,
            "protection_exercised": False,
            "protection_bound_tested": False,
            "held_partial": False,
        }
    result["folder"] = str(folder) if keep or result["violations"] or result["error"] else None
    if result["folder"] is None:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def explain(res: dict[str, Any]) -> str:
    lines = [
        f"seed {res['seed']}: {len(res['violations'])} violation(s) in {res['seconds']} s -- replay: {replay_command(res)}",
        f"  {res['schedule']}",
    ]
    lines += [f"  [{v['invariant']}] {v['message']}" for v in res["violations"]]
    if res["error"]:
        lines.append("  harness error: " + res["error"].strip().splitlines()[-1])
    if res["folder"]:
        lines.append(f"  logs and ledger: {res['folder']}")
    return "\n".join(lines)


def run_many(seeds: list[int], jobs: int, brackets: bool = False) -> list[dict[str, Any]]:
    one = partial(outcome, brackets=brackets)
    if jobs <= 1:
        return [one(s) for s in seeds]
    # spawn, not fork: the caller (pytest) may hold threads, e.g. of an earlier fake gateway.
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(one, seeds))


def vacuous(results: list[dict[str, Any]]) -> bool:
    """A bracket run in which no schedule exercised invariant 8 (no position ever held its stop
    at the gateway) proves nothing about protection: the suite fails."""
    ran = [r for r in results if r.get("brackets") and not r["error"]]
    return bool(ran) and not any(r["protection_exercised"] for r in ran)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    ap.add_argument("--seed", type=int, action="append", help="replay this seed (repeatable)")
    ap.add_argument("--n", type=int, default=0, help="run seeds FIRST .. FIRST+N-1")
    ap.add_argument("--first", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=4, help="parallel schedules (mostly waiting: 4 use about one core)")
    ap.add_argument("--out", help="write chaos.md and chaos.json into this folder")
    ap.add_argument("--keep", action="store_true", help="keep every schedule's folder (logs, ledger)")
    ap.add_argument(
        "--brackets", action="store_true", help="the same schedules with exit rules: every entry is a bracket"
    )
    a = ap.parse_args(argv)
    if not a.seed and a.n <= 0:
        ap.error("give --seed N (replay) or --n N (run many)")
    seeds = a.seed or list(range(a.first, a.first + a.n))
    t0 = time.monotonic()
    results = (
        [outcome(s, keep=a.keep, brackets=a.brackets) for s in seeds] if a.seed else run_many(seeds, a.jobs, a.brackets)
    )
    wall = time.monotonic() - t0
    bad = [r for r in results if r["violations"] or r["error"]]
    for r in bad if not a.seed else results:
        print(explain(r))
    if a.out:
        from tests.chaos.report import write

        write(results, Path(a.out), jobs=a.jobs, wall=wall)
    print(
        f"{len(results)} schedule(s), {sum(len(r['violations']) for r in results)} violation(s), "
        f"{sum(1 for r in results if r['error'])} harness error(s)"
        + (f", invariant 8 exercised in {sum(1 for r in results if r['protection_exercised'])}" if a.brackets else "")
    )
    if vacuous(results):
        print("no schedule held a protected position at the gateway: invariant 8 was never exercised")
        return 1
    return 1 if bad else 0
