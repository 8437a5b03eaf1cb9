"""A test-only strategy that goes short after a down close and flat after an up close.

Used to check that exit rules on a shorting strategy need ``allow_short``. Load it with
``get_strategy("tests/bridge/short_strategy.py")``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from quantlab.engine.strategy import StrategySpec


@njit(cache=True)
def short_flip_nb(close):  # type: ignore[no-untyped-def]
    """Target -1 after a down close, 0 after an up close; NaN on the first bar."""
    out = np.full(close.shape[0], np.nan)
    for i in range(1, close.shape[0]):
        out[i] = -1.0 if close[i] < close[i - 1] else 0.0
    return out


SPEC = StrategySpec(
    name="short_flip",
    kernel=short_flip_nb,
    inputs=("close",),
    params=(),
    lookback="2",
    doc="Test-only: short after a down close, flat after an up close.",
)
