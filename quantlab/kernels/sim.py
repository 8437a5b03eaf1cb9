"""The portfolio simulator: one symbol, one target array, next-bar-open execution.

Timing (the same in backtest, sweep, walk-forward and the live bridge): the strategy's
target at bar ``i`` is known at bar ``i``'s close; if it is finite and differs from the
last target acted on, the position is resized at bar ``i + 1``'s open. Sizing uses the
equity and close of bar ``i`` (what a live trader knows when deciding); the fill pays
slippage and commission and is cut to what the cash affords. Portfolio value is marked
at each close. The last bar's target is never executed (there is no next open).

``simulate_nb`` computes the metrics in one streaming pass (no per-bar arrays unless
``record`` is set), so the sweep's memory is O(bars) per thread. Metric definitions
follow vectorbt's ``Portfolio`` (returns from value, Sharpe with ddof=1, Sortino with
downside deviation, drawdown on cumulative returns, win rate and profit factor over
closed positions, coverage as exposure) so the replay agrees to 1e-9; the deliberate
difference: a zero-variance return series gives NaN Sharpe/Sortino, not +inf.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from quantlab.kernels.costs import commission_nb, fill_price_nb
from quantlab.kernels.layout import (
    C_INIT_CASH,
    M_AVG_LOSS,
    M_AVG_WIN,
    M_CAGR,
    M_CALMAR,
    M_EXPOSURE,
    M_FEES,
    M_FINAL_VALUE,
    M_MAX_DD,
    M_MAX_DD_DURATION,
    M_MAX_RECOVERY,
    M_N_ORDERS,
    M_N_TRADES,
    M_PROFIT_FACTOR,
    M_SHARPE,
    M_SORTINO,
    M_TOTAL_RETURN,
    M_VOLATILITY,
    M_WIN_RATE,
)
from quantlab.kernels.sizing import affordable_buy_nb, target_shares_nb

_REL_TOL = 1e-9
_ABS_TOL = 1e-12


@njit(cache=True)
def _snap_add(a, b):
    """a + b, snapped to exactly 0.0 when the two nearly cancel (float dust from fills)."""
    s = a + b
    if abs(s) <= max(_REL_TOL * max(abs(a), abs(b)), _ABS_TOL):
        return 0.0
    return s


@njit(cache=True)
def _bar_return(prev_value, value):
    if prev_value == 0.0:
        if value == 0.0:
            return 0.0
        return np.inf * np.sign(value)
    r = (value - prev_value) / prev_value
    if prev_value < 0.0:
        r = -r
    return r


@njit(cache=True)
def _book_closed_position(closed, pnl):
    """Add a closed position's PnL to (count, winners, gross profit, gross loss, losers)."""
    closed[0] += 1.0
    if pnl > 0.0:
        closed[1] += 1.0
        closed[2] += pnl
    elif pnl < 0.0:
        closed[3] += pnl
        closed[4] += 1.0


@njit(cache=True)
def simulate_nb(
    target,
    open_,
    close,
    vol,
    start,
    end,
    cfg,
    ann_factor,
    block_starts,
    metrics_out,
    block_sum_out,
    block_sumsq_out,
    record,
    rec_size,
    rec_fee,
    rec_value,
):
    """Simulate bars ``start..end-1`` and write the metric row.

    Args:
        target: strategy output, length >= ``end`` (NaN = no opinion, hold).
        open_, close: prices, length >= ``end``.
        vol: annualised volatility per bar for volatility-target sizing (any values
            otherwise; length >= ``end``).
        start, end: the evaluation window; the account starts flat with the initial cash
            at ``start`` and may act at ``start`` on the target of bar ``start - 1``.
        cfg: simulation config vector (:mod:`quantlab.kernels.layout`).
        ann_factor: bars per year.
        block_starts: ascending bar offsets (relative to ``start``) where CSCV blocks begin;
            empty for no block statistics.
        metrics_out: row of ``N_METRICS`` floats to fill.
        block_sum_out, block_sumsq_out: rows of ``len(block_starts)`` floats to fill.
        record: when true, ``rec_size``/``rec_fee``/``rec_value`` (length ``end - start``)
            receive the signed order size (NaN when none), its commission, and the
            portfolio value at each close.
    """
    init_cash = cfg[C_INIT_CASH]
    cash = init_cash
    position = 0.0
    last_target = np.nan
    prev_value = init_cash
    n = end - start

    n_blocks = block_starts.shape[0]
    for b in range(n_blocks):
        block_sum_out[b] = 0.0
        block_sumsq_out[b] = 0.0
    block = -1
    next_block_start = block_starts[0] if n_blocks > 0 else n + 1

    sum_r = 0.0
    sum_r2 = 0.0
    sum_down2 = 0.0
    cum = 1.0
    peak = np.nan
    max_dd = 0.0
    bars_in_market = 0
    n_orders = 0
    total_fees = 0.0
    pos_flow = 0.0  # cash flow of the open position (for its PnL when it closes)
    n_positions = 0
    closed = np.zeros(5)  # closed positions: count, winners, gross profit, gross loss, losers
    # Drawdown spells as vectorbt's drawdown records see them, on the value itself (exact:
    # the compounded level can miss a recovery to the same value by an ulp): under water
    # while value < peak, recovered at the first value >= peak; valley = first lowest value.
    in_dd = False
    vpeak = np.nan
    valley = 0.0
    valley_k = 0
    under = 0
    max_under = 0
    max_recovery = 0

    for j in range(start, end):
        k = j - start
        order_size = np.nan
        order_fee = 0.0
        if j >= 1:
            t = target[j - 1]
            if not np.isnan(t) and t != last_target:
                ref = close[j - 1]
                equity = cash + position * ref
                desired = target_shares_nb(t, equity, ref, vol[j - 1], cfg)
                if not np.isnan(desired):
                    last_target = t
                    delta = desired - position
                    if delta > 0.0:
                        delta = affordable_buy_nb(delta, cash, open_[j], cfg)
                    if delta != 0.0:
                        is_buy = delta > 0.0
                        adj = fill_price_nb(open_[j], is_buy, cfg)
                        qty = abs(delta)
                        fee = commission_nb(qty, adj, cfg)
                        if is_buy:
                            flow = -(qty * adj + fee)
                        else:
                            flow = qty * adj - fee
                        if is_buy or flow >= 0.0:
                            # Position bookkeeping for win rate / profit factor.
                            new_position = _snap_add(position, delta)
                            crosses = (position > 0.0 and new_position < 0.0) or (
                                position < 0.0 and new_position > 0.0
                            )
                            if crosses:
                                close_part = abs(position) / qty
                                close_fee = fee * close_part
                                if is_buy:
                                    close_flow = -(abs(position) * adj + close_fee)
                                else:
                                    close_flow = abs(position) * adj - close_fee
                                _book_closed_position(closed, pos_flow + close_flow)
                                pos_flow = flow - close_flow
                                n_positions += 1
                            else:
                                if position == 0.0:
                                    n_positions += 1
                                    pos_flow = 0.0
                                pos_flow += flow
                                if new_position == 0.0:
                                    _book_closed_position(closed, pos_flow)
                                    pos_flow = 0.0
                            cash = _snap_add(cash, flow)
                            position = new_position
                            n_orders += 1
                            total_fees += fee
                            order_size = delta
                            order_fee = fee

        value = cash + position * close[j]
        r = _bar_return(prev_value, value)
        prev_value = value
        r2 = r * r
        sum_r += r
        sum_r2 += r2
        if r < 0.0:
            sum_down2 += r2
        cum *= r + 1.0
        level = cum * 100.0
        if not (level <= peak):
            peak = level
        elif level < peak * (1.0 + max_dd):
            # Divide only when this bar can deepen the drawdown.
            dd = level / peak - 1.0
            if dd < max_dd:
                max_dd = dd
        if in_dd:
            if value >= vpeak:
                in_dd = False
                vpeak = value
                if k - valley_k > max_recovery:
                    max_recovery = k - valley_k
            else:
                under += 1
                if value < valley:
                    valley = value
                    valley_k = k
        elif np.isnan(vpeak) or value >= vpeak:
            vpeak = value
        else:
            in_dd = True
            valley = value
            valley_k = k
            under = 1
        if under > max_under:
            max_under = under
        if position != 0.0:
            bars_in_market += 1
        if k >= next_block_start:
            block += 1
            next_block_start = block_starts[block + 1] if block + 1 < n_blocks else n + 1
        if block >= 0:
            block_sum_out[block] += r
            block_sumsq_out[block] += r * r
        if record:
            rec_size[k] = order_size
            rec_fee[k] = order_fee
            rec_value[k] = value

    bad = not np.isfinite(sum_r2)
    final_value = prev_value
    metrics_out[M_FINAL_VALUE] = final_value
    metrics_out[M_TOTAL_RETURN] = (final_value - init_cash) / init_cash
    metrics_out[M_N_ORDERS] = n_orders
    metrics_out[M_FEES] = total_fees
    metrics_out[M_N_TRADES] = n_positions
    metrics_out[M_EXPOSURE] = bars_in_market / n if n > 0 else np.nan
    if in_dd and (n - 1) - valley_k > max_recovery:
        max_recovery = (n - 1) - valley_k  # an open drawdown: valley to the last bar so far
    metrics_out[M_MAX_DD_DURATION] = max_under
    metrics_out[M_MAX_RECOVERY] = max_recovery
    n_closed, n_wins, gross_win, gross_loss = closed[0], closed[1], closed[2], closed[3]
    metrics_out[M_AVG_WIN] = gross_win / n_wins if n_wins > 0 else np.nan
    metrics_out[M_AVG_LOSS] = gross_loss / closed[4] if closed[4] > 0 else np.nan
    metrics_out[M_WIN_RATE] = n_wins / n_closed if n_closed > 0 else np.nan
    if n_closed > 0:
        metrics_out[M_PROFIT_FACTOR] = gross_win / abs(gross_loss) if gross_loss != 0.0 else (
            np.inf if gross_win > 0.0 else np.nan
        )
    else:
        metrics_out[M_PROFIT_FACTOR] = np.nan

    if bad or n < 2:
        metrics_out[M_CAGR] = np.nan
        metrics_out[M_SHARPE] = np.nan
        metrics_out[M_SORTINO] = np.nan
        metrics_out[M_MAX_DD] = np.nan if bad else max_dd
        metrics_out[M_CALMAR] = np.nan
        metrics_out[M_VOLATILITY] = np.nan
        return
    mean = sum_r / n
    var = (sum_r2 - n * mean * mean) / (n - 1)
    std = np.sqrt(var) if var > 0.0 else 0.0
    sqrt_ann = np.sqrt(ann_factor)
    metrics_out[M_VOLATILITY] = std * sqrt_ann
    metrics_out[M_SHARPE] = mean / std * sqrt_ann if std > 0.0 else np.nan
    down = np.sqrt(sum_down2 / n) * sqrt_ann
    metrics_out[M_SORTINO] = mean * ann_factor / down if down > 0.0 else np.nan
    cagr = cum ** (ann_factor / n) - 1.0
    metrics_out[M_CAGR] = cagr
    metrics_out[M_MAX_DD] = max_dd
    metrics_out[M_CALMAR] = cagr / abs(max_dd) if max_dd != 0.0 else np.nan
