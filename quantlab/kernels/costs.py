"""Commission and slippage maths shared by the simulator, the vectorbt replay and the bridge.

Cost parameters travel as a float64 vector ``cfg`` laid out by :mod:`quantlab.kernels.layout`.
Interactive Brokers' fixed schedule (the default): $0.005 per share, at least $1.00 per
order, at most 1% of the trade value; the cap wins when the trade is worth under $100.
"""

from __future__ import annotations

from numba import njit

from quantlab.kernels.layout import (
    C_FIXED_FEE,
    C_MAX_PCT,
    C_MIN_FEE,
    C_MODEL,
    C_PCT_FEE,
    C_PER_SHARE,
    C_SLIPPAGE,
    COST_IB_FIXED,
)


@njit(cache=True)
def commission_nb(qty, price, cfg):
    """Commission in cash for ``qty`` shares (absolute) filled at ``price`` (after slippage)."""
    if qty <= 0.0:
        return 0.0
    value = qty * price
    if cfg[C_MODEL] == COST_IB_FIXED:
        fee = qty * cfg[C_PER_SHARE]
        if fee < cfg[C_MIN_FEE]:
            fee = cfg[C_MIN_FEE]
        if cfg[C_MAX_PCT] > 0.0:
            cap = value * cfg[C_MAX_PCT]
            if fee > cap:
                fee = cap
        return fee + cfg[C_FIXED_FEE]
    return value * cfg[C_PCT_FEE] + cfg[C_FIXED_FEE]


@njit(cache=True)
def fill_price_nb(price, is_buy, cfg):
    """Price after slippage: buyers pay ``price * (1 + s)``, sellers get ``price * (1 - s)``."""
    if is_buy:
        return price * (1.0 + cfg[C_SLIPPAGE])
    return price * (1.0 - cfg[C_SLIPPAGE])
