"""Parameter space of the EMA crossover."""

from __future__ import annotations

from quantlab.engine.strategy import Indicator, IndicatorFn, Param, StrategySpec
from quantlab.kernels.rolling import ema_1d_nb
from research.ema_cross.kernel import ema_cross_nb


def _ema(field: str) -> IndicatorFn:
    """Chart line: the EMA the kernel compares (span = parameter ``field``)."""
    return lambda inputs, params: ema_1d_nb(inputs["close"], int(params[field]))


SPEC = StrategySpec(
    name="ema_cross",
    kernel=ema_cross_nb,
    inputs=("close",),
    params=(
        Param("fast", "int", 12, 2, 200, doc="fast EMA span (bars)"),
        Param("slow", "int", 26, 5, 400, doc="slow EMA span (bars)"),
    ),
    constraints=("fast < slow",),
    lookback="max(fast, slow)",
    indicators=(Indicator("EMA {fast}", _ema("fast")), Indicator("EMA {slow}", _ema("slow"))),
    doc=(
        "Trend following with exponential averages (seeded with the SMA of the first span):\n"
        "long while EMA(fast) > EMA(slow), flat otherwise. Reacts faster than the SMA cross.\n"
        "EMAs have infinite memory: live evaluation must see the same history start as the backtest."
    ),
)
