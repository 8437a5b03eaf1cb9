"""Donchian breakout kernel with an ATR trailing stop."""

from __future__ import annotations

import numpy as np
from numba import njit

from quantlab.kernels.rolling import rolling_max_1d_nb, wilder_atr_1d_nb


@njit(cache=True)
def donchian_atr_nb(high, low, close, entry, atr_period, atr_mult):
    """Long when the close breaks above the highest high of the previous ``entry`` bars;
    exit when the close falls below the highest close since entry minus ``atr_mult`` ATRs."""
    n = close.shape[0]
    out = np.full(n, np.nan)
    channel = rolling_max_1d_nb(high, entry)
    atr = wilder_atr_1d_nb(high, low, close, atr_period)
    held = 0.0
    best = 0.0
    for i in range(1, n):
        upper = channel[i - 1]
        if np.isnan(upper) or np.isnan(atr[i]):
            continue
        if held == 0.0:
            if close[i] > upper:
                held = 1.0
                best = close[i]
        else:
            if close[i] > best:
                best = close[i]
            if close[i] < best - atr_mult * atr[i]:
                held = 0.0
        out[i] = held
    return out
