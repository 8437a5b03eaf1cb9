"""Slow, obvious twins of the strategy kernels (plain Python loops and pandas).

Each twin restates the strategy's rule from its docstring without sharing any code
with the Numba kernel, so a kernel test compares two independent implementations.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def sma_cross(close: np.ndarray, fast: int, slow: int) -> np.ndarray:
    s = pd.Series(close)
    f = s.rolling(fast).mean().to_numpy()
    sl = s.rolling(slow).mean().to_numpy()
    out = np.where(np.isnan(f) | np.isnan(sl), np.nan, (f > sl).astype(float))
    return out


def _ema(close: np.ndarray, span: int) -> np.ndarray:
    out = [math.nan] * len(close)
    if len(close) < span:
        return np.array(out)
    alpha = 2.0 / (span + 1.0)
    value = sum(close[:span]) / span
    out[span - 1] = value
    for i in range(span, len(close)):
        value = alpha * close[i] + (1 - alpha) * value
        out[i] = value
    return np.array(out)


def ema_cross(close: np.ndarray, fast: int, slow: int) -> np.ndarray:
    f, s = _ema(close, fast), _ema(close, slow)
    return np.where(np.isnan(f) | np.isnan(s), np.nan, (f > s).astype(float))


def _rsi(close: np.ndarray, period: int) -> list[float]:
    n = len(close)
    out = [math.nan] * n
    if n <= period:
        return out
    changes = [close[i] - close[i - 1] for i in range(1, n)]
    gains = [max(c, 0.0) for c in changes]
    losses = [max(-c, 0.0) for c in changes]
    avg_gain = sum(gains[:period]) / period
    avg_loss = sum(losses[:period]) / period

    def value(g: float, lo: float) -> float:
        if lo == 0:
            return 100.0 if g > 0 else 50.0
        return 100 - 100 / (1 + g / lo)

    out[period] = value(avg_gain, avg_loss)
    for i in range(period + 1, n):
        avg_gain = (avg_gain * (period - 1) + gains[i - 1]) / period
        avg_loss = (avg_loss * (period - 1) + losses[i - 1]) / period
        out[i] = value(avg_gain, avg_loss)
    return out


def rsi_reversion(close: np.ndarray, period: int, entry: float, exit: float) -> np.ndarray:
    rsi = _rsi(close, period)
    out = np.full(len(close), np.nan)
    held = 0.0
    for i, r in enumerate(rsi):
        if math.isnan(r):
            continue
        if held == 0 and r < entry:
            held = 1.0
        elif held == 1 and r > exit:
            held = 0.0
        out[i] = held
    return out


def _atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> list[float]:
    n = len(close)
    tr = [high[0] - low[0]] + [
        max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1])) for i in range(1, n)
    ]
    out = [math.nan] * n
    if n < period:
        return out
    value = sum(tr[:period]) / period
    out[period - 1] = value
    for i in range(period, n):
        value = (value * (period - 1) + tr[i]) / period
        out[i] = value
    return out


def donchian_atr(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, entry: int, atr_period: int, atr_mult: float
) -> np.ndarray:
    channel = pd.Series(high).rolling(entry).max().to_numpy()
    atr = _atr(high, low, close, atr_period)
    out = np.full(len(close), np.nan)
    held, best = 0.0, 0.0
    for i in range(1, len(close)):
        upper = channel[i - 1]
        if math.isnan(upper) or math.isnan(atr[i]):
            continue
        if held == 0:
            if close[i] > upper:
                held, best = 1.0, close[i]
        else:
            best = max(best, close[i])
            if close[i] < best - atr_mult * atr[i]:
                held = 0.0
        out[i] = held
    return out


def bollinger_reversion(close: np.ndarray, window: int, width: float) -> np.ndarray:
    s = pd.Series(close)
    mean = s.rolling(window).mean().to_numpy()
    std = s.rolling(window).std(ddof=0).to_numpy()
    out = np.full(len(close), np.nan)
    held = 0.0
    for i in range(len(close)):
        if math.isnan(std[i]):
            continue
        if held == 0 and close[i] < mean[i] - width * std[i]:
            held = 1.0
        elif held == 1 and close[i] > mean[i]:
            held = 0.0
        out[i] = held
    return out


def tsmom_vol(
    close: np.ndarray,
    lookback: int,
    vol_window: int,
    vol_target: float,
    band: float,
    max_leverage: float,
    bars_per_year: float,
) -> np.ndarray:
    logret = np.log(pd.Series(close)).diff()
    vol = (logret.rolling(vol_window).std(ddof=1) * math.sqrt(bars_per_year)).to_numpy()
    out = np.full(len(close), np.nan)
    held = math.nan
    for i in range(lookback, len(close)):
        if math.isnan(vol[i]) or vol[i] <= 0:
            continue
        momentum = close[i] / close[i - lookback] - 1
        raw = min(max_leverage, vol_target / vol[i]) if momentum > 0 else 0.0
        if math.isnan(held) or (raw == 0) != (held == 0) or abs(raw - held) > band * held:
            held = raw
        out[i] = held
    return out


TWINS = {
    "sma_cross": sma_cross,
    "ema_cross": ema_cross,
    "rsi_reversion": rsi_reversion,
    "donchian_atr": donchian_atr,
    "bollinger_reversion": bollinger_reversion,
    "tsmom_vol": tsmom_vol,
}
