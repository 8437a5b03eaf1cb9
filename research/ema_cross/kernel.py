"""EMA crossover kernel."""

from __future__ import annotations

import numpy as np
from numba import njit

from quantlab.kernels.rolling import ema_1d_nb


@njit(cache=True)
def ema_cross_nb(close, fast, slow):
    """Target 1 while EMA(fast) > EMA(slow), else 0; NaN until both averages exist."""
    fast_ema = ema_1d_nb(close, fast)
    slow_ema = ema_1d_nb(close, slow)
    n = close.shape[0]
    out = np.full(n, np.nan)
    for i in range(n):
        if not (np.isnan(fast_ema[i]) or np.isnan(slow_ema[i])):
            out[i] = 1.0 if fast_ema[i] > slow_ema[i] else 0.0
    return out
