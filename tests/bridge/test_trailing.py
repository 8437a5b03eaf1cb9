"""Research's trailing level from bars (bridge/trailing.py): the fill bar's own extremes never count."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bridge.trailing import tighter, trail_stop

INDEX = pd.DatetimeIndex(pd.date_range("2021-02-16", periods=4, freq="D", tz="UTC"))
HIGH = np.array([101.0, 120.0, 110.0, 105.0])
LOW = np.array([99.0, 80.0, 90.0, 95.0])
FILL = pd.Timestamp("2021-02-17 14:30", tz="UTC")  # at the open of the second bar: its 120 / 80 are the fill bar's


def test_the_mark_is_the_entry_and_the_extremes_after_the_fill_bar() -> None:
    assert trail_stop(100.0, 0.05, True, INDEX, HIGH, LOW, FILL) == 104.5  # 110 x 0.95, not 120 x 0.95
    assert trail_stop(100.0, 0.05, False, INDEX, HIGH, LOW, FILL) == 94.5  # 90 x 1.05, not 80 x 1.05
    assert trail_stop(100.0, 0.05, True, INDEX[:2], HIGH[:2], LOW[:2], FILL) == 95.0  # only the fill bar: the entry
    assert trail_stop(115.0, 0.05, True, INDEX, HIGH, LOW, FILL) == 109.25  # an entry above every later high


def test_rounding_is_away_from_the_market_and_unknown_fill_bars_give_none() -> None:
    assert trail_stop(100.0, 0.03, True, INDEX, HIGH, LOW, FILL) == 106.7  # 106.7 exactly
    assert trail_stop(101.01, 0.03, True, INDEX[:2], HIGH[:2], LOW[:2], FILL) == 97.97  # 97.9797 down
    assert trail_stop(101.01, 0.03, False, INDEX[:2], HIGH[:2], LOW[:2], FILL) == 104.05  # 104.0403 up
    assert trail_stop(100.0, 0.05, True, INDEX[2:], HIGH[2:], LOW[2:], FILL) is None  # bars start after the fill


def test_a_trailing_stop_only_tightens() -> None:
    assert tighter(104.5, 95.0, long=True) and not tighter(94.0, 95.0, long=True) and not tighter(95.0, 95.0, True)
    assert tighter(94.5, 105.0, long=False) and not tighter(106.0, 105.0, long=False)
    assert tighter(1.0, None, long=True)
