"""Inputs the sizing kernels need besides prices: the volatility series for vol-target sizing.

Backtest, sweep and the live bridge size positions with the same kernels, so they must
feed them the same volatility; this is its one definition.
"""

from __future__ import annotations

import numpy as np

from quantlab.engine.intervals import Interval
from quantlab.engine.settings import SimConfig
from quantlab.engine.signals import PriceArrays
from quantlab.kernels.rolling import log_return_vol_1d_nb


def sizing_vol(prices: PriceArrays, sim: SimConfig, interval: Interval) -> np.ndarray:
    """Per-bar annualised volatility for volatility-target sizing (zeros otherwise)."""
    if sim.sizing.mode != "vol_target":
        return np.zeros(len(prices))
    return np.asarray(log_return_vol_1d_nb(prices.close, sim.sizing.vol_window, interval.bars_per_year))
