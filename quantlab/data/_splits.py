"""Find price gaps the size of a stock split in as-traded (``raw``) bars.

Why: a backtest on raw prices reads a 7:1 split as an 86% overnight loss. Stored
series carry no corporate actions, so the check looks at the overnight gap,
previous close / open, and calls it split-sized when it is within
:data:`TOLERANCE` of a usual split ratio (3:2, 2:1 .. 50:1, or a reverse 1:2 ..
1:50). The open, not the close, is used because the price moves during the split
day: on AAPL's 2:1 split of 2000-06-21 close-to-close is 1.82 but the gap is 2.005.
On the real AAPL and MSFT as-traded files every split is found (worst: 4:1 of
2020-08-31 at 3.913, 2.2% off) and the 2000-09-29 AAPL crash (gap 1.898, 5% from
2:1) is not.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from quantlab.data._report import Finding

_FORWARD = (1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0)
#: Ratios a split or reverse split usually has (new shares per old share).
RATIOS = np.array(sorted({*_FORWARD, *(1.0 / r for r in _FORWARD if r >= 2.0)}))
#: Relative distance from a ratio that still counts as split-sized.
TOLERANCE = 0.03

FIX = (
    "research on these prices shows each split as a fake loss or gain: import split-adjusted "
    "data (Yahoo daily files, quantlab data fetch), or back-adjust the as-traded bars with their "
    "actions (quantlab data import FILE --actions ACTIONS.csv --replace), or let research "
    "back-adjust for them (backtest/optimize/walkforward --adjust)"
)


def _label(ratio: float) -> str:
    return f"{ratio:g}:1 split" if ratio >= 1.0 else f"1:{1.0 / ratio:g} reverse split"


def split_gaps(open_: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose gap from the previous close is split-sized, and the ratio each looks like.

    Args:
        open_, close: float64 prices in time order (NaN rows are never flagged).

    Returns:
        ``(rows, ratios)``: indices ``i >= 1`` with ``close[i-1] / open[i]`` within
        :data:`TOLERANCE` of a ratio in :data:`RATIOS`, and that ratio.
    """
    if len(close) < 2:
        return np.empty(0, np.int64), np.empty(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.log(close[:-1] / open_[1:])
    distance = np.abs(gap[:, None] - np.log(RATIOS)[None, :])
    nearest = np.argmin(np.where(np.isfinite(distance), distance, np.inf), axis=1)
    close_enough = np.take_along_axis(distance, nearest[:, None], axis=1)[:, 0] < np.log1p(TOLERANCE)
    rows = np.flatnonzero(close_enough & np.isfinite(gap))
    return rows + 1, RATIOS[nearest[rows]]


def split_gap_finding(
    open_: np.ndarray, close: np.ndarray, show: Callable[[np.ndarray], list[str]]
) -> Finding | None:
    """The ``split_gaps`` error for raw bars, naming each date (``show(rows)``) and the split it looks like."""
    rows, ratios = split_gaps(open_, close)
    if not len(rows):
        return None
    shown = show(rows)
    examples = tuple(
        f"{when} (gap {close[i - 1] / open_[i]:.3f}, like a {_label(r)})"
        for when, i, r in zip(shown, rows, ratios, strict=True)
    )
    return Finding(
        "split_gaps",
        "error",
        len(rows),
        f"{len(rows)} split-sized overnight gap(s) in raw (as-traded) prices; {FIX}",
        examples,
    )
