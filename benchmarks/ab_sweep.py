"""Interleaved A/B timing of the sweep between source trees (kernel changes on a loaded machine).

One absolute throughput figure means little on a shared machine: the load of the other
processes moves it by more than a kernel change. This script keeps one warm worker
process per variant (its own ``NUMBA_CACHE_DIR``, the same ``NUMBA_NUM_THREADS``) and
times the same sweep in them alternately, A B A B ..., so both see the same load; the
report is each variant's median and the ratio of medians (and of the per-round pairs).

Usage::

    python -m benchmarks.ab_sweep old=a3fbd55 new=. --rounds 7 [--exits]

A variant is ``name=REV`` (a git revision, exported with ``git archive`` to a temporary
folder) or ``name=PATH`` (a checkout used as it is, uncommitted edits included).
``--exits`` adds bench_sweep's exit rules to every row (variants whose tree has no exit
rules are timed without them and marked so); a ``+exits`` suffix does it for one variant,
so ``plain=. exits=.+exits`` times the exits slowdown of one tree interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_WORKER = r"""
import json, sys, time
import numpy as np
from quantlab import data
from quantlab.engine.intervals import get_interval
from quantlab.engine.params import parse_grid
from quantlab.engine.registry import get_strategy
from quantlab.engine.settings import SimConfig
from quantlab.engine.signals import price_arrays
from quantlab.engine.sweep import run_sweep

GRID, EXITS, want_exits = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
spec = get_strategy("sma_cross")
prices = price_arrays(data.load("SPY"), "SPY")
values = parse_grid(spec, GRID).values
iv, sim = get_interval("1d"), SimConfig()
exits = False
if want_exits:
    try:
        from quantlab.engine.exits import parse_exits
    except ImportError:
        pass
    else:
        spec, grid = parse_exits(spec, EXITS)
        fixed = np.array([float(v.split("=")[1]) for v in grid.split(",")])
        values = np.column_stack([values, np.tile(fixed, (len(values), 1))])
        exits = True
run_sweep(spec, prices, values, sim, iv, n_blocks=16)  # compile / load
run_sweep(spec, prices, values, sim, iv, n_blocks=16)
print(json.dumps({"ready": True, "evals": len(prices) * len(values), "exits": exits}), flush=True)
for line in sys.stdin:
    t0, c0 = time.perf_counter(), time.process_time()
    run_sweep(spec, prices, values, sim, iv, n_blocks=16)
    print(json.dumps({"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0}), flush=True)
"""


def _tree(spec: str, tmp: Path, name: str) -> Path:
    path = Path(spec)
    if path.is_dir():
        return path.resolve()
    out = tmp / f"tree-{name}"
    out.mkdir()
    archive = subprocess.run(["git", "archive", spec], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


def _start(
    name: str, tree: Path, tmp: Path, args: argparse.Namespace, exits: bool
) -> tuple[subprocess.Popen[str], dict]:
    from benchmarks.bench_sweep import EXITS, GRID

    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "NUMBA_CACHE_DIR": str(tmp / f"numba-{name}"),
        "QUANTLAB_CACHE_DIR": str(tmp / f"ql-{name}"),
        "QUANTLAB_STORE": str(ROOT / "data" / "market.h5"),
        "NUMBA_NUM_THREADS": str(args.threads),
        "PYTHONHASHSEED": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", _WORKER, GRID, EXITS, "1" if exits else "0"],
        cwd=tree,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    head = json.loads(proc.stdout.readline())
    return proc, head


def _time(proc: subprocess.Popen[str], repeat: int) -> tuple[float, float]:
    """Best wall seconds and CPU seconds (all threads) of ``repeat`` back-to-back sweeps."""
    assert proc.stdin is not None and proc.stdout is not None
    wall, cpu = [], []
    for _ in range(repeat):
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out = json.loads(proc.stdout.readline())
        wall.append(float(out["seconds"]))
        cpu.append(float(out["cpu"]))
    return min(wall), min(cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="name=REV or name=PATH (the first is the baseline)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="sweeps per turn (the best counts)")
    parser.add_argument("--exits", action="store_true")
    args = parser.parse_args(argv)
    pairs = [v.split("=", 1) for v in args.variants]
    with tempfile.TemporaryDirectory(prefix="ab-sweep-") as tmp_name:
        tmp = Path(tmp_name)
        workers = {}
        for name, spec in pairs:
            source, plus_exits = spec.removesuffix("+exits"), spec.endswith("+exits")
            workers[name] = _start(name, _tree(source, tmp, name), tmp, args, args.exits or plus_exits)
        times: dict[str, list[float]] = {name: [] for name, _ in pairs}
        cpus: dict[str, list[float]] = {name: [] for name, _ in pairs}
        try:
            for r in range(args.rounds):
                order = pairs if r % 2 == 0 else pairs[::-1]
                for name, _ in order:
                    wall, cpu = _time(workers[name][0], args.repeat)
                    times[name].append(wall)
                    cpus[name].append(cpu)
        finally:
            for proc, _ in workers.values():
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait()
    base = pairs[0][0]
    report = {}
    for name, _ in pairs:
        evals = workers[name][1]["evals"]
        med = statistics.median(times[name])
        ratio = [b / t for b, t in zip(times[base], times[name], strict=True)]
        report[name] = {
            "median_M_evals_s": round(evals / med / 1e6, 1),
            "best_M_evals_s": round(evals / min(times[name]) / 1e6, 1),
            "speed_vs_" + base: round(statistics.median(times[base]) / med, 4),
            "pairwise_median_speed": round(statistics.median(ratio), 4),
            "cpu_speed_vs_" + base: round(statistics.median(cpus[base]) / statistics.median(cpus[name]), 4),
            "median_cpu_s": round(statistics.median(cpus[name]), 4),
            "exits": workers[name][1]["exits"],
        }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
