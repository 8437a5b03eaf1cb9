"""Research-engine speed and memory (issue 3), all measured in one run on this machine.

* Sweep throughput: sma_cross on bundled SPY daily, 9,500 combinations, both cores,
  compiled kernels cached (best and median of 5 warm runs), in bar x combination
  evaluations per second. Ours includes IB commissions, next-open fills and all 14
  metrics plus CSCV block statistics.
* vectorbt's idiomatic pipeline (MA.run_combs, crossed signals, Portfolio.from_signals,
  total_return / sharpe_ratio / max_drawdown) on a 1,540-combination subset of the same
  kind of grid (its memory need of ~140 bytes per bar x combination rules out the full
  grid), warm.
* backtesting.py's Backtest.optimize on a 24-combination subset, per combination.
* Peak resident memory of a 20 symbols x 19,600 combinations x 2,520 bars optimize (a
  fresh process), and vectorbt's estimated need for the same job.
* Cold start: the first `quantlab optimize` with empty numba and quantlab caches (as on a
  fresh clone), then a second run with warm caches (wall and CPU time of the process).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._util import ROOT, best_and_median, run_command, run_python

GRID = "fast=5:100:1,slow=10:250:2"
DEMO_ARGS = [
    "optimize",
    "--strategy",
    "sma_cross",
    "--symbols",
    "SPY",
    "--grid",
    GRID,
    "--holdout",
    "0.3",
    "--top",
    "10",
]


def _ours() -> tuple[list[dict], float, int, int]:
    from quantlab import data
    from quantlab.engine.intervals import get_interval
    from quantlab.engine.params import parse_grid
    from quantlab.engine.registry import get_strategy
    from quantlab.engine.settings import SimConfig
    from quantlab.engine.signals import price_arrays
    from quantlab.engine.sweep import run_sweep

    spec = get_strategy("sma_cross")
    prices = price_arrays(data.load("SPY"), "SPY")
    values = parse_grid(spec, GRID).values
    iv, sim = get_interval("1d"), SimConfig()
    run_sweep(spec, prices, values, sim, iv, n_blocks=16)  # compile / load
    best, median = best_and_median(lambda: run_sweep(spec, prices, values, sim, iv, n_blocks=16), 5)
    evals = len(prices) * len(values)
    import numba

    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    one_best, _ = best_and_median(lambda: run_sweep(spec, prices, values, sim, iv, n_blocks=16), 3)
    numba.set_num_threads(threads)
    figures = [
        {
            "name": "sweep throughput (2 cores, best of 5)",
            "value": evals / best / 1e6,
            "unit": "M evals/s",
            "target": ">= 300",
            "note": f"sma_cross, SPY {len(prices)} bars x {len(values)} combos, {threads} threads",
        },
        {
            "name": "sweep throughput (2 cores, median of 5)",
            "value": evals / median / 1e6,
            "unit": "M evals/s",
            "target": ">= 300",
        },
        {"name": "sweep throughput (1 thread)", "value": evals / one_best / 1e6, "unit": "M evals/s"},
        {"name": "sweep time, full grid", "value": best, "unit": "s"},
    ]
    figures += _with_exits(spec, prices, values, sim, iv, evals / best, evals / one_best)
    return figures, evals / median, len(prices), len(values)


#: The exit rules of the "with exits" figures: every row runs a stop, a target and a trail.
EXITS = "sl_stop=0.05,tp_stop=0.10,sl_trail=0.08"


def _with_exits(spec, prices, values, sim, iv, rate, one_rate) -> list[dict]:  # type: ignore[no-untyped-def]
    """The same grid with exit rules on in every row (issue 12: within 1.5x of without)."""
    import numba

    from quantlab.engine.exits import parse_exits
    from quantlab.engine.sweep import run_sweep

    spec_x, grid = parse_exits(spec, EXITS)
    fixed = np.array([float(v.split("=")[1]) for v in grid.split(",")])
    values_x = np.column_stack([values, np.tile(fixed, (len(values), 1))])
    run_sweep(spec_x, prices, values_x, sim, iv, n_blocks=16)  # compile / load
    best, _ = best_and_median(lambda: run_sweep(spec_x, prices, values_x, sim, iv, n_blocks=16), 5)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    one_best, _ = best_and_median(lambda: run_sweep(spec_x, prices, values_x, sim, iv, n_blocks=16), 3)
    numba.set_num_threads(threads)
    evals = len(prices) * len(values_x)
    return [
        {
            "name": "sweep throughput with exits (2 cores, best of 5)",
            "value": evals / best / 1e6,
            "unit": "M evals/s",
            "note": f"the same grid, {EXITS} on every row",
        },
        {"name": "sweep throughput with exits (1 thread)", "value": evals / one_best / 1e6, "unit": "M evals/s"},
        {"name": "slowdown with exits (2 cores)", "value": rate / (evals / best), "unit": "x", "target": "<= 1.5"},
        {
            "name": "slowdown with exits (1 thread)",
            "value": one_rate / (evals / one_best),
            "unit": "x",
            "target": "<= 1.5",
        },
    ]


def _vectorbt(close: pd.Series) -> tuple[float, int]:
    import vectorbt as vbt

    windows = np.arange(5, 61)

    def pipeline() -> None:
        fast, slow = vbt.MA.run_combs(close, window=windows, r=2, short_names=["fast", "slow"])
        entries = fast.ma_crossed_above(slow)
        exits = fast.ma_crossed_below(slow)
        pf = vbt.Portfolio.from_signals(close, entries, exits, fees=0.001, freq="1D")
        pf.total_return(), pf.sharpe_ratio(), pf.max_drawdown()

    pipeline()  # warm numba caches
    best, _ = best_and_median(pipeline, 2)
    combos = len(windows) * (len(windows) - 1) // 2
    return len(close) * combos / best, combos


def _backtesting(frame: pd.DataFrame) -> tuple[float, int]:
    import warnings

    from backtesting import Backtest

    from benchmarks._bt_strategy import SmaCross

    bars = frame.rename(columns=str.title)[["Open", "High", "Low", "Close", "Volume"]]
    bars.index = bars.index.tz_localize(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(bars, SmaCross, cash=100_000, commission=0.001, finalize_trades=True)
        t0 = time.perf_counter()
        bt.optimize(fast=[5, 10, 15, 20, 25, 30], slow=[40, 60, 80, 100], maximize="Sharpe Ratio", return_heatmap=False)
        seconds = time.perf_counter() - t0
    combos = 24
    return len(bars) * combos / seconds, combos


_MEMORY_CHILD = r"""
import json, time

def peak_mb():
    # VmHWM: this address space's high-water mark (ru_maxrss would include the parent's,
    # which Linux carries across vfork + exec).
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

import pandas as pd
import quantlab
from quantlab import data
frames = {}
for k in range(6):  # 20 series of 2,520 bars: 6 symbols x windows ending 0, 630, 1260, ... bars back
    for s in ["SPY", "QQQ", "IWM", "DIA", "AAPL", "MSFT"]:
        full = data.load(s)
        stop = len(full) - 630 * k
        if stop >= 2520 and len(frames) < 20:
            frames[f"{s}_{k}"] = full.iloc[stop - 2520 : stop]
t0 = time.perf_counter()
r = quantlab.optimize("sma_cross", list(frames), "fast=5:120:1,slow=10:400:2", data=frames, save=False, progress=False)
print(json.dumps({"symbols": len(frames), "combos": r.summary["n_combinations"], "bars": 2520,
                  "seconds": time.perf_counter() - t0, "timings": r.summary["timings"],
                  "peak_rss_mb": peak_mb()}))
"""


def run() -> list[dict]:
    from quantlab import data

    figures, our_rate, bars, combos = _ours()
    spy = data.load("SPY")
    vbt_rate, vbt_combos = _vectorbt(spy["close"])
    figures.append(
        {
            "name": "vectorbt idiomatic pipeline",
            "value": vbt_rate / 1e6,
            "unit": "M evals/s",
            "note": f"MA.run_combs + from_signals + 3 metrics, {vbt_combos} combos",
        }
    )
    figures.append({"name": "ratio ours / vectorbt", "value": our_rate / vbt_rate, "unit": "x", "target": ">= 100"})
    bt_rate, bt_combos = _backtesting(spy)
    figures.append(
        {
            "name": "backtesting.py Backtest.optimize",
            "value": bt_rate / 1e6,
            "unit": "M evals/s",
            "note": f"{bt_combos} combos (per combination: {bars / bt_rate * 1e3:.0f} ms)",
        }
    )
    figures.append(
        {
            "name": "ratio ours / backtesting.py per combination",
            "value": our_rate / bt_rate,
            "unit": "x",
            "target": ">= 1000",
        }
    )

    mem = run_python(_MEMORY_CHILD)
    figures.append(
        {
            "name": "peak RSS, 20 symbols x combos x 2,520 bars optimize",
            "value": mem["peak_rss_mb"],
            "unit": "MB",
            "target": "< 1024",
            "note": f"{mem['symbols']} symbols x {mem['combos']} combos; whole optimize in {mem['seconds']:.1f} s",
        }
    )
    need = 140 * mem["symbols"] * mem["combos"] * 2520 / 2**30
    figures.append(
        {
            "name": "vectorbt pipeline memory need, same job (est.)",
            "value": need,
            "unit": "GB",
            "note": "140 bytes per bar x combination",
        }
    )

    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "NUMBA_CACHE_DIR": str(Path(tmp) / "numba"),
            "QUANTLAB_CACHE_DIR": str(Path(tmp) / "ql"),
            "QUANTLAB_REPORTS": str(Path(tmp) / "reports"),
        }
        exe = ROOT / ".venv" / "bin" / "quantlab"
        quantlab = str(exe) if exe.exists() else "quantlab"
        cold = run_command([quantlab, *DEMO_ARGS, "--report", "none"], env)
        warm = run_command([quantlab, *DEMO_ARGS, "--report", "none"], env)
        pages = run_command([quantlab, *DEMO_ARGS, "--report", "full"], env)
    figures += [
        {
            "name": "cold start: first optimize (empty caches)",
            "value": cold["wall_s"],
            "unit": "s wall",
            "target": "< 30",
            "note": f"{cold['cpu_s']:.1f} s CPU; quantlab {' '.join(DEMO_ARGS)} --report none",
        },
        {
            "name": "second optimize (warm caches)",
            "value": warm["wall_s"],
            "unit": "s wall",
            "target": "< 5",
            "note": f"{warm['cpu_s']:.1f} s CPU (both threads counted)",
        },
        {
            "name": "second optimize incl. report pages",
            "value": pages["wall_s"],
            "unit": "s wall",
            "note": f"{pages['cpu_s']:.1f} s CPU; plotly page + QuantStats tearsheet",
        },
    ]
    return figures
