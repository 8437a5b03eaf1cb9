"""Corporate actions: load split/dividend events and back-adjust as-traded bars.

Backward adjustment, the CRSP/Yahoo method: the latest bar keeps its traded
price; every bar before an ex-date is multiplied by that event's factor

* split ``s`` (new shares per old): prices x ``1/s``, volume x ``s``;
* cash dividend ``D`` (``total_return`` mode only): prices x ``1 - D / C``, where
  ``C`` is the as-traded close of the last bar before the ex-date (if a split
  shares the ex-date, ``D`` is per new share and ``C`` is taken per new share).

Factors multiply across events, so a bar's factor is the product over all later
ex-dates. ``mode="split"`` reproduces Yahoo's OHLC; ``mode="total_return"``
reproduces an adjusted close (Yahoo ``Adj Close``, Alpha Vantage
``adjusted_close``) on every price column.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from quantlab.data._schema import FIELDS, PRICE_FIELDS, daily_stamps
from quantlab.errors import DataError

ACTION_COLUMNS = ("dividend", "split")
_SPLIT_NAMES = ("split_ratio", "split_coefficient", "split", "stock_splits", "splits")
_DIVIDEND_NAMES = ("dividend", "dividends", "dividend_amount")


def _find(columns: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((columns[n] for n in names if n in columns), None)


def load_actions(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read corporate actions from a CSV.

    Accepts the event format ``Date,Dividend,Split Ratio`` and the Alpha Vantage
    as-traded format (``...,Dividend,Split Coefficient``, one row per day; only
    rows with an event are kept). Headers are case-insensitive; yfinance's
    ``Dividends``/``Stock Splits`` (0 = no split) are accepted too.

    Returns:
        A frame indexed by ex-date (00:00 UTC, named ``time``) with float64
        ``dividend`` (cash per share, as traded) and ``split`` (new shares per old;
        1 = none), sorted, one row per ex-date.

    Raises:
        DataError: missing file or columns, unparseable values, split <= 0,
            negative dividend, duplicate ex-dates.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("Actions file not found", found=str(path), fix="check the path")
    try:
        raw = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(
            f"Cannot parse {path.name} as CSV",
            found=str(err).strip(),
            fix="expected Date,Dividend,Split Ratio",
        ) from err
    columns = {str(c).strip().lower().replace(" ", "_"): c for c in raw.columns}
    date = _find(columns, ("date", "ex_date", "timestamp", "datetime"))
    dividend = _find(columns, _DIVIDEND_NAMES)
    split = _find(columns, _SPLIT_NAMES)
    if date is None or (dividend is None and split is None):
        raise DataError(
            f"{path.name} is not an actions file",
            found=f"header {list(map(str, raw.columns))}",
            fix="expected columns Date, Dividend and Split Ratio",
        )
    try:
        when = daily_stamps(pd.DatetimeIndex(pd.to_datetime(raw[date], format="ISO8601")))
        div = pd.to_numeric(raw[dividend], errors="raise").to_numpy(np.float64) if dividend else np.zeros(len(raw))
        ratio = pd.to_numeric(raw[split], errors="raise").to_numpy(np.float64) if split else np.ones(len(raw))
    except (ValueError, TypeError) as err:
        raise DataError(
            f"{path.name}: cannot read dates or numbers",
            found=str(err),
            fix="dates as YYYY-MM-DD, amounts as numbers",
        ) from err
    if split and columns.get("stock_splits") == split:
        ratio = np.where(ratio == 0, 1.0, ratio)  # yfinance writes 0 for "no split"
    frame = pd.DataFrame({"dividend": np.nan_to_num(div), "split": np.nan_to_num(ratio, nan=1.0)}, index=when)
    frame = frame[(frame["dividend"] != 0) | (frame["split"] != 1)].sort_index()
    return validate_actions(frame, name=path.name)


def validate_actions(actions: pd.DataFrame, *, name: str = "actions") -> pd.DataFrame:
    """Check an actions frame (``dividend``, ``split`` columns, ex-date index).

    Raises:
        DataError: split ratio <= 0, negative dividend, duplicate ex-dates, NaN.
    """
    missing = [c for c in ACTION_COLUMNS if c not in actions.columns]
    if missing:
        raise DataError(
            f"{name}: missing column(s) {', '.join(missing)}",
            found=f"columns {list(actions.columns)}",
            fix="use load_actions() or columns dividend and split",
        )
    frame = actions[list(ACTION_COLUMNS)].astype(np.float64)
    frame.index = daily_stamps(pd.DatetimeIndex(frame.index))
    if frame.isna().any().any():
        raise DataError(
            f"{name}: NaN in actions",
            found=str(frame[frame.isna().any(axis=1)].index[0]),
            fix="use 0 for no dividend and 1 for no split",
        )
    if (frame["split"] <= 0).any():
        bad = frame[frame["split"] <= 0]
        raise DataError(
            f"{name}: split ratio must be > 0",
            found=f"{bad['split'].iloc[0]} on {bad.index[0].date()}",
            fix="write new shares per old share (2 for a 2:1 split, 1 for none)",
        )
    if (frame["dividend"] < 0).any():
        bad = frame[frame["dividend"] < 0]
        raise DataError(
            f"{name}: negative dividend",
            found=f"{bad['dividend'].iloc[0]} on {bad.index[0].date()}",
            fix="dividends are cash amounts >= 0",
        )
    if frame.index.duplicated().any():
        raise DataError(
            f"{name}: duplicate ex-dates",
            found=str(frame.index[frame.index.duplicated()][0].date()),
            fix="combine events of one day into one row",
        )
    return frame.sort_index()


def adjustment_factors(
    times: np.ndarray, close: np.ndarray, actions: pd.DataFrame, mode: str = "total_return"
) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar price and volume multipliers for backward adjustment.

    Args:
        times: bar times (int64 UTC ns, sorted).
        close: as-traded closes, aligned with ``times``.
        actions: validated actions (see :func:`validate_actions`).
        mode: ``"split"`` or ``"total_return"``.

    Returns:
        ``(price_factor, volume_factor)`` arrays aligned with ``times``.
    """
    if mode not in ("split", "total_return"):
        raise DataError(
            "Unknown adjustment mode",
            found=repr(mode),
            fix="use mode='split' or mode='total_return'",
        )
    ex = np.asarray(actions.index.asi8, dtype=np.int64)
    split = actions["split"].to_numpy()
    price_step = 1.0 / split
    if mode == "total_return":
        before = np.searchsorted(times, ex, side="left") - 1  # last bar before each ex-date
        has_prev = before >= 0
        prev_close = np.where(has_prev, close[np.maximum(before, 0)], np.nan) / split
        dividend = actions["dividend"].to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            div_factor = np.where(has_prev & (dividend > 0), 1.0 - dividend / prev_close, 1.0)
        if (div_factor <= 0).any():
            i = int(np.flatnonzero(div_factor <= 0)[0])
            raise DataError(
                "A dividend is not smaller than the previous close",
                found=f"{dividend[i]} on {actions.index[i].date()} vs close {prev_close[i]:.4f}",
                fix="check the dividend amount and its units",
            )
        price_step = price_step * div_factor
    # suffix products: factor for a bar = product over ex-dates after it
    suffix_price = np.append(np.cumprod(price_step[::-1])[::-1], 1.0)
    suffix_volume = np.append(np.cumprod(split[::-1])[::-1], 1.0)
    later = np.searchsorted(ex, times, side="right")
    return suffix_price[later], suffix_volume[later]


def adjust(raw_bars: pd.DataFrame, actions: pd.DataFrame, mode: str = "total_return") -> pd.DataFrame:
    """Back-adjust as-traded bars for splits (and dividends in ``total_return`` mode).

    Args:
        raw_bars: as-traded bars (canonical columns, sorted UTC index).
        actions: from :func:`load_actions` (or any frame with ``dividend``/``split``).
        mode: ``"split"`` (prices / split, volume x split) or ``"total_return"``
            (additionally x ``1 - D/previous close`` before each ex-dividend date).

    Returns:
        A new frame with adjusted ``open high low close volume``; an input
        ``adj_close`` column (a vendor's own adjustment) is dropped.

    Raises:
        DataError: bad mode, invalid actions or bars, dividend >= previous close.
    """
    from quantlab.data.validate import validate_bars

    bars = validate_bars(raw_bars, name="raw bars")
    events = validate_actions(actions)
    price_factor, volume_factor = adjustment_factors(bars.index.asi8, bars["close"].to_numpy(), events, mode)
    out = pd.DataFrame({f: bars[f].to_numpy() * price_factor for f in PRICE_FIELDS}, index=bars.index)
    out["volume"] = bars["volume"].to_numpy() * volume_factor
    return out[list(FIELDS)]
