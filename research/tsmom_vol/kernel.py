"""Time-series momentum kernel with volatility targeting and a rebalancing band."""

from __future__ import annotations

import numpy as np
from numba import njit

from quantlab.kernels.rolling import log_return_vol_1d_nb


@njit(cache=True)
def tsmom_vol_nb(close, lookback, vol_window, vol_target, band, max_leverage, bars_per_year):
    """Exposure min(max_leverage, vol_target / realised vol) while the ``lookback``-bar
    return is positive, else 0. Volatility is annualised with ``bars_per_year``. The held
    exposure changes only when the sign flips or the new exposure differs from the held one
    by more than ``band`` (relative), which keeps turnover low without a calendar (so it
    does not depend on where the history starts)."""
    n = close.shape[0]
    out = np.full(n, np.nan)
    vol = log_return_vol_1d_nb(close, vol_window, bars_per_year)
    held = np.nan
    for i in range(lookback, n):
        if np.isnan(vol[i]) or vol[i] <= 0.0:
            continue
        momentum = close[i] / close[i - lookback] - 1.0
        raw = 0.0
        if momentum > 0.0:
            raw = vol_target / vol[i]
            if raw > max_leverage:
                raw = max_leverage
        if np.isnan(held) or (raw == 0.0) != (held == 0.0) or abs(raw - held) > band * held:
            held = raw
        out[i] = held
    return out
