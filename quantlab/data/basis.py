"""The price basis a run researches on: split safety and price vs total return.

Two rules, applied to every symbol before any kernel sees its bars (``load_inputs``):

* **Raw bars with splits are refused.** A series stored ``adjustment=raw`` (as traded)
  books every split as a loss (AAPL's 7:1 on 2014-06-09 looks like -86%). Its splits are
  found by the data layer's one detector, :func:`quantlab.data._splits.find_splits`
  (the rule is in docs/data.md, "Split detection"), the same one ``data check`` uses.
  ``adjust=True`` (``--adjust``) back-adjusts for those splits instead of refusing.
* **Returns basis.** ``"price"`` (default) uses the OHLC as stored: split-adjusted,
  dividends left out. ``"total"`` scales OHLC by ``adj_close / close`` (normalised to 1 on
  the last bar), the vendor's split- and dividend-adjusted close, so a held position
  earns its dividends as if reinvested on the ex-date and the last bar keeps its traded
  price. It needs an ``adj_close`` column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlab.data._splits import Split, find_splits
from quantlab.errors import DataError, ParameterError

__all__ = ["RETURNS_BASES", "Split", "check_returns", "find_splits", "split_actions", "split_safe", "total_return"]

RETURNS_BASES = ("price", "total")


def check_returns(returns: str) -> str:
    """``returns`` if it is a known basis, else a clear error."""
    if returns not in RETURNS_BASES:
        raise ParameterError("unknown returns basis", found=repr(returns), fix="use --returns price or --returns total")
    return returns


def split_actions(splits: list[Split]) -> pd.DataFrame:
    """The splits as an actions frame for :func:`quantlab.data.adjust`."""
    index = pd.DatetimeIndex([s.date for s in splits], name="time")
    return pd.DataFrame({"dividend": 0.0, "split": [s.ratio for s in splits]}, index=index)


def split_safe(
    frame: pd.DataFrame, name: str, adjustment: str | None, adjust: bool
) -> tuple[pd.DataFrame, list[Split]]:
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
        raise DataError(
            f"{name}: adj_close has NaN or non-positive values", fix="use --returns price or repair the data"
        )
    factor = adj / frame["close"].to_numpy(np.float64)
    factor = factor / factor[-1]
    out = frame.copy()
    for column in ("open", "high", "low", "close"):
        out[column] = frame[column].to_numpy(np.float64) * factor
    return out
