"""Causal rolling indicators for strategy kernels (``@njit(cache=True)``, float64 1-D).

Every function here is causal and prefix-stable: the value at bar ``i`` is computed
from bars ``0..i`` by the same sequence of floating-point operations whether the input
stops at ``i`` or continues, so kernels built on them pass the causality test bit for
bit. Warm-up bars are NaN. A NaN input value is not skipped: it propagates until it
leaves the window (validate prices before calling; quantlab's wrappers do).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def sma_1d_nb(x, window):
    """Simple moving average over ``window`` bars; NaN for the first ``window - 1`` bars."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    if window < 1:
        return out
    total = 0.0
    for i in range(n):
        total += x[i]
        if i >= window:
            total -= x[i - window]
        if i >= window - 1:
            out[i] = total / window
    return out


@njit(cache=True)
def ema_1d_nb(x, span):
    """Exponential moving average, alpha = 2 / (span + 1), seeded with the SMA of the first ``span`` bars."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    if span < 1 or n < span:
        return out
    alpha = 2.0 / (span + 1.0)
    seed = 0.0
    for i in range(span):
        seed += x[i]
    value = seed / span
    out[span - 1] = value
    for i in range(span, n):
        value = alpha * x[i] + (1.0 - alpha) * value
        out[i] = value
    return out


@njit(cache=True)
def rolling_std_1d_nb(x, window, ddof):
    """Rolling standard deviation (two-pass per window, so exact and prefix-stable)."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    if window <= ddof:
        return out
    for i in range(window - 1, n):
        mean = 0.0
        for j in range(i - window + 1, i + 1):
            mean += x[j]
        mean /= window
        acc = 0.0
        for j in range(i - window + 1, i + 1):
            d = x[j] - mean
            acc += d * d
        out[i] = np.sqrt(acc / (window - ddof))
    return out


@njit(cache=True)
def _rolling_extreme_1d_nb(x, window, is_max):
    """Rolling maximum (or minimum) over ``window`` bars ending at ``i`` (monotonic deque, O(n))."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    if window < 1:
        return out
    dq = np.empty(n, dtype=np.int64)
    head = 0
    tail = 0
    for i in range(n):
        while tail > head and ((x[dq[tail - 1]] <= x[i]) if is_max else (x[dq[tail - 1]] >= x[i])):
            tail -= 1
        dq[tail] = i
        tail += 1
        if dq[head] <= i - window:
            head += 1
        if i >= window - 1:
            out[i] = x[dq[head]]
    return out


@njit(cache=True)
def rolling_max_1d_nb(x, window):
    """Rolling maximum over ``window`` bars ending at ``i``."""
    return _rolling_extreme_1d_nb(x, window, True)


@njit(cache=True)
def rolling_min_1d_nb(x, window):
    """Rolling minimum over ``window`` bars ending at ``i``."""
    return _rolling_extreme_1d_nb(x, window, False)


@njit(cache=True)
def wilder_rsi_1d_nb(close, period):
    """Relative strength index with Wilder's smoothing; first value at bar ``period``."""
    n = close.shape[0]
    out = np.full(n, np.nan)
    if period < 1 or n <= period:
        return out
    gain = 0.0
    loss = 0.0
    for i in range(1, period + 1):
        change = close[i] - close[i - 1]
        if change > 0:
            gain += change
        else:
            loss -= change
    avg_gain = gain / period
    avg_loss = loss / period
    out[period] = _rsi_value(avg_gain, avg_loss)
    for i in range(period + 1, n):
        change = close[i] - close[i - 1]
        up = change if change > 0 else 0.0
        down = -change if change < 0 else 0.0
        avg_gain = (avg_gain * (period - 1) + up) / period
        avg_loss = (avg_loss * (period - 1) + down) / period
        out[i] = _rsi_value(avg_gain, avg_loss)
    return out


@njit(cache=True)
def _rsi_value(avg_gain, avg_loss):
    if avg_loss == 0.0:
        return 100.0 if avg_gain > 0.0 else 50.0
    rs = avg_gain / avg_loss
    return 100.0 - 100.0 / (1.0 + rs)


@njit(cache=True)
def true_range_1d_nb(high, low, close):
    """True range; bar 0 uses high - low."""
    n = close.shape[0]
    out = np.empty(n)
    for i in range(n):
        hl = high[i] - low[i]
        if i == 0:
            out[i] = hl
        else:
            hc = abs(high[i] - close[i - 1])
            lc = abs(low[i] - close[i - 1])
            out[i] = max(hl, max(hc, lc))
    return out


@njit(cache=True)
def wilder_atr_1d_nb(high, low, close, period):
    """Average true range with Wilder's smoothing; first value at bar ``period - 1``."""
    n = close.shape[0]
    out = np.full(n, np.nan)
    if period < 1 or n < period:
        return out
    tr = true_range_1d_nb(high, low, close)
    acc = 0.0
    for i in range(period):
        acc += tr[i]
    value = acc / period
    out[period - 1] = value
    for i in range(period, n):
        value = (value * (period - 1) + tr[i]) / period
        out[i] = value
    return out


@njit(cache=True)
def log_return_vol_1d_nb(close, window, ann_factor):
    """Annualised rolling volatility of log returns over ``window`` returns ending at ``i``."""
    n = close.shape[0]
    rets = np.full(n, np.nan)
    for i in range(1, n):
        rets[i] = np.log(close[i] / close[i - 1])
    out = np.full(n, np.nan)
    if window < 2:
        return out
    for i in range(window, n):
        mean = 0.0
        for j in range(i - window + 1, i + 1):
            mean += rets[j]
        mean /= window
        acc = 0.0
        for j in range(i - window + 1, i + 1):
            d = rets[j] - mean
            acc += d * d
        out[i] = np.sqrt(acc / (window - 1)) * np.sqrt(ann_factor)
    return out
