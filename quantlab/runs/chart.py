"""``chart.csv``: the bars and the strategy's indicator lines a run's price chart draws.

Written next to ``trades.csv`` by backtest and optimize (for the winner), so the report
page draws the price with its trades from the run folder alone, offline. Indicator lines
come from the spec's optional ``indicators`` (see :class:`quantlab.engine.strategy.Indicator`);
their columns are named ``price:<label>`` or ``lower:<label>`` by panel.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from quantlab.engine.strategy import StrategySpec
from quantlab.errors import StrategyError
from quantlab.inputs import MarketInputs

CHART = "chart.csv"
_OHLC = ("open", "high", "low", "close")


def indicator_lines(spec: StrategySpec, frame: pd.DataFrame, params: Mapping[str, float]) -> dict[str, np.ndarray]:
    """``panel:label`` -> values of each indicator the spec names, on one symbol's bars."""
    if not spec.indicators:
        return {}
    inputs = {f: np.ascontiguousarray(frame[f].to_numpy(dtype=np.float64)) for f in spec.inputs}
    out = {}
    for ind in spec.indicators:
        try:
            values = np.asarray(ind.compute(inputs, dict(params)), dtype=np.float64)
        except Exception as err:  # a spec author's bug: name the indicator instead of a traceback
            raise StrategyError(
                f"indicator {ind.label!r} of strategy {spec.name!r} failed",
                found=f"{type(err).__name__}: {err}",
                fix="compute(inputs, params) must return a float64 array as long as the bars",
            ) from None
        if values.shape != (len(frame),):
            raise StrategyError(
                f"indicator {ind.label!r} of strategy {spec.name!r} returned the wrong shape",
                found=values.shape,
                fix=f"return an array of shape ({len(frame)},)",
            )
        out[f"{ind.panel}:{ind.name(params)}"] = values
    return out


def chart_frame(spec: StrategySpec, inputs: MarketInputs, params: Mapping[str, float]) -> pd.DataFrame:
    """Long table: ``time``, ``symbol``, OHLC and one column per indicator line."""
    parts = []
    for symbol in inputs.symbols:
        frame = inputs.frames[symbol]
        part = pd.DataFrame({c: frame[c].to_numpy(dtype=np.float64) for c in _OHLC}, index=frame.index)
        for name, values in indicator_lines(spec, frame, params).items():
            part[name] = values
        part.insert(0, "symbol", symbol)
        part.index.name = "time"
        parts.append(part)
    return pd.concat(parts)
