"""SMA crossover kernel."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def sma_cross_nb(close, fast, slow):
    """Target 1 while SMA(fast) > SMA(slow), else 0; NaN until both averages exist.

    One fused pass with running sums, comparing the averages by cross-multiplication.
    """
    n = close.shape[0]
    out = np.full(n, np.nan)
    warm = max(fast, slow) - 1
    sum_fast = 0.0
    sum_slow = 0.0
    for i in range(n):
        c = close[i]
        sum_fast += c
        sum_slow += c
        if i >= fast:
            sum_fast -= close[i - fast]
        if i >= slow:
            sum_slow -= close[i - slow]
        if i >= warm:
            # mean_fast > mean_slow, cross-multiplied (windows are positive)
            out[i] = 1.0 if sum_fast * slow > sum_slow * fast else 0.0
    return out
