"""Commission and slippage maths shared by the simulator, the vectorbt replay and the bridge.

Cost parameters travel as a float64 vector ``cfg`` laid out by :mod:`quantlab.kernels.layout`.
Interactive Brokers' fixed schedule (the default): $0.005 per share, at least $1.00 per
order, at most 1% of the trade value; the cap wins when the trade is worth under $100.
Sells (short sales included) also pay the regulatory fees: the SEC Section 31 fee on the
sell notional and FINRA's Trading Activity Fee per share, capped per trade. The half-spread
is a price concession like slippage: :meth:`quantlab.config.SimConfig.to_array` adds it to
the slippage slot, so every fill pays it.
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
    C_SEC_FEE,
    C_SLIPPAGE,
    C_TAF_MAX,
    C_TAF_PER_SHARE,
    COST_IB_FIXED,
)


@njit(cache=True)
def commission_nb(qty, price, cfg):  # type: ignore[no-untyped-def]
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
def sell_fees_nb(qty, price, cfg):  # type: ignore[no-untyped-def]
    """SEC fee (rate x notional) plus FINRA TAF (per share, capped) on ``qty`` shares sold."""
    if qty <= 0.0:
        return 0.0
    taf = qty * cfg[C_TAF_PER_SHARE]
    if cfg[C_TAF_MAX] > 0.0 and taf > cfg[C_TAF_MAX]:
        taf = cfg[C_TAF_MAX]
    return qty * price * cfg[C_SEC_FEE] + taf


@njit(cache=True)
def order_fee_nb(qty, price, is_buy, cfg):  # type: ignore[no-untyped-def]
    """Everything an order pays besides the price: commission, plus regulatory fees on sells."""
    fee = commission_nb(qty, price, cfg)
    if not is_buy:
        fee += sell_fees_nb(qty, price, cfg)
    return fee


@njit(cache=True)
def fill_price_nb(price, is_buy, cfg):  # type: ignore[no-untyped-def]
    """Price after slippage: buyers pay ``price * (1 + s)``, sellers get ``price * (1 - s)``."""
    if is_buy:
        return price * (1.0 + cfg[C_SLIPPAGE])
    return price * (1.0 - cfg[C_SLIPPAGE])
