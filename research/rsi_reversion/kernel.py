"""RSI mean-reversion kernel."""

from __future__ import annotations

import numpy as np
from numba import njit

from quantlab.kernels.rolling import wilder_rsi_1d_nb


@njit(cache=True)
def rsi_reversion_nb(close, period, entry, exit):
    """Go long when RSI(period) < entry; go flat when RSI > exit. NaN until the RSI exists."""
    rsi = wilder_rsi_1d_nb(close, period)
    n = close.shape[0]
    out = np.full(n, np.nan)
    held = 0.0
    for i in range(n):
        value = rsi[i]
        if np.isnan(value):
            continue
        if held == 0.0 and value < entry:
            held = 1.0
        elif held == 1.0 and value > exit:
            held = 0.0
        out[i] = held
    return out
