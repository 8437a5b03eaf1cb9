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

from quantlab.engine.intervals import Interval
from quantlab.engine.settings import SimConfig
from quantlab.engine.signals import PriceArrays
from quantlab.engine.sizing import sizing_vol
from quantlab.kernels.layout import (
    EXIT_LEN,
    MAX_ORDERS_PER_BAR,
    METRIC_NAMES,
    N_METRICS,
    O_BAR,
    O_FEE,
    O_PRICE,
    O_REASON,
    O_SIZE,
    ORDER_LEN,
    REASON_NAMES,
)
from quantlab.kernels.sim import simulate_nb


@dataclass(frozen=True)
class SimRecord:
    """Orders and equity of one simulated run over ``index``.

    ``size``/``fee`` are per bar (net signed shares, NaN where no order; fees summed);
    ``orders`` lists every order (``quantlab.kernels.layout.O_*`` columns), as exit rules
    can fill more than one order in a bar and away from the open; ``cols`` the column of
    each order when one record holds a shared-cash group.
    """

    index: pd.DatetimeIndex
    size: np.ndarray  # signed shares per bar, NaN where no order
    fee: np.ndarray
    value: np.ndarray
    metrics: dict[str, float]
    orders: np.ndarray | None = None
    cols: np.ndarray | None = None

    def reasons(self) -> list[str]:
        """Each order's reason (signal, stop, target, trail, time)."""
        if self.orders is None:
            return ["signal"] * int(np.count_nonzero(~np.isnan(self.size)))
        return [REASON_NAMES[int(r)] for r in self.orders[:, O_REASON]]


def simulate(
    target: np.ndarray,
    prices: PriceArrays,
    sim: SimConfig,
    interval: Interval,
    start: int = 0,
    end: int | None = None,
    vol: np.ndarray | None = None,
    exits: np.ndarray | None = None,
) -> SimRecord:
    """Run the simulator over ``[start, end)`` and record orders, fees and value
    (``exits``: the exit-rule vector, :func:`quantlab.exits.exit_vector`, or one row per
    bar of ``prices``; None = none)."""
    end = len(prices) if end is None else end
    n = end - start
    orders = np.zeros((MAX_ORDERS_PER_BAR * n, ORDER_LEN))
    value = np.zeros(n)
    metrics = np.full(N_METRICS, np.nan)
    empty = np.empty(0)
    ex = np.full((1, EXIT_LEN), np.nan) if exits is None else np.atleast_2d(np.asarray(exits, dtype=np.float64))
    count = simulate_nb(
        target,
        prices.open,
        prices.high,
        prices.low,
        prices.close,
        sizing_vol(prices, sim, interval) if vol is None else vol,
        ex,
        start,
        end,
        sim.to_array(prices.symbol),
        interval.bars_per_year,
        np.empty(0, dtype=np.int64),
        metrics,
        empty,
        empty,
        True,
        orders,
        value,
    )
    orders = orders[:count].copy()
    bars = orders[:, O_BAR].astype(np.int64)
    size = np.full(n, np.nan)
    fee = np.zeros(n)
    if count:
        net = np.bincount(bars, weights=orders[:, O_SIZE], minlength=n)
        has = np.bincount(bars, minlength=n) > 0
        size[has] = net[has]
        fee = np.bincount(bars, weights=orders[:, O_FEE], minlength=n).astype(np.float64)
    return SimRecord(
        prices.index[start:end], size, fee, value, dict(zip(METRIC_NAMES, metrics.tolist(), strict=True)), orders
    )


def order_list_records(orders: list[np.ndarray], concession: float) -> np.ndarray:
    """vectorbt order records from our order lists (one per column, ``O_*`` columns), at
    their own fill prices adjusted for slippage and half-spread as vectorbt adjusts them."""
    from vectorbt.portfolio.enums import order_dt

    total = sum(len(o) for o in orders)
    records = np.empty(total, dtype=order_dt)
    i = 0
    for col, o in enumerate(orders):
        m = len(o)
        signed = o[:, O_SIZE]
        records["col"][i : i + m] = col
        records["idx"][i : i + m] = o[:, O_BAR].astype(np.int64)
        records["size"][i : i + m] = np.abs(signed)
        records["price"][i : i + m] = np.where(
            signed > 0, o[:, O_PRICE] * (1 + concession), o[:, O_PRICE] * (1 - concession)
        )
        records["fees"][i : i + m] = o[:, O_FEE]
        records["side"][i : i + m] = np.where(signed > 0, 0, 1)
        i += m
    records["id"] = np.arange(total)
    return records


def group_portfolio_from_orders(
    close: pd.DataFrame, orders: np.ndarray, cols: np.ndarray, sim: SimConfig, interval: Interval
) -> Any:
    """A cash-sharing vectorbt Portfolio from one order list of a group (``O_*`` columns, in
    execution order, ``cols`` the column of each): vectorbt's records keep that order, the
    row-major order in which a flexible group simulation records them. No call sequence is
    attached (as for vectorbt's flexible simulations: a symbol may trade more than once a bar)."""
    records = order_list_records([orders], sim.costs.concession())
    records["col"] = cols
    return _portfolio(close, records, sim, interval, cash_sharing=True)


def order_records(
    size: np.ndarray, open_: np.ndarray, fees: np.ndarray, slippage: float, row_major: bool = False
) -> np.ndarray:
    """vectorbt order records for (bars x columns) signed ``size`` (NaN: no order) filled at
    ``open_`` adjusted for slippage exactly as vectorbt adjusts it.

    Records are numbered in vectorbt's processing order: column by column, or bar by bar
    (``row_major``, as a cash-sharing group is simulated) with columns in ``size`` order.
    """
    from vectorbt.portfolio.enums import order_dt

    size = np.atleast_2d(size.T).T if size.ndim == 1 else size
    open_ = np.atleast_2d(open_.T).T if open_.ndim == 1 else open_
    fees = np.atleast_2d(fees.T).T if fees.ndim == 1 else fees
    mask = ~np.isnan(size)
    if row_major:
        idx, col = np.nonzero(mask)
    else:
        col, idx = np.nonzero(mask.T)
    signed = size[idx, col]
    price = open_[idx, col]
    records = np.empty(len(idx), dtype=order_dt)
    records["id"] = np.arange(len(idx))
    records["col"] = col
    records["idx"] = idx
    records["size"] = np.abs(signed)
    records["price"] = np.where(signed > 0, price * (1 + slippage), price * (1 - slippage))
    records["fees"] = fees[idx, col]
    records["side"] = np.where(signed > 0, 0, 1)
    return records


def portfolio_from_orders(
    close: pd.Series | pd.DataFrame,
    size: np.ndarray,
    open_: np.ndarray,
    fees: np.ndarray,
    sim: SimConfig,
    interval: Interval,
    cash_sharing: bool = False,
    call_seq: np.ndarray | None = None,
    symbol: str | None = None,
) -> Any:
    """A vectorbt Portfolio built from our orders: vectorbt then derives cash, positions,
    value, returns, trades and every metric from the order records on its own.

    (``Portfolio.from_orders`` would produce the same records — the test suite checks
    that, including that it never has to shrink or reject one of our orders — but its
    simulator costs ~8 s of numba compilation on a cold cache.)
    """
    records = order_records(size, open_, fees, sim.costs.concession(symbol), row_major=cash_sharing)
    return _portfolio(close, records, sim, interval, cash_sharing, call_seq)


def _portfolio(
    close: pd.Series | pd.DataFrame,
    records: np.ndarray,
    sim: SimConfig,
    interval: Interval,
    cash_sharing: bool = False,
    call_seq: np.ndarray | None = None,
) -> Any:
    import vectorbt as vbt
    from vectorbt.base.array_wrapper import ArrayWrapper
    from vectorbt.portfolio.enums import log_dt

    group_by = True if cash_sharing else None
    wrapper = ArrayWrapper.from_obj(close, freq=interval.freq, group_by=group_by)
    n_groups = 1 if cash_sharing else (close.shape[1] if close.ndim > 1 else 1)
    return vbt.Portfolio(
        wrapper,
        close,
        records,
        np.empty(0, dtype=log_dt),
        np.full(n_groups, float(sim.init_cash), dtype=np.float64),
        cash_sharing,
        call_seq=call_seq,
    )


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
    if all(r.orders is not None for r in recs):
        order_records = order_list_records([r.orders for r in recs], sim.costs.concession(prices.symbol))  # type: ignore[misc]
        return _portfolio(close, order_records, sim, interval)
    return portfolio_from_orders(close, size, price, fees, sim, interval, symbol=prices.symbol)


def _per_column(values: np.ndarray, cols: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(cols, weights=values, minlength=n).astype(np.float64)


def _per_column_max(values: np.ndarray, cols: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.float64)  # no record (never under water): 0 bars
    np.maximum.at(out, cols, values.astype(np.float64))
    return out


def vbt_metrics(pf: Any, interval: Interval) -> pd.DataFrame:
    """Our metrics computed by vectorbt itself, one row per portfolio column (or group).

    Value-based metrics come from vectorbt's returns accessor, annualised with the
    interval's year (vectorbt's own default year is 365 days). Trade metrics reduce
    vectorbt's position and order records with numpy: vectorbt's mapped-array reductions
    pass a function to numba, which cannot be cached and recompiles in every process.
    """
    yf = interval.year_freq

    def col(values: Any) -> np.ndarray:
        return np.atleast_1d(np.asarray(values, dtype=np.float64))

    grouped = pf.wrapper.grouper.is_grouped()
    n = pf.wrapper.get_shape_2d()[1]
    positions = pf.positions.records
    orders = pf.orders.records
    pos_col = np.zeros(len(positions), dtype=np.int64) if grouped else positions["col"]
    ord_col = np.zeros(len(orders), dtype=np.int64) if grouped else orders["col"]
    closed = positions["status"] == 1
    pnl = positions["pnl"]
    n_closed = _per_column(closed.astype(float), pos_col, n)
    wins = _per_column((closed & (pnl > 0)).astype(float), pos_col, n)
    gross_win = _per_column(np.where(closed & (pnl > 0), pnl, 0.0), pos_col, n)
    gross_loss = _per_column(np.where(closed & (pnl < 0), pnl, 0.0), pos_col, n)
    losses = _per_column((closed & (pnl < 0)).astype(float), pos_col, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        win_rate = np.where(n_closed > 0, wins / n_closed, np.nan)
        profit_factor = np.where(n_closed > 0, gross_win / np.abs(gross_loss), np.nan)
        avg_win = np.where(wins > 0, gross_win / wins, np.nan)
        avg_loss = np.where(losses > 0, gross_loss / losses, np.nan)
    # Drawdown records of the value path: duration = bars under water (vectorbt's
    # Ranges.duration: end - start, +1 while still open), recovery = end - valley.
    dd = pf.drawdowns.records
    dd_col = np.zeros(len(dd), dtype=np.int64) if grouped else dd["col"]
    duration = dd["end_idx"] - dd["start_idx"] + (dd["status"] == 0)
    recovery = dd["end_idx"] - dd["valley_idx"]
    data = {
        "total_return": col(pf.total_return()),
        "cagr": col(pf.annualized_return(year_freq=yf)),
        "sharpe": col(pf.sharpe_ratio(year_freq=yf)),
        "sortino": col(pf.sortino_ratio(year_freq=yf)),
        "max_drawdown": col(pf.max_drawdown(year_freq=yf)),
        "calmar": col(pf.calmar_ratio(year_freq=yf)),
        "win_rate": win_rate,
        "profit_factor": profit_factor,
        "n_trades": _per_column(np.ones(len(positions)), pos_col, n),
        "exposure": col(pf.position_coverage()),
        "volatility": col(pf.annualized_volatility(year_freq=yf)),
        "n_orders": _per_column(np.ones(len(orders)), ord_col, n),
        "fees": _per_column(orders["fees"], ord_col, n),
        "final_value": col(pf.final_value()),
        "max_drawdown_duration": _per_column_max(duration, dd_col, n),
        "max_recovery_time": _per_column_max(recovery, dd_col, n),
        "avg_win": avg_win,
        "avg_loss": avg_loss,
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


def equity_frame(portfolios: dict[str, Any]) -> pd.DataFrame:
    """Portfolio value per name (columns), indexed by time."""
    equity = pd.DataFrame({name: pf.value() for name, pf in portfolios.items()})
    equity.index.name = "time"
    return equity


def records_frame(portfolios: dict[str, Any], kind: str, sims: dict[str, SimRecord] | None = None) -> pd.DataFrame:
    """vectorbt's readable ``positions`` (round trips) or ``orders`` records of every
    portfolio, with a ``Symbol`` column (a cash-sharing group names its own columns).

    With the simulator's records (``sims``, by portfolio name), positions gain an ``Exit
    Reason`` (signal, stop, target, trail, time; empty while open) and orders a ``Reason``.
    """
    frames = []
    for name, pf in portfolios.items():
        records = getattr(pf, kind).records_readable
        sim = (sims or {}).get(name)
        if len(records) and sim is not None:
            records["Exit Reason" if kind == "positions" else "Reason"] = _reasons(pf, kind, sim)
        if len(records):
            if pf.wrapper.grouper.is_grouped():
                records = records.rename(columns={"Column": "Symbol"})
            else:
                records = records.drop(columns=["Column"], errors="ignore")
                records.insert(0, "Symbol", name)
            frames.append(records)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["Symbol"])


def _reasons(pf: Any, kind: str, sim: SimRecord) -> list[str]:
    """Reason of each order, or of the order that closed each position."""
    reasons = sim.reasons()
    if kind == "orders":
        return reasons
    orders = sim.orders if sim.orders is not None else np.empty((0, ORDER_LEN))
    out = []
    for rec in pf.positions.records_arr:
        if rec["status"] != 1:
            out.append("")
            continue
        closing = -1.0 if rec["direction"] == 0 else 1.0  # a long closes with a sell
        same = (orders[:, O_BAR] == rec["exit_idx"]) & (np.sign(orders[:, O_SIZE]) == closing)
        if sim.cols is not None:
            same &= sim.cols == rec["col"]
        hits = np.nonzero(same)[0]
        out.append(reasons[int(hits[-1])] if hits.size else "signal")
    return out
