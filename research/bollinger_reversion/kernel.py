"""Bollinger-band reversion kernel."""

from __future__ import annotations

import numpy as np
from numba import njit

from quantlab.kernels.rolling import rolling_std_1d_nb, sma_1d_nb


@njit(cache=True)
def bollinger_reversion_nb(close, window, width):
    """Long when the close falls below mean - width * std (population std over ``window``);
    flat when it closes back above the mean."""
    mean = sma_1d_nb(close, window)
    std = rolling_std_1d_nb(close, window, 0)
    n = close.shape[0]
    out = np.full(n, np.nan)
    held = 0.0
    for i in range(n):
        if np.isnan(std[i]):
            continue
        if held == 0.0 and close[i] < mean[i] - width * std[i]:
            held = 1.0
        elif held == 1.0 and close[i] > mean[i]:
            held = 0.0
        out[i] = held
    return out
