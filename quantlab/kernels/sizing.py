"""Turn a target exposure into a share count, and a share delta into an affordable fill.

Used by the simulator (so by the sweep and the vectorbt replay) and by the live bridge,
so backtest and live size orders identically.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from quantlab.kernels.costs import commission_nb, fill_price_nb
from quantlab.kernels.layout import (
    C_ALLOW_SHORT,
    C_MAX_LEVERAGE,
    C_SIZE_VALUE,
    C_SIZING,
    C_WHOLE,
    SIZE_ALL,
    SIZE_CASH,
    SIZE_FRACTION,
)

_TOL = 1e-9


@njit(cache=True)
def target_shares_nb(target, equity, ref_price, vol, cfg):
    """Desired signed position in shares for ``target`` exposure.

    Args:
        target: exposure from the strategy kernel (1 = fully invested per the sizing rule,
            0 = flat, negative = short).
        equity: account value at the decision bar's close.
        ref_price: the decision bar's close (the last price known when deciding).
        vol: annualised volatility at the decision bar (volatility-target sizing only).
        cfg: the simulation config vector.

    Returns:
        Shares (whole shares truncated toward zero unless fractional), or NaN when the
        size cannot be decided yet (volatility still warming up).
    """
    mode = cfg[C_SIZING]
    if mode == SIZE_ALL:
        value = target * equity
    elif mode == SIZE_FRACTION:
        value = target * cfg[C_SIZE_VALUE] * equity
    elif mode == SIZE_CASH:
        value = target * cfg[C_SIZE_VALUE]
    else:
        if not (vol > 0.0):
            return np.nan
        leverage = cfg[C_SIZE_VALUE] / vol
        if leverage > cfg[C_MAX_LEVERAGE]:
            leverage = cfg[C_MAX_LEVERAGE]
        value = target * leverage * equity
    shares = value / ref_price
    if cfg[C_WHOLE] != 0.0:
        shares = np.trunc(shares + _TOL * np.sign(shares))
    if cfg[C_ALLOW_SHORT] == 0.0 and shares < 0.0:
        shares = 0.0
    return shares


@njit(cache=True)
def affordable_buy_nb(qty, cash, price, cfg):
    """Largest quantity <= ``qty`` whose cost plus commission fits in ``cash``.

    ``price`` is the fill price before slippage. Returns 0.0 when nothing is affordable.
    """
    adj = fill_price_nb(price, True, cfg)
    if qty * adj + commission_nb(qty, adj, cfg) <= cash:
        return qty
    whole = cfg[C_WHOLE] != 0.0
    if cash <= 0.0:
        return 0.0
    # Commission is monotone in qty, so the affordable set is an interval [0, q*].
    hi = qty
    q = cash / adj
    if q > hi:
        q = hi
    if whole:
        # Largest whole q with cost <= cash, by bisection (O(log q) even for huge accounts).
        hi = np.floor(q)
        if hi * adj + commission_nb(hi, adj, cfg) <= cash:
            return hi
        lo = 0.0
        while hi - lo > 1.0:
            mid = np.floor(0.5 * (lo + hi))
            if mid * adj + commission_nb(mid, adj, cfg) <= cash:
                lo = mid
            else:
                hi = mid
        return lo
    lo = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + q)
        if mid * adj + commission_nb(mid, adj, cfg) <= cash:
            lo = mid
        else:
            q = mid
        if q - lo <= 1e-12 * q:
            break
    return lo
