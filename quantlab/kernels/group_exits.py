"""A shared-cash group with exit and entry rules (``--shared-cash`` with ``sl_stop`` ...).

The per-symbol fill rules are those of :mod:`quantlab.kernels.sim`'s exits loop, through its
own helpers (levels, gap and intrabar checks, limit fills, the fill itself); what this module
adds is the order of events across symbols at one timestamp, and so who gets the cash:

1. at the open, every protective exit the open gaps through and every ``max_hold`` exit, in
   column order (exits always close, never cut by cash);
2. the strategies' orders at the open, sized from the group's equity at the decision close
   (before step 1's fills, as docs/research.md's timing rule says): reductions first, then
   increases cut to the cash left, which includes what step 1 freed;
3. working entry limits that the bar reaches, in column order, cut to the cash left;
4. intrabar stops and targets, in column order; then the trailing marks.

The order of events inside a bar across symbols is unknown, so cash an intrabar exit frees
(step 4) is never spent by a limit entry of the same bar (step 3): the pessimistic order.
docs/research.md ("Exit rules in a shared-cash group") states the same rules.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from quantlab.kernels.layout import (
    C_INIT_CASH,
    C_SIZING,
    O_BAR,
    O_FEE,
    O_PRICE,
    O_REASON,
    O_SIZE,
    R_SIGNAL,
    R_STOP,
    SIZE_ALL,
    SIZE_VOL_TARGET,
)
from quantlab.kernels.sim import (
    _exit_rules_nb,
    _fill_nb,
    intrabar_exit_nb,
    limit_fill_nb,
    open_exit_nb,
    stop_level_nb,
    target_level_nb,
)
from quantlab.kernels.sizing import affordable_buy_nb, target_shares_nb


@njit(cache=True)
def _record_nb(rec, rec_col, n_rec, j, c, size, raw, fee, reason):
    if n_rec < rec.shape[0]:
        rec[n_rec, O_BAR] = j
        rec[n_rec, O_SIZE] = size
        rec[n_rec, O_PRICE] = raw
        rec[n_rec, O_FEE] = fee
        rec[n_rec, O_REASON] = reason
        rec_col[n_rec] = c
    return n_rec + 1


@njit(cache=True)
def simulate_group_exits_nb(target, open_, high, low, close, vol, ex, cfg, rec_orders, rec_col, rec_value):
    """Simulate an (n bars x m symbols) shared-cash group with exit rules ``ex`` (one
    ``EXIT_LEN`` row for every symbol; NaN = rule off).

    ``rec_orders`` (at least ``MAX_ORDERS_PER_BAR * n * m`` rows of ``ORDER_LEN``) receives
    every order in execution order and ``rec_col`` its column; ``rec_value`` (n,) the group
    value at each close. Returns the number of orders.
    """
    n, m = close.shape
    sl_stop, tp_stop, sl_trail, max_hold, entry_limit, expiry, ticks = _exit_rules_nb(ex)
    limits = not np.isnan(entry_limit)
    split = cfg[C_SIZING] == SIZE_ALL or cfg[C_SIZING] == SIZE_VOL_TARGET
    cash = cfg[C_INIT_CASH]
    position = np.zeros(m)
    last_target = np.full(m, np.nan)
    desired = np.full(m, np.nan)
    close_first = np.zeros(m, dtype=np.bool_)  # a limit reversal's old side closes at the open
    entry_price = np.full(m, np.nan)
    entry_bar = np.zeros(m, dtype=np.int64)
    mark = np.full(m, np.nan)
    stop = np.full(m, np.nan)
    stop_reason = np.full(m, R_STOP)
    tp_level = np.full(m, np.nan)
    protect_from = np.zeros(m, dtype=np.int64)
    blocked = np.zeros(m)
    lim_active = np.zeros(m, dtype=np.bool_)
    lim_qty = np.zeros(m)
    lim_price = np.zeros(m)
    lim_until = np.zeros(m, dtype=np.int64)
    # _fill_nb's round-trip bookkeeping, per column (unused here: vectorbt does the trades)
    pos_flow = np.zeros(m)
    n_positions = np.zeros(m, dtype=np.int64)
    closed = np.zeros((m, 5))
    n_rec = 0
    for j in range(n):
        equity = cash
        if j >= 1:
            for c in range(m):
                equity += position[c] * close[j - 1, c]
        budget = equity / m if split else equity
        # 1. At the open: gap exits and time exits, column order.
        for c in range(m):
            if position[c] == 0.0:
                continue
            long = position[c] > 0.0
            reason = open_exit_nb(long, open_[j, c], stop[c], stop_reason[c], tp_level[c], j - entry_bar[c], max_hold)
            if reason >= 0.0:
                size = -position[c]
                cash, position[c], pos_flow[c], n_positions[c], fee, ok = _fill_nb(
                    size, open_[j, c], True, cash, position[c], pos_flow[c], n_positions[c], closed[c], cfg
                )
                blocked[c] = 1.0 if long else -1.0
                n_rec = _record_nb(rec_orders, rec_col, n_rec, j, c, size, open_[j, c], fee, reason)
        # 2. The strategies' orders at the open: decide every column, then sells, then buys.
        for c in range(m):
            desired[c] = np.nan
            close_first[c] = False
            if j < 1:
                continue
            t = target[j - 1, c]
            if np.isnan(t) or t == last_target[c]:
                continue
            if blocked[c] != 0.0 and np.sign(t) == blocked[c]:
                last_target[c] = t  # still on the side just stopped out: no re-entry
                continue
            blocked[c] = 0.0
            lim_active[c] = False  # a new target cancels a working limit entry
            ref = close[j - 1, c]
            d = target_shares_nb(t, budget, ref, vol[j - 1, c], cfg)
            if np.isnan(d):
                continue
            last_target[c] = t
            was = position[c]
            opens = d != 0.0 and (was == 0.0 or (d > 0.0) != (was > 0.0))
            if limits and opens:
                close_first[c] = was != 0.0
                lim_active[c] = True
                lim_qty[c] = d
                lim_price[c] = ref * (1.0 - entry_limit) if d > 0.0 else ref * (1.0 + entry_limit)
                lim_until[c] = j + int(expiry) - 1
            else:
                desired[c] = d
        for phase in range(2):  # 0: sells, 1: buys
            for c in range(m):
                was = position[c]
                if close_first[c]:
                    if (phase == 0) != (was > 0.0):
                        continue
                    close_first[c] = False
                    cash, position[c], pos_flow[c], n_positions[c], fee, ok = _fill_nb(
                        -was, open_[j, c], True, cash, was, pos_flow[c], n_positions[c], closed[c], cfg
                    )
                    n_rec = _record_nb(rec_orders, rec_col, n_rec, j, c, -was, open_[j, c], fee, R_SIGNAL)
                    continue
                if np.isnan(desired[c]):
                    continue
                delta = desired[c] - was
                if (phase == 0 and delta >= 0.0) or (phase == 1 and delta <= 0.0):
                    continue
                if delta > 0.0:
                    delta = affordable_buy_nb(delta, cash, open_[j, c], cfg)
                    if delta == 0.0:
                        continue
                cash, position[c], pos_flow[c], n_positions[c], fee, ok = _fill_nb(
                    delta, open_[j, c], False, cash, was, pos_flow[c], n_positions[c], closed[c], cfg
                )
                if not ok:
                    continue
                n_rec = _record_nb(rec_orders, rec_col, n_rec, j, c, delta, open_[j, c], fee, R_SIGNAL)
                desired[c] = np.nan  # done: float dust of a sell must not trade as a buy
                now = position[c]
                if now != 0.0 and (was == 0.0 or (now > 0.0) != (was > 0.0)):
                    entry_price[c] = open_[j, c]
                    entry_bar[c] = j
                    mark[c] = open_[j, c]
                    protect_from[c] = j
                    stop[c], stop_reason[c] = stop_level_nb(now > 0.0, open_[j, c], open_[j, c], sl_stop, sl_trail)
                    tp_level[c] = target_level_nb(now > 0.0, open_[j, c], tp_stop)
        # 3. Working entry limits the bar reaches, column order.
        for c in range(m):
            if not lim_active[c]:
                continue
            if j > lim_until[c]:
                lim_active[c] = False
                continue
            px = limit_fill_nb(lim_qty[c] > 0.0, open_[j, c], low[j, c], high[j, c], lim_price[c], ticks)
            if np.isnan(px):
                continue
            lim_active[c] = False
            delta = lim_qty[c]
            if delta > 0.0:
                delta = affordable_buy_nb(delta, cash, px, cfg)
            if delta == 0.0:
                continue
            cash, position[c], pos_flow[c], n_positions[c], fee, ok = _fill_nb(
                delta, px, False, cash, position[c], pos_flow[c], n_positions[c], closed[c], cfg
            )
            if not ok:
                continue
            n_rec = _record_nb(rec_orders, rec_col, n_rec, j, c, delta, px, fee, R_SIGNAL)
            entry_price[c] = px
            entry_bar[c] = j
            mark[c] = px
            stop[c], stop_reason[c] = stop_level_nb(position[c] > 0.0, px, px, sl_stop, sl_trail)
            tp_level[c] = target_level_nb(position[c] > 0.0, px, tp_stop)
            # an intrabar fill: the path after it is unknown, checks start next bar
            protect_from[c] = j if px == open_[j, c] else j + 1
        # 4. Intrabar stops (before targets), column order; then the trailing marks.
        for c in range(m):
            if position[c] == 0.0:
                continue
            long = position[c] > 0.0
            if j >= protect_from[c]:
                reason, px = intrabar_exit_nb(long, low[j, c], high[j, c], stop[c], stop_reason[c], tp_level[c])
                if reason >= 0.0:
                    size = -position[c]
                    cash, position[c], pos_flow[c], n_positions[c], fee, ok = _fill_nb(
                        size, px, True, cash, position[c], pos_flow[c], n_positions[c], closed[c], cfg
                    )
                    blocked[c] = 1.0 if long else -1.0
                    n_rec = _record_nb(rec_orders, rec_col, n_rec, j, c, size, px, fee, reason)
            if position[c] != 0.0 and j > entry_bar[c]:
                if (long and high[j, c] > mark[c]) or (not long and low[j, c] < mark[c]):
                    mark[c] = high[j, c] if long else low[j, c]
                    if not np.isnan(sl_trail):
                        stop[c], stop_reason[c] = stop_level_nb(long, entry_price[c], mark[c], sl_stop, sl_trail)
        value = cash
        for c in range(m):
            value += position[c] * close[j, c]
        rec_value[j] = value
    return n_rec
