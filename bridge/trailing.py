"""Research's trailing stop as a plain stop the bridge moves (issue 12 item 6).

IB's TRAIL order follows every price after the fill, the fill bar's own high included, and can
trigger inside the fill bar; research's mark (docs/research.md rule 3) is the entry and the highs
of the bars strictly after the fill bar, each taken after that bar's check. So the bridge places
the trailing role as a STP at research's level and moves it after each completed bar: this
module computes that level from the bars, nothing else.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bridge.protection import stop_cents


def trail_stop(
    entry: float,
    pct: float,
    long: bool,
    index: pd.DatetimeIndex,
    high: np.ndarray,
    low: np.ndarray,
    filled_at: pd.Timestamp,
) -> float | None:
    """The trailing stop's level once the bars in ``index`` have completed, rounded to the cent
    away from the market; None when the bars do not reach back to the fill bar (the bar
    ``filled_at`` falls in), whose highs after it are then unknown.

    ``pct`` is a fraction (``sl_trail``); ``long`` is the position's side."""
    i = int(index.searchsorted(filled_at, side="right")) - 1
    if i < 0:
        return None
    mark = float(entry)
    if i + 1 < len(index):
        mark = max(mark, float(np.max(high[i + 1 :]))) if long else min(mark, float(np.min(low[i + 1 :])))
    return stop_cents(mark * (1 - pct) if long else mark * (1 + pct), long=long)


def tighter(level: float, current: float | None, long: bool) -> bool:
    """True when ``level`` is nearer the market than ``current`` (a trailing stop never loosens)."""
    return current is None or (level > current + 1e-9 if long else level < current - 1e-9)
