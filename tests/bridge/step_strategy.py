"""A test-only strategy for hand-computed cases: flat on bars 0-2, long from bar 3's close on.

The entry is known in advance (bar 4's open, or a limit working from bar 4), so a test can
state by hand where a time exit or a limit fill must happen. Load it with
``get_strategy("tests/bridge/step_strategy.py")``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from quantlab.engine.strategy import StrategySpec


@njit(cache=True)
def step_nb(close):  # type: ignore[no-untyped-def]
    """Target 0 before bar 3, then 1."""
    out = np.zeros(close.shape[0])
    for i in range(3, close.shape[0]):
        out[i] = 1.0
    return out


SPEC = StrategySpec(
    name="step",
    kernel=step_nb,
    inputs=("close",),
    params=(),
    lookback="2",
    doc="Test-only: flat, then long from bar 3's close on.",
)
