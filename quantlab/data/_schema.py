"""Names and conventions shared by every module of the data layer.

Bars are a DataFrame indexed by the bar's **start** time as a tz-aware UTC
``DatetimeIndex`` named ``time`` (nanosecond resolution), with float64 columns
``open high low close volume`` and optionally ``adj_close``. Daily and longer bars
are stamped at 00:00 UTC of the session date.
"""

from __future__ import annotations

import re
from typing import Final

import numpy as np
import pandas as pd

from quantlab.errors import DataError

PRICE_FIELDS: Final = ("open", "high", "low", "close")
FIELDS: Final = (*PRICE_FIELDS, "volume")
OPTIONAL_FIELDS: Final = ("adj_close",)
ALL_FIELDS: Final = (*FIELDS, *OPTIONAL_FIELDS)
INDEX_NAME: Final = "time"

#: Adjustment modes: as traded, split-adjusted OHLCV (Yahoo's OHLC), or split- and
#: dividend-adjusted (yfinance ``auto_adjust=True``, CRSP-style total return).
ADJUSTMENTS: Final = ("raw", "split", "total_return")

#: Supported bar intervals and their length; ``None`` = calendar-based (no fixed length).
_MINUTE = 60 * 1_000_000_000
INTERVALS: Final[dict[str, int | None]] = {
    "1m": _MINUTE,
    "2m": 2 * _MINUTE,
    "5m": 5 * _MINUTE,
    "15m": 15 * _MINUTE,
    "30m": 30 * _MINUTE,
    "1h": 60 * _MINUTE,
    "90m": 90 * _MINUTE,
    "1d": 1440 * _MINUTE,
    "1wk": None,
    "1mo": None,
}
_ALIASES: Final = {
    "60m": "1h",
    "1min": "1m",
    "5min": "5m",
    "15min": "15m",
    "30min": "30m",
    "d": "1d",
    "1day": "1d",
}
DAILY_INTERVALS: Final = ("1d", "1wk", "1mo")

_SYMBOL_CHARS: Final = re.compile(r"^[A-Za-z0-9.^=_-]{1,32}$")


def normalize_interval(interval: str) -> str:
    """Return the canonical interval name (``"60m"`` -> ``"1h"``).

    Raises:
        DataError: the interval is not one quantlab stores.
    """
    key = str(interval).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in INTERVALS:
        raise DataError(
            "Unknown bar interval",
            found=repr(interval),
            fix=f"use one of {', '.join(INTERVALS)}",
        )
    return key


def interval_nanos(interval: str) -> int | None:
    """Length of one bar in nanoseconds, or ``None`` for weekly/monthly bars."""
    return INTERVALS[normalize_interval(interval)]


def is_intraday(interval: str) -> bool:
    """True for bars shorter than one day."""
    return normalize_interval(interval) not in DAILY_INTERVALS


def normalize_symbol(symbol: str) -> str:
    """Upper-case a ticker and check it can name an HDF5 group.

    Raises:
        DataError: empty symbol or characters other than letters, digits and ``.^=_-``.
    """
    text = str(symbol).strip()
    if not _SYMBOL_CHARS.match(text):
        raise DataError(
            "Symbol must be 1-32 letters, digits or . ^ = _ -",
            found=repr(symbol),
            fix="pass a ticker such as SPY, BRK-B or ^GSPC",
        )
    return text.upper()


def check_timezone(tz: str) -> str:
    """Return ``tz`` if pandas knows the zone.

    Raises:
        DataError: unknown time zone name.
    """
    try:
        pd.Timestamp("2000-01-01", tz=tz)
    except (KeyError, ValueError, TypeError) as err:  # ZoneInfoNotFoundError is a KeyError
        raise DataError(
            "Unknown time zone",
            found=repr(tz),
            fix="use an IANA name such as America/New_York, Europe/London or UTC",
        ) from err
    return tz


def normalize_adjustment(adjustment: str) -> str:
    """Return one of :data:`ADJUSTMENTS` (accepts ``total-return`` and ``split-adjusted``).

    Raises:
        DataError: unknown adjustment mode.
    """
    key = str(adjustment).strip().lower().replace("-", "_")
    key = {
        "split_adjusted": "split",
        "total_return_adjusted": "total_return",
        "adjusted": "total_return",
    }.get(key, key)
    if key not in ADJUSTMENTS:
        raise DataError(
            "Unknown adjustment mode",
            found=repr(adjustment),
            fix=f"use one of {', '.join(ADJUSTMENTS)}",
        )
    return key


def as_utc_ns(index: pd.Index) -> pd.DatetimeIndex:
    """Return ``index`` as a UTC, nanosecond-resolution ``DatetimeIndex`` named ``time``."""
    idx = pd.DatetimeIndex(index)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    return idx.as_unit("ns").rename(INDEX_NAME)


def daily_stamps(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Map daily stamps to 00:00 UTC of their wall-clock date (in their own time zone)."""
    idx = pd.DatetimeIndex(index)
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    return idx.normalize().tz_localize("UTC").as_unit("ns").rename(INDEX_NAME)


def index_nanos(index: pd.DatetimeIndex) -> np.ndarray:
    """The int64 UTC nanoseconds of a tz-aware index (a view, no copy when possible)."""
    return np.asarray(as_utc_ns(index).asi8, dtype=np.int64)


def parse_bound(value: object, *, end: bool = False) -> int | None:
    """Turn a ``start``/``end`` argument into inclusive UTC nanoseconds.

    Naive values are read as UTC. A date-only ``end`` (``"2020-01-31"`` or a
    ``datetime.date``) covers that whole day.

    Raises:
        DataError: the value cannot be parsed as a time.
    """
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        raise DataError(
            "Cannot read the start/end time",
            found=repr(value),
            fix="pass an ISO date such as 2020-01-31 or a pandas Timestamp",
        ) from err
    if stamp is pd.NaT:
        raise DataError("start/end is NaT", found=repr(value), fix="pass a real date or None")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    nanos = int(stamp.as_unit("ns").value)
    date_only = (
        isinstance(value, str)
        and len(value.strip()) <= 10
        or (not isinstance(value, (str, pd.Timestamp)) and type(value).__name__ == "date")
    )
    if end and date_only:
        nanos += 86_400 * 1_000_000_000 - 1
    return nanos
