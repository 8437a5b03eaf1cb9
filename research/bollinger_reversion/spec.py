"""Parameter space of Bollinger-band reversion."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from quantlab.engine.strategy import Indicator, IndicatorFn, Param, StrategySpec
from quantlab.kernels.rolling import rolling_std_1d_nb, sma_1d_nb
from research.bollinger_reversion.kernel import bollinger_reversion_nb


def _band(sign: float) -> IndicatorFn:
    """Chart line: the moving average plus ``sign`` x width population standard deviations."""

    def compute(inputs: Mapping[str, np.ndarray], params: Mapping[str, float]) -> np.ndarray:
        close, window = inputs["close"], int(params["window"])
        return sma_1d_nb(close, window) + sign * float(params["width"]) * rolling_std_1d_nb(close, window, 0)

    return compute


SPEC = StrategySpec(
    name="bollinger_reversion",
    kernel=bollinger_reversion_nb,
    inputs=("close",),
    params=(
        Param("window", "int", 20, 5, 100, step=5, doc="moving-average and std window (bars)"),
        Param("width", "float", 2.0, 0.5, 3.5, step=0.25, doc="band width in standard deviations"),
    ),
    lookback="window",
    indicators=(
        Indicator("SMA {window}", _band(0.0)),
        Indicator("upper band", _band(1.0)),
        Indicator("lower band", _band(-1.0)),
    ),
    doc=(
        "Mean reversion: buy when the close falls below the lower Bollinger band\n"
        "(SMA - width x std) and sell when it closes back above the middle band. Long only."
    ),
)
