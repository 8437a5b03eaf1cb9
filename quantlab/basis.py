"""The price basis a run researches on: split safety and price vs total return.

Two rules, applied to every symbol before any kernel sees its bars (``load_inputs``):

* **Raw bars with splits are refused.** A series stored ``adjustment=raw`` (as traded)
  books every split as a loss (AAPL's 7:1 on 2014-06-09 looks like -86%). Its splits are
  found from the stored ``adj_close`` (a split is a jump of ``adj_close / close`` by the
  split ratio, exact even on a crash day) or, without ``adj_close``, from split-sized
  overnight gaps (open / previous close within 3% of ``1/s`` for a usual ratio ``s``).
  ``adjust=True`` (``--adjust``) back-adjusts for those splits instead of refusing.
* **Returns basis.** ``"price"`` (default) uses the OHLC as stored: split-adjusted,
  dividends left out. ``"total"`` scales OHLC by ``adj_close / close`` (normalised to 1 on
  the last bar), the vendor's split- and dividend-adjusted close, so a held position
  earns its dividends as if reinvested on the ex-date and the last bar keeps its traded
  price. It needs an ``adj_close`` column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantlab.errors import DataError, ParameterError

RETURNS_BASES = ("price", "total")
#: Usual split ratios (new shares per old), forward and reverse.
SPLIT_RATIOS = (
    1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 15.0, 20.0, 25.0, 30.0, 50.0,
    1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 8, 1 / 10, 1 / 15, 1 / 20, 1 / 25, 1 / 50,
)
#: Relative tolerance for a gap (open / previous close) to count as ``1/s``. A real split
#: lands within 2% (MSFT 2003-02-18: 1.9%); AAPL's 2000-09-29 crash gap is 5.4% off 1/2.
GAP_TOLERANCE = 0.03
#: A jump of ``adj_close / close`` at least this far from 1 is a split, not a dividend.
FACTOR_JUMP = 1.25


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


def check_returns(returns: str) -> str:
    """``returns`` if it is a known basis, else a clear error."""
    if returns not in RETURNS_BASES:
        raise ParameterError("unknown returns basis", found=repr(returns), fix="use --returns price or --returns total")
    return returns


def _nearest_ratio(value: float) -> tuple[float, float]:
    ratios = np.asarray(SPLIT_RATIOS)
    errors = np.abs(value / ratios - 1.0)
    i = int(np.argmin(errors))
    return float(ratios[i]), float(errors[i])


def find_splits(frame: pd.DataFrame) -> list[Split]:
    """Splits in as-traded bars, from ``adj_close`` when present, else from overnight gaps."""
    close = frame["close"].to_numpy(np.float64)
    if len(close) < 2:
        return []
    found: list[Split] = []
    if "adj_close" in frame.columns and np.isfinite(frame["adj_close"].to_numpy()).all():
        factor = frame["adj_close"].to_numpy(np.float64) / close
        jump = factor[1:] / factor[:-1]
        for i in np.flatnonzero((jump >= FACTOR_JUMP) | (jump <= 1 / FACTOR_JUMP)):
            ratio, _ = _nearest_ratio(float(jump[i]))
            found.append(Split(frame.index[i + 1], ratio, "adj_close"))
        return found
    gap = frame["open"].to_numpy(np.float64)[1:] / close[:-1]
    for i in np.flatnonzero((gap < 0.75) | (gap > 1.4)):
        ratio, error = _nearest_ratio(1.0 / float(gap[i]))
        if error <= GAP_TOLERANCE:
            found.append(Split(frame.index[i + 1], ratio, "gap"))
    return found


def split_actions(splits: list[Split]) -> pd.DataFrame:
    """The splits as an actions frame for :func:`quantlab.data.adjust`."""
    index = pd.DatetimeIndex([s.date for s in splits], name="time")
    return pd.DataFrame({"dividend": 0.0, "split": [s.ratio for s in splits]}, index=index)


def split_safe(frame: pd.DataFrame, name: str, adjustment: str | None, adjust: bool) -> tuple[pd.DataFrame, list[Split]]:
    """Bars safe to research: raw bars with splits are back-adjusted (``adjust``) or refused.

    Raises:
        DataError: raw bars with splits and ``adjust`` False, naming every split date.
    """
    if adjustment != "raw":
        return frame, []
    splits = find_splits(frame)
    if not splits:
        return frame, []
    if not adjust:
        dates = ", ".join(s.label() for s in splits)
        raise DataError(
            f"{name} is stored as traded (adjustment=raw) and has {len(splits)} split(s): {dates}; "
            "research on it would book each split as a loss",
            found=f"split evidence: {splits[0].evidence}",
            fix="add --adjust (adjust=True) to back-adjust for these splits, or import split-adjusted bars",
        )
    from quantlab.data.actions import adjust as back_adjust

    adjusted = back_adjust(frame, split_actions(splits), mode="split")
    if "adj_close" in frame.columns:
        adjusted["adj_close"] = frame["adj_close"].to_numpy()  # already split- and dividend-adjusted
    return adjusted, splits


def total_return(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """OHLC scaled by ``adj_close / close`` (1 on the last bar): the total-return basis.

    Raises:
        DataError: no ``adj_close`` column, or NaN / non-positive values in it.
    """
    if "adj_close" not in frame.columns:
        raise DataError(
            f"{name} has no adj_close column, which total-return research needs",
            found=f"columns {list(frame.columns)}",
            fix="use --returns price, or daily bars with an Adj Close (Yahoo CSV or quantlab data fetch)",
        )
    adj = frame["adj_close"].to_numpy(np.float64)
    if not (np.isfinite(adj) & (adj > 0)).all():
        raise DataError(f"{name}: adj_close has NaN or non-positive values", fix="use --returns price or repair the data")
    factor = adj / frame["close"].to_numpy(np.float64)
    factor = factor / factor[-1]
    out = frame.copy()
    for column in ("open", "high", "low", "close"):
        out[column] = frame[column].to_numpy(np.float64) * factor
    return out
