"""Evaluate a research kernel on the latest completed bars and read its last value.

The same kernel the backtest runs on the full history runs here on the trailing window
(``quantlab.engine.signals.evaluate_arrays``); only the last element is used: the target
exposure known at the close of the newest completed bar. Nothing in ``bridge/``
reimplements strategy logic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from bridge.errors import StaleData
from quantlab.engine.signals import PriceArrays, evaluate_arrays
from quantlab.engine.strategy import StrategySpec


@dataclass(frozen=True)
class Signal:
    """The strategy's target after the close of ``bar_time`` (NaN = no opinion, keep)."""

    symbol: str
    bar_time: object
    target: float
    bars: int

    @property
    def has_opinion(self) -> bool:
        return math.isfinite(self.target)


def lookback(spec: StrategySpec, params: Mapping[str, float]) -> int:
    """Bars the kernel needs before its first finite target."""
    return int(spec.lookback_bars(params))


def latest_target(spec: StrategySpec, params: Mapping[str, float], prices: PriceArrays) -> Signal:
    """Run the kernel on ``prices`` (completed bars only) and return its last value.

    Raises:
        StaleData: fewer bars than the strategy's lookback.
    """
    need = lookback(spec, params)
    if len(prices) < need:
        raise StaleData(
            f"{prices.symbol}: {len(prices)} completed bars, {spec.name} needs {need}",
            fix="raise data.history_bars or wait for more bars",
        )
    target = evaluate_arrays(spec, prices, params)
    return Signal(prices.symbol, prices.index[-1], float(target[-1]), len(prices))
