"""``bridge run --replay`` (its parity block): the replay's fills against the engine's own simulator.

The simulator (``quantlab.kernels.sim.simulate_nb``, fed by ``evaluate_arrays``) is the one
the backtest, the sweep and walk-forward use, and the research suite holds it equal to the
vectorbt replay to 1e-9. Comparing with it keeps the bridge off the research wrappers
(backtester, optimizer, vectorbt) while checking the same thing: same bars, same kernel,
same sizing and costs -> the same orders at the same prices and fees.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from quantlab.engine.exits import exit_slot
from quantlab.engine.intervals import Interval
from quantlab.engine.settings import SimConfig
from quantlab.engine.signals import evaluate_arrays, price_arrays
from quantlab.engine.sizing import sizing_vol
from quantlab.engine.strategy import StrategySpec
from quantlab.kernels.costs import fill_price_nb
from quantlab.kernels.layout import (
    EXIT_LEN,
    MAX_ORDERS_PER_BAR,
    N_METRICS,
    O_BAR,
    O_FEE,
    O_PRICE,
    O_REASON,
    O_SIZE,
    ORDER_LEN,
    R_SIGNAL,
    R_STOP,
    R_TARGET,
    R_TIME,
    R_TRAIL,
)
from quantlab.kernels.sim import simulate_nb

#: The simulator's exit reasons by name (the bridge's child roles map onto the same names).
REASONS = {R_SIGNAL: "signal", R_STOP: "stop", R_TARGET: "target", R_TRAIL: "trail", R_TIME: "time"}


def simulated_orders(
    spec: StrategySpec,
    params: Mapping[str, float],
    frame: pd.DataFrame,
    symbol: str,
    sim: SimConfig,
    interval: Interval,
    exits: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """The simulator's orders on ``frame``: bar time, signed size, fill price (after slippage), fees,
    and why (``signal``, ``stop``, ``target``, ``trail``, ``time``: max_hold)."""
    prices = price_arrays(frame, symbol)
    target = evaluate_arrays(spec, prices, dict(params))
    n = len(prices)
    orders, value = np.zeros((MAX_ORDERS_PER_BAR * n, ORDER_LEN)), np.zeros(n)
    cfg, empty = sim.to_array(symbol), np.empty(0)
    rules = np.full((1, EXIT_LEN), np.nan)
    for name, level in (exits or {}).items():
        rules[0, exit_slot(name)] = float(level)  # the exit rules the replay's brackets carry (issue 12)
    count = simulate_nb(
        target,
        prices.open,
        prices.high,
        prices.low,
        prices.close,
        sizing_vol(prices, sim, interval),
        rules,
        0,
        n,
        cfg,
        interval.bars_per_year,
        np.empty(0, dtype=np.int64),
        np.full(N_METRICS, np.nan),
        empty,
        empty,
        True,
        orders,
        value,
    )
    o = orders[:count]
    size = o[:, O_SIZE]
    return pd.DataFrame(
        {
            "time": prices.index[o[:, O_BAR].astype(np.int64)],
            "size": size,
            "price": [float(fill_price_nb(p, q > 0, cfg)) for p, q in zip(o[:, O_PRICE], size, strict=True)],
            "fees": o[:, O_FEE],
            "reason": [REASONS[float(r)] for r in o[:, O_REASON]],
        }
    )


def compare(
    spec: StrategySpec,
    params: Mapping[str, float],
    frames: Mapping[str, pd.DataFrame],
    sim: SimConfig,
    interval: Interval,
    orders: pd.DataFrame,
    exits: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The simulator's orders on the first symbol's bars, compared one by one with the replay's filled orders.

    With exit rules the broker's levels are on the tick grid, so prices agree within one tick
    (0.01) and fees within that tick's share of them; without, exactly (1e-9)."""
    sym = next(iter(frames))
    theirs = simulated_orders(spec, params, frames[sym], sym, sim, interval, exits)
    tick = 0.01 if exits else 0.0
    ours = orders[orders["status"] == "filled"] if len(orders) else orders
    rows = []
    for (_, a), (_, b) in zip(ours.iterrows(), theirs.iterrows(), strict=False):
        signed = a["filled"] if a["side"] == "BUY" else -a["filled"]
        rows.append(
            {
                "time": str(b["time"]),
                "ours": signed,
                "backtest": float(b["size"]),
                "price": a["avg_fill_price"],
                "backtest_price": float(b["price"]),
                "fees": a["commission"],
                "backtest_fees": float(b["fees"]),
            }
        )
    equal = len(ours) == len(theirs) and all(
        r["ours"] == r["backtest"]
        and math.isclose(r["price"], r["backtest_price"], rel_tol=1e-9, abs_tol=tick + 1e-9)
        and math.isclose(r["fees"], r["backtest_fees"], rel_tol=1e-9 + tick / max(r["price"], 1e-9), abs_tol=1e-9)
        for r in rows
    )
    return {
        "equal": equal,
        "orders": len(ours),
        "backtest_orders": len(theirs),
        "first_differences": [
            r for r in rows if r["ours"] != r["backtest"] or abs(r["price"] - r["backtest_price"]) > tick + 1e-9
        ][:5],
    }
