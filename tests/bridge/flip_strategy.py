"""A test-only strategy that trades on every bar: long after an up close, flat after a down close.

Used by the latency benchmark (every bar must produce an order). Load it with
``get_strategy("tests/bridge/flip_strategy.py")``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from quantlab.engine.strategy import StrategySpec


@njit(cache=True)
def flip_nb(close):  # type: ignore[no-untyped-def]
    """Target 1 after an up close, 0 after a down close; NaN on the first bar."""
    out = np.full(close.shape[0], np.nan)
    for i in range(1, close.shape[0]):
        out[i] = 1.0 if close[i] > close[i - 1] else 0.0
    return out


SPEC = StrategySpec(
    name="flip",
    kernel=flip_nb,
    inputs=("close",),
    params=(),
    lookback="2",
    doc="Test-only: flips between long and flat on every bar of a zig-zag series.",
)
