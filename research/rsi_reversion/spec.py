"""Parameter space of RSI mean reversion."""

from __future__ import annotations

import numpy as np

from quantlab.engine.strategy import Indicator, IndicatorFn, Param, StrategySpec
from quantlab.kernels.rolling import wilder_rsi_1d_nb
from research.rsi_reversion.kernel import rsi_reversion_nb


def _level(field: str) -> IndicatorFn:
    """Chart line: a constant RSI threshold (parameter ``field``)."""
    return lambda inputs, params: np.full(inputs["close"].shape[0], float(params[field]))


SPEC = StrategySpec(
    name="rsi_reversion",
    kernel=rsi_reversion_nb,
    inputs=("close",),
    params=(
        Param("period", "int", 14, 2, 50, doc="RSI period (Wilder smoothing)"),
        Param("entry", "float", 30.0, 5.0, 45.0, step=5.0, doc="buy when RSI falls below this"),
        Param("exit", "float", 70.0, 50.0, 95.0, step=5.0, doc="sell when RSI rises above this"),
    ),
    constraints=("entry < exit",),
    lookback="period + 1",
    indicators=(
        Indicator(
            "RSI {period}", lambda inputs, params: wilder_rsi_1d_nb(inputs["close"], int(params["period"])), "lower"
        ),
        Indicator("entry {entry}", _level("entry"), "lower"),
        Indicator("exit {exit}", _level("exit"), "lower"),
    ),
    doc=(
        "Mean reversion: buy when Wilder's RSI drops below `entry` (oversold) and hold until\n"
        "it rises above `exit`. Long only. Works best on index ETFs with short periods (2-5)."
    ),
)
