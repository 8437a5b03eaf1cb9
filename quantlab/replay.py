"""Exact replay: record the simulator's orders and hand them to vectorbt.

The simulator decides every order (size, commission) with the shared sizing and cost
kernels; vectorbt's ``Portfolio.from_orders`` then does its own independent cash,
position, value, trade and metric accounting from those orders, filled at the next
bar's open with the same slippage. IB's per-share commission with its minimum and cap is
passed per order as ``fixed_fees``, which ``from_signals``' percent/fixed fees cannot express.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantlab.config import SimConfig
from quantlab.intervals import Interval
from quantlab.kernels.layout import METRIC_NAMES, N_METRICS
from quantlab.kernels.rolling import log_return_vol_1d_nb
from quantlab.kernels.sim import simulate_nb
from quantlab.signals import PriceArrays


@dataclass(frozen=True)
class SimRecord:
    """Orders and equity of one simulated run over ``index``."""

    index: pd.DatetimeIndex
    size: np.ndarray  # signed shares per bar, NaN where no order
    fee: np.ndarray
    value: np.ndarray
    metrics: dict[str, float]


def sizing_vol(prices: PriceArrays, sim: SimConfig, interval: Interval) -> np.ndarray:
    """Per-bar annualised volatility for volatility-target sizing (zeros otherwise)."""
    if sim.sizing.mode != "vol_target":
        return np.zeros(len(prices))
    return np.asarray(log_return_vol_1d_nb(prices.close, sim.sizing.vol_window, interval.bars_per_year))


def simulate(
    target: np.ndarray,
    prices: PriceArrays,
    sim: SimConfig,
    interval: Interval,
    start: int = 0,
    end: int | None = None,
    vol: np.ndarray | None = None,
) -> SimRecord:
    """Run the simulator over ``[start, end)`` and record orders, fees and value."""
    end = len(prices) if end is None else end
    n = end - start
    size = np.full(n, np.nan)
    fee = np.zeros(n)
    value = np.zeros(n)
    metrics = np.full(N_METRICS, np.nan)
    empty = np.empty(0)
    simulate_nb(
        target, prices.open, prices.close, sizing_vol(prices, sim, interval) if vol is None else vol,
        start, end, sim.to_array(), interval.bars_per_year, np.empty(0, dtype=np.int64),
        metrics, empty, empty, True, size, fee, value,
    )
    return SimRecord(prices.index[start:end], size, fee, value, dict(zip(METRIC_NAMES, metrics.tolist(), strict=True)))


def portfolio(
    records: SimRecord | list[SimRecord],
    prices: PriceArrays,
    sim: SimConfig,
    interval: Interval,
    start: int = 0,
    columns: list[str] | None = None,
) -> Any:
    """vectorbt Portfolio replaying one record, or several as columns (orders at the open,
    valued at the close). All records must cover the same bars starting at ``start``."""
    import vectorbt as vbt

    many = isinstance(records, list)
    recs = records if isinstance(records, list) else [records]
    n = len(recs[0].index)
    end = start + n
    if many:
        names = columns or [str(i) for i in range(len(recs))]
        close: Any = pd.DataFrame(
            np.repeat(prices.close[start:end, None], len(recs), axis=1), index=recs[0].index, columns=names
        )
        size = np.column_stack([r.size for r in recs])
        fees = np.column_stack([r.fee for r in recs])
        price = np.repeat(prices.open[start:end, None], len(recs), axis=1)
    else:
        close = pd.Series(prices.close[start:end], index=recs[0].index, name=prices.symbol)
        size, fees, price = recs[0].size, recs[0].fee, prices.open[start:end]
    return vbt.Portfolio.from_orders(
        close,
        size=size,
        size_type="amount",
        direction="both",
        price=price,
        fees=0.0,
        fixed_fees=fees,
        slippage=sim.costs.slippage_bps / 1e4,
        init_cash=sim.init_cash,
        freq=interval.freq,
    )


def vbt_metrics(pf: Any, interval: Interval) -> pd.DataFrame:
    """Our metrics computed by vectorbt itself, one row per portfolio column.

    Annualised with the interval's year (vectorbt's own default year is 365 days).
    """
    yf = interval.year_freq
    positions = pf.positions
    closed = positions.closed

    def col(values: Any) -> np.ndarray:
        return np.atleast_1d(np.asarray(values, dtype=np.float64))

    data = {
        "total_return": col(pf.total_return()),
        "cagr": col(pf.annualized_return(year_freq=yf)),
        "sharpe": col(pf.sharpe_ratio(year_freq=yf)),
        "sortino": col(pf.sortino_ratio(year_freq=yf)),
        "max_drawdown": col(pf.max_drawdown(year_freq=yf)),
        "calmar": col(pf.calmar_ratio(year_freq=yf)),
        "win_rate": col(closed.win_rate()),
        "profit_factor": col(closed.profit_factor()),
        "n_trades": col(positions.count()),
        "exposure": col(pf.position_coverage()),
        "volatility": col(pf.annualized_volatility(year_freq=yf)),
        "n_orders": col(pf.orders.count()),
        "fees": col(pf.orders.fees.sum()),
        "final_value": col(pf.final_value()),
    }
    frame = pd.DataFrame(data)
    # vectorbt reports +inf Sharpe/Sortino for zero-variance returns; quantlab reports NaN.
    for name in ("sharpe", "sortino"):
        frame.loc[np.isinf(frame[name]), name] = np.nan
    return frame[list(METRIC_NAMES)]


def max_relative_difference(ours: pd.DataFrame, theirs: pd.DataFrame) -> float:
    """Largest |a - b| / (max(|a|, |b|) + 1e-3) over finite cells (so values near zero are
    compared absolutely at ~1e-12); NaN and infinity patterns must agree (else inf)."""
    a = ours[list(METRIC_NAMES)].to_numpy(dtype=np.float64)
    b = theirs[list(METRIC_NAMES)].to_numpy(dtype=np.float64)
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return float("inf")
    both = np.isfinite(a) & np.isfinite(b)
    if not np.array_equal(np.isinf(a), np.isinf(b)):
        return float("inf")
    if not both.any():
        return 0.0
    scale = np.maximum(np.abs(a[both]), np.abs(b[both])) + 1e-3
    return float(np.max(np.abs(a[both] - b[both]) / scale))
