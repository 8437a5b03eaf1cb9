"""Parameter space of the SMA crossover."""

from __future__ import annotations

from quantlab.engine.strategy import Indicator, IndicatorFn, Param, StrategySpec
from quantlab.kernels.rolling import sma_1d_nb
from research.sma_cross.kernel import sma_cross_nb


def _sma(field: str) -> IndicatorFn:
    """Chart line: the simple moving average the kernel compares (window = parameter ``field``)."""
    return lambda inputs, params: sma_1d_nb(inputs["close"], int(params[field]))


SPEC = StrategySpec(
    name="sma_cross",
    kernel=sma_cross_nb,
    inputs=("close",),
    params=(
        Param("fast", "int", 20, 2, 200, doc="fast moving-average window (bars)"),
        Param("slow", "int", 50, 5, 400, doc="slow moving-average window (bars)"),
    ),
    constraints=("fast < slow",),
    lookback="max(fast, slow)",
    indicators=(Indicator("SMA {fast}", _sma("fast")), Indicator("SMA {slow}", _sma("slow"))),
    doc=(
        "Trend following: long while the fast simple moving average of the close is above\n"
        "the slow one, flat otherwise. Classic 50/200 'golden cross' is fast=50, slow=200."
    ),
)
