"""Parse the time column of a CSV: ISO first, an explicit format on request, never a guess.

Why: pandas' ``format="mixed"`` parses each cell on its own, so a file holding
``01/02/2020`` and ``13/01/2020`` comes out part month-first (2 January) and part
day-first (13 January) without a word. Numeric dates whose first two fields are
both 12 or less can be read either way; they are refused, with the lines named,
unless the caller passes ``date_format`` (CLI ``--date-format``). Non-numeric
formats (``Jan 2, 2020``) are unambiguous and still parse as before.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from quantlab.errors import DataError

OFFSET = re.compile(r"(?:[+-]\d\d:?\d\d|Z)$")
#: Day and month first in either order: 01/02/2020, 1.2.20, 01-02-2020 09:30.
_NUMERIC_DATE = re.compile(r"^(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})(?:$|[ T])")
_SHOWN = 5
DAY_FIRST = "%d/%m/%Y"
MONTH_FIRST = "%m/%d/%Y"


def _lines(rows: np.ndarray, text: pd.Series) -> str:
    shown = ", ".join(f"line {int(r) + 2} {text.iloc[int(r)]!r}" for r in rows[:_SHOWN])
    more = f" and {len(rows) - _SHOWN} more" if len(rows) > _SHOWN else ""
    return shown + more


def _refuse_ambiguous(stripped: pd.Series, path: Path) -> None:
    """Raise when numeric dates could be day-first or month-first (see module docstring)."""
    parts = stripped.str.extract(_NUMERIC_DATE)
    numeric = parts[0].notna().to_numpy()
    if not numeric.any():
        return
    first = pd.to_numeric(parts[0], errors="coerce").to_numpy()
    second = pd.to_numeric(parts[2], errors="coerce").to_numpy()
    with np.errstate(invalid="ignore"):
        ambiguous = numeric & (first <= 12) & (second <= 12) & (first != second)
        day_first = numeric & (first > 12)
        month_first = numeric & (second > 12)
    if not ambiguous.any() and not (day_first.any() and month_first.any()):
        return
    found = []
    if ambiguous.any():
        found.append(f"{int(ambiguous.sum())} date(s) read either way: {_lines(np.flatnonzero(ambiguous), stripped)}")
    if day_first.any():
        found.append(f"{int(day_first.sum())} can only be day-first: {_lines(np.flatnonzero(day_first), stripped)}")
    if month_first.any():
        found.append(
            f"{int(month_first.sum())} can only be month-first: {_lines(np.flatnonzero(month_first), stripped)}"
        )
    sep = parts[1].dropna().iloc[0]
    day, month = DAY_FIRST.replace("/", sep), MONTH_FIRST.replace("/", sep)
    hint = (
        f"--date-format '{day}' (this file has day-first dates)"
        if day_first.any() and not month_first.any()
        else f"--date-format '{month}' (this file has month-first dates)"
        if month_first.any() and not day_first.any()
        else f"--date-format '{day}' (day first) or '{month}' (month first)"
    )
    raise DataError(
        f"{path.name}: ambiguous dates (day-first or month-first?)",
        found="; ".join(found),
        fix=f"say how the file writes dates with {hint}, or write ISO dates (2020-01-31); "
        "mixed files must be fixed at the source",
    )


def _explicit(stripped: pd.Series, text: pd.Series, path: Path, date_format: str) -> tuple[pd.DatetimeIndex, bool]:
    try:
        parsed = pd.to_datetime(stripped, format=date_format, errors="coerce", utc=True)
    except (ValueError, TypeError) as err:
        raise DataError(
            "Invalid --date-format",
            found=f"{date_format!r}: {err}",
            fix="use strftime codes, e.g. '%d/%m/%Y' or '%m/%d/%Y %H:%M'",
        ) from err
    bad = parsed.isna().to_numpy()
    if bad.any():
        raise DataError(
            f"{path.name}: {int(bad.sum())} date/time value(s) do not match --date-format {date_format!r}",
            found=_lines(np.flatnonzero(bad), text),
            fix="fix those rows, or pass the format the whole file uses",
        )
    aware = "%z" in date_format or "%Z" in date_format
    index = pd.DatetimeIndex(parsed)
    return (index if aware else index.tz_localize(None)), aware


def parse_times(text: pd.Series, path: Path, date_format: str | None = None) -> tuple[pd.DatetimeIndex, bool]:
    """Parse a CSV's time column; return the stamps and whether they carried an offset.

    Raises:
        DataError: empty cells, unparseable values, ambiguous day/month order
            (without ``date_format``), or values not matching ``date_format``.
    """
    stripped = text.str.strip()
    empty = (stripped == "").to_numpy()
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        raise DataError(
            f"{path.name}: empty date/time cell",
            found=f"line {row + 2}",
            fix="fill in or remove that row",
        )
    if date_format:
        return _explicit(stripped, text, path, date_format)
    aware = bool(stripped.str.contains(OFFSET).any())
    try:
        parsed = pd.to_datetime(stripped, format="ISO8601", utc=aware, errors="coerce")
    except (ValueError, TypeError):
        parsed = pd.Series(pd.NaT, index=stripped.index)
    if parsed.isna().any():
        _refuse_ambiguous(stripped, path)
        parsed = pd.to_datetime(stripped, format="mixed", utc=aware, errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path.name}: cannot parse date/time",
            found=f"line {row + 2}: {text.iloc[row]!r} ({int(bad.sum())} such value(s))",
            fix="write ISO times such as 2020-01-31 or 2019-12-13 11:00:00-05:00, or pass --date-format",
        )
    return pd.DatetimeIndex(parsed), aware
