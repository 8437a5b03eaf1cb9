"""The one split detector: where as-traded (``raw``) bars split, and by what ratio.

Why: a backtest on raw prices reads a 7:1 split as an 86% overnight loss. ``data check``
flags these splits and ``backtest``/``optimize``/``walkforward`` refuse (or ``--adjust``
for) them; both call :func:`find_split_rows`, so they always name the same dates.

The rule (docs/data.md, "Split detection"):

* **With a complete ``adj_close``** (every value finite): a split is a jump of the
  vendor's factor ``adj_close / close`` by at least :data:`FACTOR_JUMP` (either way);
  dividends move it by a few percent at most. The ratio is the usual ratio nearest the
  jump. This is exact even when the stock also crashes on the split day.
* **Otherwise** a split is an overnight gap, previous close / open, within
  :data:`TOLERANCE` of a usual ratio (:data:`RATIOS`: 3:2, 2:1, 5:2 .. 50:1, or a
  reverse 1:2 .. 1:50). The open, not the close, is used because the price moves
  during the split day: on AAPL's 2:1 split of 2000-06-21 close-to-close is 1.82 but
  the gap is 2.005. On the real AAPL and MSFT as-traded files every split is found
  (worst: 4:1 of 2020-08-31 at 3.913, 2.2% off) and the 2000-09-29 AAPL crash (gap
  1.898, 5% from 2:1) is not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantlab.data._report import Finding

_FORWARD = (1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0)
#: Ratios a split or reverse split usually has (new shares per old share).
RATIOS = np.array(sorted({*_FORWARD, *(1.0 / r for r in _FORWARD if r >= 2.0)}))
#: Relative distance from a ratio that still counts as a split-sized gap.
TOLERANCE = 0.03
#: A jump of ``adj_close / close`` at least this far from 1 is a split, not a dividend.
FACTOR_JUMP = 1.25

FIX = (
    "research on these prices shows each split as a fake loss or gain: import split-adjusted "
    "data (Yahoo daily files, quantlab data fetch), or back-adjust the as-traded bars with their "
    "actions (quantlab data import FILE --actions ACTIONS.csv --replace), or let research "
    "back-adjust for them (backtest/optimize/walkforward --adjust)"
)


@dataclass(frozen=True)
class Split:
    """One split found in a series: ex-date, ratio (new shares per old) and the evidence."""

    date: pd.Timestamp
    ratio: float
    evidence: str  # "adj_close" or "gap"

    def label(self) -> str:
        r = self.ratio
        text = f"{r:g}:1" if r >= 1 else f"1:{1 / r:g}"
        return f"{self.date.date()} ({text})"


def _label(ratio: float) -> str:
    return f"{ratio:g}:1 split" if ratio >= 1.0 else f"1:{1.0 / ratio:g} reverse split"


def _nearest(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index into :data:`RATIOS` nearest each value (in log terms) and the log distance."""
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = np.abs(np.log(values)[:, None] - np.log(RATIOS)[None, :])
    distance = np.where(np.isfinite(distance), distance, np.inf)
    nearest = np.argmin(distance, axis=1)
    return nearest, np.take_along_axis(distance, nearest[:, None], axis=1)[:, 0]


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
        gap = close[:-1] / open_[1:]
    nearest, distance = _nearest(gap)
    rows = np.flatnonzero(distance < np.log1p(TOLERANCE))
    return rows + 1, RATIOS[nearest[rows]]


def factor_jumps(close: np.ndarray, adj_close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows where ``adj_close / close`` jumps by :data:`FACTOR_JUMP` or more, and the nearest ratio."""
    if len(close) < 2:
        return np.empty(0, np.int64), np.empty(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = adj_close / close
        jump = factor[1:] / factor[:-1]
    rows = np.flatnonzero((jump >= FACTOR_JUMP) | (jump <= 1.0 / FACTOR_JUMP))
    nearest, _ = _nearest(jump[rows])
    return rows + 1, RATIOS[nearest]


def find_split_rows(
    open_: np.ndarray, close: np.ndarray, adj_close: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, str]:
    """The rule: ``adj_close`` factor jumps when ``adj_close`` is complete, else split-sized gaps.

    Returns:
        ``(rows, ratios, evidence)`` with ``evidence`` ``"adj_close"`` or ``"gap"``.
    """
    if adj_close is not None and len(adj_close) and np.isfinite(adj_close).all():
        rows, ratios = factor_jumps(close, adj_close)
        return rows, ratios, "adj_close"
    rows, ratios = split_gaps(open_, close)
    return rows, ratios, "gap"


def find_splits(frame: pd.DataFrame) -> list[Split]:
    """Splits in as-traded bars (``open``, ``close``, optional ``adj_close``) by :func:`find_split_rows`."""
    adj = frame["adj_close"].to_numpy(np.float64) if "adj_close" in frame.columns else None
    rows, ratios, evidence = find_split_rows(
        frame["open"].to_numpy(np.float64), frame["close"].to_numpy(np.float64), adj
    )
    return [Split(frame.index[i], float(r), evidence) for i, r in zip(rows, ratios, strict=True)]


def split_gap_finding(
    open_: np.ndarray,
    close: np.ndarray,
    show: Callable[[np.ndarray], list[str]],
    adj_close: np.ndarray | None = None,
) -> Finding | None:
    """The ``split_gaps`` error for raw bars, naming each date (``show(rows)``), its gap and the split."""
    rows, ratios, _ = find_split_rows(open_, close, adj_close)
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
        f"{len(rows)} split(s) in raw (as-traded) prices; {FIX}",
        examples,
    )
