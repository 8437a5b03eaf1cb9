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

from quantlab.kernels.costs import fill_price_nb, order_fee_nb
from quantlab.kernels.layout import (
    C_BORROW,
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
    O_BAR,
    O_FEE,
    O_PRICE,
    O_REASON,
    O_SIZE,
    R_SIGNAL,
    R_STOP,
    R_TARGET,
    R_TIME,
    R_TRAIL,
    TICK,
    X_ENTRY_LIMIT,
    X_LIMIT_EXPIRY,
    X_LIMIT_TICKS,
    X_MAX_HOLD,
    X_SL_STOP,
    X_SL_TRAIL,
    X_TP_STOP,
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


@njit(cache=True, inline="always")
def _fold_return_nb(r, sum_r, sum_r2, sum_down2, cum, peak, max_dd):
    """Fold a bar's return into the return sums and the drawdown of the compounded level."""
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
    return sum_r, sum_r2, sum_down2, cum, peak, max_dd


@njit(cache=True, inline="always")
def _fold_spell_nb(value, k, in_dd, vpeak, valley, valley_k, under, max_under, max_recovery):
    """Fold a closing value into the drawdown spells, as vectorbt's drawdown records see
    them, on the value itself (exact: the compounded level can miss a recovery to the same
    value by an ulp): under water while value < peak, recovered at the first value >= peak;
    valley = the first lowest value."""
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
    return in_dd, vpeak, valley, valley_k, under, max_under, max_recovery


@njit(cache=True)
def _next_block_nb(block, bsum, bsq, n, block_starts, block_sum_out, block_sumsq_out):
    """Write out the CSCV block that ended (if any) and start the next one: returns
    (block, next_block_start, bsum, bsq). Called only at block boundaries, so the arrays
    it takes cost no reference counting per bar, and the running sums live in registers
    (summing into the output array made every bar wait on the previous bar's store)."""
    if block >= 0:
        block_sum_out[block] = bsum
        block_sumsq_out[block] = bsq
    block += 1
    return block, block_starts[block + 1] if block + 1 < block_starts.shape[0] else n + 1, 0.0, 0.0


@njit(cache=True)
def _start_blocks_nb(block_starts, n, block_sum_out, block_sumsq_out):
    """Zeroed CSCV block outputs and the block state before the first bar:
    (block, next_block_start, bsum, bsq)."""
    for b in range(block_starts.shape[0]):
        block_sum_out[b] = 0.0
        block_sumsq_out[b] = 0.0
    return -1, block_starts[0] if block_starts.shape[0] > 0 else n + 1, 0.0, 0.0


@njit(cache=True)
def _finish_nb(
    metrics_out,
    n,
    init_cash,
    ann_factor,
    final_value,
    returns,
    spells,
    n_orders,
    total_fees,
    n_positions,
    bars_in_market,
    closed,
):
    """Write the metric row from the final state (``returns`` and ``spells``: the tuples
    :func:`_fold_return_nb` and :func:`_fold_spell_nb` return)."""
    sum_r, sum_r2, sum_down2, cum, _, max_dd = returns
    in_dd, _, _, valley_k, _, max_under, max_recovery = spells
    bad = not np.isfinite(sum_r2)
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
        metrics_out[M_PROFIT_FACTOR] = (
            gross_win / abs(gross_loss) if gross_loss != 0.0 else (np.inf if gross_win > 0.0 else np.nan)
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


@njit(cache=True)
def _fill_nb(delta, raw, force, cash, position, pos_flow, n_positions, closed, cfg):
    """Fill ``delta`` shares at ``raw`` (before slippage and half-spread) and book it.

    Returns (cash, position, pos_flow, n_positions, fee, filled). A sell whose fees exceed
    its proceeds is skipped unless ``force`` (protective exits always close).
    """
    is_buy = delta > 0.0
    adj = fill_price_nb(raw, is_buy, cfg)
    qty = abs(delta)
    fee = order_fee_nb(qty, adj, is_buy, cfg)
    if is_buy:
        flow = -(qty * adj + fee)
    else:
        flow = qty * adj - fee
    if not (is_buy or flow >= 0.0 or force):
        return cash, position, pos_flow, n_positions, 0.0, False
    # Position bookkeeping for win rate / profit factor.
    new_position = _snap_add(position, delta)
    if force and abs(new_position) <= _ABS_TOL:
        new_position = 0.0
    crosses = (position > 0.0 and new_position < 0.0) or (position < 0.0 and new_position > 0.0)
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
    return _snap_add(cash, flow), new_position, pos_flow, n_positions, fee, True


@njit(cache=True)
def _record_order(rec, n_rec, k, size, raw, fee, reason):
    if n_rec < rec.shape[0]:
        rec[n_rec, O_BAR] = k
        rec[n_rec, O_SIZE] = size
        rec[n_rec, O_PRICE] = raw
        rec[n_rec, O_FEE] = fee
        rec[n_rec, O_REASON] = reason
    return n_rec + 1


@njit(cache=True)
def stop_level_nb(long, entry_price, mark, sl_stop, sl_trail):
    """The binding stop of a position and its reason: the fixed stop from the entry price,
    the trailing stop from the high-water mark (low-water for a short), whichever is
    nearer the price. (NaN, R_STOP) when neither rule is on."""
    level = np.nan
    reason = R_STOP
    if long:
        if not np.isnan(sl_stop):
            level = entry_price * (1.0 - sl_stop)
        if not np.isnan(sl_trail):
            trail = mark * (1.0 - sl_trail)
            if np.isnan(level) or trail > level:
                level = trail
                reason = R_TRAIL
    else:
        if not np.isnan(sl_stop):
            level = entry_price * (1.0 + sl_stop)
        if not np.isnan(sl_trail):
            trail = mark * (1.0 + sl_trail)
            if np.isnan(level) or trail < level:
                level = trail
                reason = R_TRAIL
    return level, reason


@njit(cache=True)
def target_level_nb(long, entry_price, tp_stop):
    """Take-profit price (NaN when off)."""
    if np.isnan(tp_stop):
        return np.nan
    return entry_price * (1.0 + tp_stop) if long else entry_price * (1.0 - tp_stop)


@njit(cache=True)
def open_exit_nb(long, o, stop, stop_reason, tp_level, held, max_hold):
    """Reason an open position closes at this bar's open (-1.0: it does not): a stop or
    target the open gaps through (the stop first), else ``max_hold`` reached."""
    if long:
        if o <= stop:
            return stop_reason
        if o >= tp_level:
            return R_TARGET
    else:
        if o >= stop:
            return stop_reason
        if o <= tp_level:
            return R_TARGET
    if held >= max_hold:
        return R_TIME
    return -1.0


@njit(cache=True)
def intrabar_exit_nb(long, low, high, stop, stop_reason, tp_level):
    """(reason, price) of an intrabar exit; the stop wins when both are touched
    (the path inside the bar is unknown: the pessimistic order). Reason -1.0: none."""
    if long:
        if low <= stop:
            return stop_reason, stop
        if high >= tp_level:
            return R_TARGET, tp_level
    else:
        if high >= stop:
            return stop_reason, stop
        if low <= tp_level:
            return R_TARGET, tp_level
    return -1.0, np.nan


@njit(cache=True)
def limit_fill_nb(long, o, low, high, limit, ticks):
    """Fill price of a working limit entry in this bar (NaN: no fill). A buy fills when the
    low trades ``ticks`` ticks through the limit, at the limit or a better open."""
    if long:
        if low <= limit - ticks * TICK:
            return min(o, limit)
    else:
        if high >= limit + ticks * TICK:
            return max(o, limit)
    return np.nan


@njit(cache=True)
def _exit_rules_nb(row):
    """(sl_stop, tp_stop, sl_trail, max_hold, entry_limit, expiry, ticks) with defaults for off rules."""
    max_hold = row[X_MAX_HOLD] if not np.isnan(row[X_MAX_HOLD]) else np.inf
    expiry = row[X_LIMIT_EXPIRY] if not np.isnan(row[X_LIMIT_EXPIRY]) else 1.0
    ticks = row[X_LIMIT_TICKS] if not np.isnan(row[X_LIMIT_TICKS]) else 0.0
    return row[X_SL_STOP], row[X_TP_STOP], row[X_SL_TRAIL], max_hold, row[X_ENTRY_LIMIT], expiry, ticks


@njit(cache=True)
def _next_switch_nb(ex, j, end):
    """First bar after ``j`` (at most ``end``) whose exit rules differ from bar ``j``'s."""
    for r in range(j + 1, end):
        for c in range(ex.shape[1]):
            a = ex[r, c]
            b = ex[j, c]
            if a != b and not (np.isnan(a) and np.isnan(b)):
                return r
    return end


@njit(cache=True)
def simulate_nb(
    target,
    open_,
    high,
    low,
    close,
    vol,
    ex,
    start,
    end,
    cfg,
    ann_factor,
    block_starts,
    metrics_out,
    block_sum_out,
    block_sumsq_out,
    record,
    rec_orders,
    rec_value,
):
    """Simulate bars ``start..end-1`` and write the metric row.

    Args:
        target: strategy output, length >= ``end`` (NaN = no opinion, hold).
        open_, high, low, close: prices, length >= ``end`` (high/low only read by exits).
        vol: annualised volatility per bar for volatility-target sizing (any values
            otherwise; length >= ``end``).
        ex: exit rules, (1, EXIT_LEN) for the whole run or (bars, EXIT_LEN) when they
            switch per bar (walk-forward folds); NaN = rule off. The fill rules are in
            docs/research.md ("Exit and entry rules").
        start, end: the evaluation window; the account starts flat with the initial cash
            at ``start`` and may act at ``start`` on the target of bar ``start - 1``.
        cfg: simulation config vector (:mod:`quantlab.kernels.layout`).
        ann_factor: bars per year.
        block_starts: ascending bar offsets (relative to ``start``) where CSCV blocks begin;
            empty for no block statistics.
        metrics_out: row of ``N_METRICS`` floats to fill.
        block_sum_out, block_sumsq_out: rows of ``len(block_starts)`` floats to fill.
        record: when true, ``rec_orders`` (at least ``MAX_ORDERS_PER_BAR * (end - start)``
            rows of ``ORDER_LEN``) receives every order and ``rec_value`` (length
            ``end - start``) the portfolio value at each close.

    Returns:
        The number of orders filled.
    """
    on = cfg[C_BORROW] > 0.0
    for r in range(ex.shape[0]):
        for c in range(X_LIMIT_EXPIRY):  # expiry and ticks alone change nothing
            if not np.isnan(ex[r, c]):
                on = True
    # Without rules (or borrow) the plain loop runs: the sweep's hot path keeps its speed.
    if on:
        return _simulate_exits_nb(
            target,
            open_,
            high,
            low,
            close,
            vol,
            ex,
            start,
            end,
            cfg,
            ann_factor,
            block_starts,
            metrics_out,
            block_sum_out,
            block_sumsq_out,
            record,
            rec_orders,
            rec_value,
        )
    return _simulate_plain_nb(
        target,
        open_,
        high,
        low,
        close,
        vol,
        ex,
        start,
        end,
        cfg,
        ann_factor,
        block_starts,
        metrics_out,
        block_sum_out,
        block_sumsq_out,
        record,
        rec_orders,
        rec_value,
    )


@njit(cache=True)
def _simulate_exits_nb(
    target,
    open_,
    high,
    low,
    close,
    vol,
    ex,
    start,
    end,
    cfg,
    ann_factor,
    block_starts,
    metrics_out,
    block_sum_out,
    block_sumsq_out,
    record,
    rec_orders,
    rec_value,
):
    """:func:`simulate_nb` with exit rules (or borrow) on."""
    has_exits = True
    init_cash = cfg[C_INIT_CASH]
    borrow = cfg[C_BORROW] / ann_factor
    cash = init_cash
    position = 0.0
    last_target = np.nan
    n = end - start

    n_ex = ex.shape[0]
    sl_stop, tp_stop, sl_trail, max_hold, entry_limit, expiry, ticks = _exit_rules_nb(ex[0])
    entry_price = np.nan
    entry_bar = 0
    mark = np.nan  # high-water mark (long) / low-water mark (short) since the entry
    stop = np.nan  # the position's binding stop and target, updated when they can move
    stop_reason = R_STOP
    tp_level = np.nan
    protect_from = 0  # first bar whose range is checked against the stop / target
    blocked = 0.0  # sign of the last protective exit: same-sign targets wait for a fresh entry
    lim_active = False
    lim_qty = 0.0
    lim_price = 0.0
    lim_until = 0
    n_rec = 0

    prev_value = init_cash
    sum_r, sum_r2, sum_down2, cum, peak, max_dd = 0.0, 0.0, 0.0, 1.0, np.nan, 0.0
    in_dd, vpeak, valley, valley_k, under, max_under, max_recovery = False, np.nan, 0.0, 0, 0, 0, 0
    block, next_block_start, _, _ = _start_blocks_nb(block_starts, n, block_sum_out, block_sumsq_out)
    bars_in_market = 0
    n_orders = 0
    total_fees = 0.0
    pos_flow = 0.0  # cash flow of the open position (for its PnL when it closes)
    n_positions = 0
    closed = np.zeros(5)  # closed positions: count, winners, gross profit, gross loss, losers

    # Rules are constant between switches (walk-forward folds), so the bars run in segments
    # of constant rules: inside one the rules are loop invariants the compiler can hoist
    # (reading them per bar cost ~11% of the exits loop even when they never switch).
    seg_start = start
    while seg_start < end:
        seg_end = end
        if n_ex > 1:
            seg_end = _next_switch_nb(ex, seg_start, end)
            sl_stop, tp_stop, sl_trail, max_hold, entry_limit, expiry, ticks = _exit_rules_nb(ex[seg_start])
            if position != 0.0:
                stop, stop_reason = stop_level_nb(position > 0.0, entry_price, mark, sl_stop, sl_trail)
                tp_level = target_level_nb(position > 0.0, entry_price, tp_stop)
        for j in range(seg_start, seg_end):
            k = j - start
            if has_exits and position != 0.0:
                # 1. At the open: a stop or target the open gaps through, or max_hold reached.
                long = position > 0.0
                reason = open_exit_nb(long, open_[j], stop, stop_reason, tp_level, j - entry_bar, max_hold)
                if reason >= 0.0:
                    size = -position
                    cash, position, pos_flow, n_positions, fee, ok = _fill_nb(
                        size, open_[j], True, cash, position, pos_flow, n_positions, closed, cfg
                    )
                    n_orders += 1
                    total_fees += fee
                    blocked = 1.0 if long else -1.0
                    if record:
                        n_rec = _record_order(rec_orders, n_rec, k, size, open_[j], fee, reason)
            if j >= 1:
                t = target[j - 1]
                if not np.isnan(t) and t != last_target:
                    if blocked != 0.0 and np.sign(t) == blocked:
                        last_target = t  # still on the side just stopped out: no re-entry
                    else:
                        blocked = 0.0
                        lim_active = False  # a new target cancels a working limit entry
                        ref = close[j - 1]
                        # The equity marked at the decision close (cash + position x ref), also
                        # when a protective exit filled first at this open: the bridge sizes the
                        # order then (and cancels the child when the strategy exits first); only
                        # the cash check below sees the exit.
                        equity = prev_value
                        desired = target_shares_nb(t, equity, ref, vol[j - 1], cfg)
                        if not np.isnan(desired):
                            last_target = t
                            was = position
                            opens = desired != 0.0 and (was == 0.0 or (desired > 0.0) != (was > 0.0))
                            if has_exits and not np.isnan(entry_limit) and opens:
                                if was != 0.0:  # the old side closes at the open, the new one waits
                                    cash, position, pos_flow, n_positions, fee, ok = _fill_nb(
                                        -was, open_[j], True, cash, position, pos_flow, n_positions, closed, cfg
                                    )
                                    n_orders += 1
                                    total_fees += fee
                                    if record:
                                        n_rec = _record_order(rec_orders, n_rec, k, -was, open_[j], fee, R_SIGNAL)
                                lim_active = True
                                lim_qty = desired
                                lim_price = ref * (1.0 - entry_limit) if desired > 0.0 else ref * (1.0 + entry_limit)
                                lim_until = j + int(expiry) - 1
                            else:
                                delta = desired - position
                                if delta > 0.0:
                                    delta = affordable_buy_nb(delta, cash, open_[j], cfg)
                                if delta != 0.0:
                                    cash, position, pos_flow, n_positions, fee, ok = _fill_nb(
                                        delta, open_[j], False, cash, position, pos_flow, n_positions, closed, cfg
                                    )
                                    if ok:
                                        n_orders += 1
                                        total_fees += fee
                                        if record:
                                            n_rec = _record_order(rec_orders, n_rec, k, delta, open_[j], fee, R_SIGNAL)
                                        if position != 0.0 and (was == 0.0 or (position > 0.0) != (was > 0.0)):
                                            entry_price = open_[j]
                                            entry_bar = j
                                            mark = open_[j]
                                            protect_from = j
                                            stop, stop_reason = stop_level_nb(
                                                position > 0.0, entry_price, mark, sl_stop, sl_trail
                                            )
                                            tp_level = target_level_nb(position > 0.0, entry_price, tp_stop)
            if has_exits:
                if lim_active:
                    if j > lim_until:
                        lim_active = False
                    else:
                        px = limit_fill_nb(lim_qty > 0.0, open_[j], low[j], high[j], lim_price, ticks)
                        if not np.isnan(px):
                            lim_active = False
                            delta = lim_qty
                            if delta > 0.0:
                                delta = affordable_buy_nb(delta, cash, px, cfg)
                            if delta != 0.0:
                                cash, position, pos_flow, n_positions, fee, ok = _fill_nb(
                                    delta, px, False, cash, position, pos_flow, n_positions, closed, cfg
                                )
                                if ok:
                                    n_orders += 1
                                    total_fees += fee
                                    if record:
                                        n_rec = _record_order(rec_orders, n_rec, k, delta, px, fee, R_SIGNAL)
                                    entry_price = px
                                    entry_bar = j
                                    mark = px
                                    stop, stop_reason = stop_level_nb(position > 0.0, px, px, sl_stop, sl_trail)
                                    tp_level = target_level_nb(position > 0.0, px, tp_stop)
                                    # an intrabar fill: the path after it is unknown, checks start next bar
                                    protect_from = j if px == open_[j] else j + 1
                if position != 0.0:
                    long = position > 0.0
                    if j >= protect_from:
                        # 2. During the bar: stop (or trail) before target.
                        reason, px = intrabar_exit_nb(long, low[j], high[j], stop, stop_reason, tp_level)
                        if reason >= 0.0:
                            size = -position
                            cash, position, pos_flow, n_positions, fee, ok = _fill_nb(
                                size, px, True, cash, position, pos_flow, n_positions, closed, cfg
                            )
                            n_orders += 1
                            total_fees += fee
                            blocked = 1.0 if long else -1.0
                            if record:
                                n_rec = _record_order(rec_orders, n_rec, k, size, px, fee, reason)
                    if position != 0.0 and j > entry_bar:
                        if (long and high[j] > mark) or (not long and low[j] < mark):
                            mark = high[j] if long else low[j]
                            if not np.isnan(sl_trail):
                                stop, stop_reason = stop_level_nb(long, entry_price, mark, sl_stop, sl_trail)

            if has_exits and borrow > 0.0 and position < 0.0:
                charge = -position * close[j] * borrow
                cash -= charge
                pos_flow -= charge
                total_fees += charge
            value = cash + position * close[j]
            r = _bar_return(prev_value, value)
            prev_value = value
            sum_r, sum_r2, sum_down2, cum, peak, max_dd = _fold_return_nb(
                r, sum_r, sum_r2, sum_down2, cum, peak, max_dd
            )
            in_dd, vpeak, valley, valley_k, under, max_under, max_recovery = _fold_spell_nb(
                value, k, in_dd, vpeak, valley, valley_k, under, max_under, max_recovery
            )
            # Block sums go straight to the output here: this loop has no registers to spare
            # (running them in locals, as the plain loop does, cost it ~15%).
            if k >= next_block_start:
                block += 1
                next_block_start = block_starts[block + 1] if block + 1 < block_starts.shape[0] else n + 1
            if block >= 0:
                block_sum_out[block] += r
                block_sumsq_out[block] += r * r
            if position != 0.0:
                bars_in_market += 1
            if record:
                rec_value[k] = value

        seg_start = seg_end

    _finish_nb(
        metrics_out,
        n,
        init_cash,
        ann_factor,
        prev_value,
        (sum_r, sum_r2, sum_down2, cum, peak, max_dd),
        (in_dd, vpeak, valley, valley_k, under, max_under, max_recovery),
        n_orders,
        total_fees,
        n_positions,
        bars_in_market,
        closed,
    )
    return n_orders


@njit(cache=True)
def _simulate_plain_nb(
    target,
    open_,
    high,
    low,
    close,
    vol,
    ex,
    start,
    end,
    cfg,
    ann_factor,
    block_starts,
    metrics_out,
    block_sum_out,
    block_sumsq_out,
    record,
    rec_orders,
    rec_value,
):
    """:func:`simulate_nb` without exit rules or borrow: the sweep's hot path, kept free of
    their state and branches (a shared body with them compiled out measured ~8% slower).
    The per-bar metric block is shared with the exits loop through inlined helpers; the fill
    is written out here because calling :func:`_fill_nb` (which the exits loop uses) cost
    the plain loop ~7% even when inlined (interleaved A/B, benchmarks/ab_sweep.py)."""
    init_cash = cfg[C_INIT_CASH]
    cash = init_cash
    position = 0.0
    last_target = np.nan
    n = end - start
    n_rec = 0

    prev_value = init_cash
    sum_r, sum_r2, sum_down2, cum, peak, max_dd = 0.0, 0.0, 0.0, 1.0, np.nan, 0.0
    in_dd, vpeak, valley, valley_k, under, max_under, max_recovery = False, np.nan, 0.0, 0, 0, 0, 0
    block, next_block_start, bsum, bsq = _start_blocks_nb(block_starts, n, block_sum_out, block_sumsq_out)
    bars_in_market = 0
    n_orders = 0
    total_fees = 0.0
    pos_flow = 0.0  # cash flow of the open position (for its PnL when it closes)
    n_positions = 0
    closed = np.zeros(5)  # closed positions: count, winners, gross profit, gross loss, losers

    for j in range(start, end):
        k = j - start
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
                        fee = order_fee_nb(qty, adj, is_buy, cfg)
                        if is_buy:
                            flow = -(qty * adj + fee)
                        else:
                            flow = qty * adj - fee
                        if is_buy or flow >= 0.0:
                            # Position bookkeeping for win rate / profit factor.
                            new_position = _snap_add(position, delta)
                            crosses = (position > 0.0 and new_position < 0.0) or (position < 0.0 and new_position > 0.0)
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
                            if record:
                                n_rec = _record_order(rec_orders, n_rec, k, delta, open_[j], fee, R_SIGNAL)

        value = cash + position * close[j]
        r = _bar_return(prev_value, value)
        prev_value = value
        sum_r, sum_r2, sum_down2, cum, peak, max_dd = _fold_return_nb(r, sum_r, sum_r2, sum_down2, cum, peak, max_dd)
        in_dd, vpeak, valley, valley_k, under, max_under, max_recovery = _fold_spell_nb(
            value, k, in_dd, vpeak, valley, valley_k, under, max_under, max_recovery
        )
        if k >= next_block_start:
            block, next_block_start, bsum, bsq = _next_block_nb(
                block, bsum, bsq, n, block_starts, block_sum_out, block_sumsq_out
            )
        bsum += r
        bsq += r * r
        if position != 0.0:
            bars_in_market += 1
        if record:
            rec_value[k] = value

    if block >= 0:
        block_sum_out[block] = bsum
        block_sumsq_out[block] = bsq
    _finish_nb(
        metrics_out,
        n,
        init_cash,
        ann_factor,
        prev_value,
        (sum_r, sum_r2, sum_down2, cum, peak, max_dd),
        (in_dd, vpeak, valley, valley_k, under, max_under, max_recovery),
        n_orders,
        total_fees,
        n_positions,
        bars_in_market,
        closed,
    )
    return n_orders
