"""Exact replay: record the simulator's orders and hand them to vectorbt.

The simulator decides every order (size, commission) with the shared sizing and cost
kernels; vectorbt's ``Portfolio.from_orders`` then does its own independent cash,
position, value, trade and metric accounting from those orders, filled at the next
bar's open with the same slippage. IB's per-share commission with its minimum and cap is
passed per order as ``fixed_fees``, which ``from_signals``' percent/fixed fees cannot express.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def portfolio(record: SimRecord, prices: PriceArrays, sim: SimConfig, interval: Interval, start: int = 0) -> Any:
    """vectorbt Portfolio replaying ``record`` (orders at the open, valued at the close)."""
    import vectorbt as vbt

    end = start + len(record.index)
    close = pd.Series(prices.close[start:end], index=record.index, name=prices.symbol)
    return vbt.Portfolio.from_orders(
        close,
        size=record.size,
        size_type="amount",
        direction="both",
        price=prices.open[start:end],
        fees=0.0,
        fixed_fees=record.fee,
        slippage=sim.costs.slippage_bps / 1e4,
        init_cash=sim.init_cash,
        freq=interval.freq,
    )


def vbt_metrics(pf: Any, interval: Interval) -> dict[str, float]:
    """Our metric names computed by vectorbt itself (annualised with the interval's year)."""
    yf = interval.year_freq
    positions = pf.positions
    closed = positions.closed
    return {
        "total_return": float(pf.total_return()),
        "cagr": float(pf.annualized_return(year_freq=yf)),
        "sharpe": float(pf.sharpe_ratio(year_freq=yf)),
        "sortino": float(pf.sortino_ratio(year_freq=yf)),
        "max_drawdown": float(pf.max_drawdown(year_freq=yf)),
        "calmar": float(pf.calmar_ratio(year_freq=yf)),
        "win_rate": float(closed.win_rate()),
        "profit_factor": float(closed.profit_factor()),
        "n_trades": float(positions.count()),
        "exposure": float(pf.position_coverage()),
        "volatility": float(pf.annualized_volatility(year_freq=yf)),
        "n_orders": float(pf.orders.count()),
        "fees": float(pf.orders.fees.sum()),
        "final_value": float(pf.final_value()),
    }


def metrics_frame(rows: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows).T
