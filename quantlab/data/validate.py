"""Reject bad bar frames before the store, a kernel or a report ever sees them.

:func:`validate_bars` is the single gate: it returns the canonical frame (UTC
nanosecond index named ``time``, float64 columns in a fixed order) or raises a
:class:`~quantlab.errors.DataError` that names the column, the count, the first
offending time and the fix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from quantlab.data._schema import (
    ALL_FIELDS,
    FIELDS,
    INDEX_NAME,
    OPTIONAL_FIELDS,
    PRICE_FIELDS,
    as_utc_ns,
    is_intraday,
    normalize_interval,
)
from quantlab.errors import DataError

_CHECK_HINT = "run `quantlab data check --file PATH` to list every problem"


def canonical_columns(frame: pd.DataFrame) -> dict[str, str]:
    """Map canonical field names to the frame's columns (case- and space-insensitive)."""
    found: dict[str, str] = {}
    for column in frame.columns:
        key = str(column).strip().lower().replace(" ", "_")
        key = {"adjclose": "adj_close", "vol": "volume"}.get(key, key)
        if key in ALL_FIELDS and key not in found:
            found[key] = column
    return found


def _first_time(index: pd.DatetimeIndex, mask: np.ndarray) -> str:
    where = np.flatnonzero(mask)
    return str(index[where[0]]) if where.size else "?"


def _as_float(values: pd.Series, column: str, name: str) -> np.ndarray:
    if values.dtype == np.float64:
        return np.asarray(values.to_numpy(), dtype=np.float64)
    try:
        return np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    except (TypeError, ValueError) as err:
        bad = values[pd.to_numeric(values, errors="coerce").isna() & values.notna()]
        raise DataError(
            f"{name}: column {column!r} is not numeric",
            found=f"dtype {values.dtype}, e.g. {bad.iloc[0]!r}" if len(bad) else f"dtype {values.dtype}",
            fix="convert it with pd.to_numeric or fix the source file",
        ) from err


def ohlcv_columns(frame: pd.DataFrame, name: str) -> dict[str, Any]:
    """Map ``open high low close volume`` (+ ``adj_close``) to the frame's columns
    (case-insensitive); the frame must have all five and a DatetimeIndex."""
    columns = canonical_columns(frame)
    missing = [f for f in FIELDS if f not in columns]
    if missing:
        raise DataError(
            f"{name}: missing column(s) {', '.join(missing)}",
            found=f"columns {list(map(str, frame.columns))}",
            fix="provide open, high, low, close and volume (case-insensitive)",
        )
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError(
            f"{name}: the index must be a DatetimeIndex",
            found=type(frame.index).__name__,
            fix="set the time column as index with pd.to_datetime",
        )
    return columns


def validate_bars(frame: pd.DataFrame, *, interval: str | None = None, name: str = "bars") -> pd.DataFrame:
    """Check a bar frame and return it in canonical form.

    Args:
        frame: OHLCV bars with a tz-aware ``DatetimeIndex`` (bar start times).
            Column names are matched case-insensitively; ``Adj Close`` becomes
            ``adj_close``; other columns are dropped.
        interval: if given, daily intervals must be stamped at 00:00 UTC.
        name: how to call the frame in messages (e.g. ``"SPY 1d"``).

    Returns:
        A new DataFrame: UTC nanosecond index named ``time``, float64 columns
        ``open high low close volume`` (+ ``adj_close`` when present and not all NaN).

    Raises:
        DataError: missing columns, non-numeric or NaN/inf values, non-positive
            prices, negative volume, OHLC relations broken, naive, unsorted or
            duplicate time stamps.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(
            f"{name}: expected a pandas DataFrame",
            found=type(frame).__name__,
            fix="pass a DataFrame of OHLCV bars",
        )
    columns = ohlcv_columns(frame, name)
    if frame.index.tz is None:
        raise DataError(
            f"{name}: the time index has no time zone",
            found=f"naive stamps starting {frame.index[0] if len(frame) else 'n/a'}",
            fix="localize it, e.g. df.tz_localize('America/New_York') or 'UTC'",
        )
    index = as_utc_ns(frame.index)
    data: dict[str, np.ndarray] = {}
    for field in ALL_FIELDS:
        if field in columns:
            data[field] = _as_float(frame[columns[field]], field, name)
    if "adj_close" in data and np.isnan(data["adj_close"]).all():
        del data["adj_close"]
    _check_index(index, name, interval)
    _check_values(index, data, name)
    out = pd.DataFrame(data, index=index, copy=False)
    out.index.name = INDEX_NAME
    return out


def _check_index(index: pd.DatetimeIndex, name: str, interval: str | None) -> None:
    nanos = index.asi8
    steps = np.diff(nanos)
    if (steps == 0).any():
        dup = index.duplicated()
        raise DataError(
            f"{name}: {int(dup.sum())} duplicate time stamp(s)",
            found=f"first {index[dup][0]}",
            fix=f"de-duplicate (import --dedupe first|last) or {_CHECK_HINT}",
        )
    if (steps < 0).any():
        where = int(np.flatnonzero(steps < 0)[0])
        raise DataError(
            f"{name}: time stamps are not sorted ({int((steps < 0).sum())} backward step(s))",
            found=f"{index[where]} followed by {index[where + 1]}",
            fix=f"sort by time (import --sort) or {_CHECK_HINT}",
        )
    if interval is not None and not is_intraday(normalize_interval(interval)):
        off = nanos % 86_400_000_000_000 != 0
        if off.any():
            raise DataError(
                f"{name}: daily bars must be stamped 00:00 UTC of the session date",
                found=f"{int(off.sum())} stamp(s) with a time of day, first {_first_time(index, off)}",
                fix="import with the right --interval, or keep only the date part",
            )


def _check_values(index: pd.DatetimeIndex, data: dict[str, np.ndarray], name: str) -> None:
    for field, values in data.items():
        bad = ~np.isfinite(values)
        if bad.any():
            kind = "NaN" if np.isnan(values[bad]).all() else "NaN/inf"
            raise DataError(
                f"{name}: column {field!r} has {int(bad.sum())} {kind} value(s)",
                found=f"first at {_first_time(index, bad)}",
                fix=f"drop or fill those rows (df.dropna() or import --drop-empty for empty rows) or {_CHECK_HINT}",
            )
    for field in (*PRICE_FIELDS, *[f for f in OPTIONAL_FIELDS if f in data]):
        bad = data[field] <= 0
        if bad.any():
            raise DataError(
                f"{name}: column {field!r} has {int(bad.sum())} non-positive price(s)",
                found=f"{data[field][bad][0]!r} at {_first_time(index, bad)}",
                fix=f"prices must be > 0: fix or drop those rows; {_CHECK_HINT}",
            )
    bad = data["volume"] < 0
    if bad.any():
        raise DataError(
            f"{name}: {int(bad.sum())} negative volume(s)",
            found=f"first at {_first_time(index, bad)}",
            fix="volume must be >= 0",
        )
    o, h, low, c = (data[f] for f in PRICE_FIELDS)
    high_bad = h < np.maximum(o, c)
    low_bad = low > np.minimum(o, c)
    for bad, what in (
        (high_bad, "high below max(open, close)"),
        (low_bad, "low above min(open, close)"),
    ):
        if bad.any():
            raise DataError(
                f"{name}: {int(bad.sum())} bar(s) with {what}",
                found=f"first at {_first_time(index, bad)}",
                fix=f"correct the source; {_CHECK_HINT}",
            )
