"""The ``--shared-cash`` group: aligned arrays in, the group simulator, vectorbt's portfolio out.

Without exit rules the plain group simulator (:mod:`quantlab.kernels.group_sim`) runs, one
order per symbol and bar, replayed with its call sequence; with them
:mod:`quantlab.kernels.group_exits` runs and every order (up to three per symbol and bar, at
their own prices) is handed to vectorbt in execution order, as a flexible simulation would
record it. Either way vectorbt does the group's cash, value and trade accounting itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantlab.engine.intervals import Interval
from quantlab.engine.settings import SimConfig
from quantlab.engine.sizing import sizing_vol
from quantlab.errors import DataError, ParameterError
from quantlab.inputs import MarketInputs
from quantlab.kernels.group_exits import simulate_group_exits_nb
from quantlab.kernels.group_sim import simulate_group_nb
from quantlab.kernels.layout import MAX_ORDERS_PER_BAR, METRIC_NAMES, ORDER_LEN
from quantlab.replay import SimRecord, group_portfolio_from_orders, portfolio_from_orders


@dataclass(frozen=True)
class GroupArrays:
    """(bars x symbols) float64 arrays of a group on the symbols' common timestamps."""

    index: pd.DatetimeIndex
    symbols: list[str]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    target: np.ndarray
    vol: np.ndarray

    @classmethod
    def build(cls, inputs: MarketInputs, targets: dict[str, pd.Series], sim: SimConfig) -> GroupArrays:
        """Align every symbol on the timestamps they all have."""
        index = inputs.prices[inputs.symbols[0]].index
        for prices in inputs.prices.values():
            index = index.intersection(prices.index)
        if len(index) < 2:
            raise DataError("the symbols share fewer than 2 timestamps", fix="run them without --shared-cash")
        symbols = list(inputs.symbols)
        frames = {s: inputs.frames[s].loc[index] for s in symbols}

        def col(name: str) -> np.ndarray:
            return np.column_stack([frames[s][name].to_numpy(np.float64) for s in symbols])

        vol = np.column_stack(
            [
                pd.Series(sizing_vol(inputs.prices[s], sim, inputs.interval), index=inputs.prices[s].index)
                .reindex(index)
                .to_numpy()
                for s in symbols
            ]
        )
        target = np.column_stack([targets[s].reindex(index).to_numpy(np.float64) for s in symbols])
        return cls(index, symbols, col("open"), col("high"), col("low"), col("close"), target, vol)


def check_group_sim(sim: SimConfig) -> None:
    """Refuse what the group simulator does not model (it would be silently ignored). Borrow
    without shorting is inert anyway (and reported so by the run), not refused."""
    if sim.costs.borrow_rate > 0 and sim.sizing.allow_short:
        raise ParameterError(
            "short borrow is not simulated for a shared-cash group",
            found=f"borrow_rate={sim.costs.borrow_rate:g}",
            fix="run the symbols on their own accounts (drop shared_cash) or set borrow_rate=0",
        )


def simulate_group(arrays: GroupArrays, sim: SimConfig, exits: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Run the group with exit rules ``exits`` (an exit vector); returns (orders, value).

    ``orders`` has the ``O_*`` columns of :mod:`quantlab.kernels.layout` plus the column
    index last, one row per order in execution order.
    """
    n, m = arrays.close.shape
    rec = np.zeros((MAX_ORDERS_PER_BAR * n * m, ORDER_LEN))
    cols = np.zeros(MAX_ORDERS_PER_BAR * n * m, dtype=np.int64)
    value = np.empty(n)
    count = simulate_group_exits_nb(
        np.ascontiguousarray(arrays.target),
        np.ascontiguousarray(arrays.open),
        np.ascontiguousarray(arrays.high),
        np.ascontiguousarray(arrays.low),
        np.ascontiguousarray(arrays.close),
        np.ascontiguousarray(arrays.vol),
        np.asarray(exits, dtype=np.float64),
        sim.to_array(),
        rec,
        cols,
        value,
    )
    return np.column_stack([rec[:count], cols[:count]]), value


def shared_portfolio(
    arrays: GroupArrays,
    sim: SimConfig,
    interval: Interval,
    exits: np.ndarray | None,
    ready: Callable[[], None] | None = None,
) -> tuple[Any, np.ndarray, SimRecord | None]:
    """vectorbt's cash-sharing Portfolio of the group, the simulator's value path, and (with
    exit rules) the record whose reasons label trades.csv and orders.csv.

    ``ready`` is called before vectorbt is first used (the warm-up's wait).
    """
    check_group_sim(sim)
    close = pd.DataFrame(arrays.close, index=arrays.index, columns=arrays.symbols)
    n, m = arrays.close.shape
    if exits is None or np.isnan(exits).all():
        size, fee = np.empty((n, m)), np.empty((n, m))
        seq = np.empty((n, m), dtype=np.int64)
        value = np.empty(n)
        simulate_group_nb(
            np.ascontiguousarray(arrays.target),
            arrays.open,
            arrays.close,
            np.ascontiguousarray(arrays.vol),
            sim.to_array(),
            size,
            fee,
            seq,
            value,
        )
        if ready is not None:
            ready()
        pf = portfolio_from_orders(close, size, arrays.open, fee, sim, interval, cash_sharing=True, call_seq=seq)
        return pf, value, None
    orders, value = simulate_group(arrays, sim, exits)
    if ready is not None:
        ready()
    cols = orders[:, -1].astype(np.int64)
    pf = group_portfolio_from_orders(close, orders[:, :ORDER_LEN], cols, sim, interval)
    record = SimRecord(  # per-bar size/fee are per column here: unused, the orders hold them
        arrays.index,
        np.full(n, np.nan),
        np.zeros(n),
        value,
        dict.fromkeys(METRIC_NAMES, np.nan),
        orders[:, :ORDER_LEN],
        cols,
    )
    return pf, value, record
