"""Several symbols sharing one cash account (the backtest's ``--shared-cash`` mode).

Same timing and sizing rules as :mod:`quantlab.kernels.sim`, on bars aligned across
symbols. At each open, reductions (sells) run first, in column order, to release cash,
then increases (buys), each cut to what the remaining cash affords. Budgets: ``all`` and
``vol_target`` split equity equally across the symbols, ``fraction`` is a share of total
equity per symbol and ``cash`` a fixed amount per symbol. The order of execution per bar
is recorded so vectorbt's cash-sharing replay processes orders in the same sequence.
A group with exit rules runs :mod:`quantlab.kernels.group_exits` instead.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from quantlab.kernels.costs import fill_price_nb, order_fee_nb
from quantlab.kernels.layout import C_INIT_CASH, C_SIZING, SIZE_ALL, SIZE_VOL_TARGET
from quantlab.kernels.sim import _snap_add
from quantlab.kernels.sizing import affordable_buy_nb, target_shares_nb


@njit(cache=True)
def simulate_group_nb(target, open_, close, vol, cfg, rec_size, rec_fee, rec_seq, rec_value):
    """Simulate an (n bars x m symbols) group with shared cash; fill the record arrays.

    ``rec_size``/``rec_fee`` are (n, m) (NaN size where no order), ``rec_seq`` (n, m) the
    column processed at each call position, ``rec_value`` (n,) the group value at each close.
    """
    n, m = close.shape
    cash = cfg[C_INIT_CASH]
    position = np.zeros(m)
    last_target = np.full(m, np.nan)
    desired = np.full(m, np.nan)
    split = cfg[C_SIZING] == SIZE_ALL or cfg[C_SIZING] == SIZE_VOL_TARGET
    for j in range(n):
        for c in range(m):
            rec_size[j, c] = np.nan
            rec_fee[j, c] = 0.0
            rec_seq[j, c] = c
        if j >= 1:
            equity = cash
            for c in range(m):
                equity += position[c] * close[j - 1, c]
            budget = equity / m if split else equity
            for c in range(m):
                desired[c] = np.nan
                t = target[j - 1, c]
                if not np.isnan(t) and t != last_target[c]:
                    d = target_shares_nb(t, budget, close[j - 1, c], vol[j - 1, c], cfg)
                    if not np.isnan(d):
                        last_target[c] = t
                        desired[c] = d
            k = 0
            for phase in range(2):  # 0: sells, 1: buys
                for c in range(m):
                    if np.isnan(desired[c]):
                        continue
                    delta = desired[c] - position[c]
                    if (phase == 0 and delta >= 0.0) or (phase == 1 and delta <= 0.0):
                        continue
                    if delta > 0.0:
                        delta = affordable_buy_nb(delta, cash, open_[j, c], cfg)
                        if delta == 0.0:
                            continue
                    is_buy = delta > 0.0
                    adj = fill_price_nb(open_[j, c], is_buy, cfg)
                    qty = abs(delta)
                    fee = order_fee_nb(qty, adj, is_buy, cfg)
                    flow = -(qty * adj + fee) if is_buy else qty * adj - fee
                    if not is_buy and flow < 0.0:
                        continue
                    cash = _snap_add(cash, flow)
                    position[c] = _snap_add(position[c], delta)
                    rec_size[j, c] = delta
                    rec_fee[j, c] = fee
                    desired[c] = np.nan  # done: float dust of a sell must not trade as a buy
            # call sequence: columns with orders in execution order, then the rest
            for phase in range(3):
                for c in range(m):
                    has = not np.isnan(rec_size[j, c])
                    if phase == 0 and has and rec_size[j, c] < 0.0:
                        rec_seq[j, k] = c
                        k += 1
                    elif phase == 1 and has and rec_size[j, c] > 0.0:
                        rec_seq[j, k] = c
                        k += 1
                    elif phase == 2 and not has:
                        rec_seq[j, k] = c
                        k += 1
        value = cash
        for c in range(m):
            value += position[c] * close[j, c]
        rec_value[j] = value
