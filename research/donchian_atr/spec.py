"""Parameter space of the Donchian breakout."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from quantlab.engine.strategy import Indicator, Param, StrategySpec
from quantlab.kernels.rolling import rolling_max_1d_nb
from research.donchian_atr.kernel import donchian_atr_nb


def _channel(inputs: Mapping[str, np.ndarray], params: Mapping[str, float]) -> np.ndarray:
    """Chart line: the highest high of the last ``entry`` bars (the breakout channel)."""
    return rolling_max_1d_nb(inputs["high"], int(params["entry"]))


SPEC = StrategySpec(
    name="donchian_atr",
    kernel=donchian_atr_nb,
    inputs=("high", "low", "close"),
    params=(
        Param("entry", "int", 55, 5, 250, step=5, doc="breakout channel length (bars)"),
        Param("atr_period", "int", 20, 5, 60, step=5, doc="ATR period (Wilder)"),
        Param("atr_mult", "float", 3.0, 1.0, 6.0, step=0.5, doc="trailing stop distance in ATRs"),
    ),
    lookback="max(entry + 1, atr_period)",
    indicators=(Indicator("{entry}-bar high", _channel),),
    doc=(
        "Turtle-style breakout: buy when the close exceeds the highest high of the previous\n"
        "`entry` bars; exit when the close drops `atr_mult` ATRs below the highest close since\n"
        "entry (a chandelier stop that only ratchets up). Long only."
    ),
)
