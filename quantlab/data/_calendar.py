"""Exchange sessions from ``exchange_calendars`` (imported lazily: it is slow to import)."""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from quantlab.errors import DataError

if TYPE_CHECKING:
    from exchange_calendars import ExchangeCalendar

DEFAULT_CALENDAR = "XNYS"


def exchange_calendar(name: str, start: str, end: str | None = None, warm: tuple[str, ...] = ()) -> ExchangeCalendar:
    """``exchange_calendars.get_calendar`` without the pandas deprecations it trips.

    exchange_calendars 4.13 reads ``.values`` of tz-aware data, which pandas 3.1 deprecates
    (``Pandas4Warning``, a ``DeprecationWarning``), when it builds a calendar and when it
    first computes some cached properties. The warning is theirs, not the caller's, so it
    is silenced here: name those properties in ``warm`` (e.g. ``"minutes_nanos"``) to
    compute them now, under the same filter.
    """
    import exchange_calendars as xcals

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        cal = xcals.get_calendar(name, start=start, end=end)
        for attr in warm:
            getattr(cal, attr)
        return cal


@functools.lru_cache(maxsize=8)
def _calendar(name: str, first_year: int, last_year: int) -> ExchangeCalendar:
    import exchange_calendars as xcals

    try:
        return exchange_calendar(name, f"{first_year}-01-01", f"{last_year}-12-31")
    except xcals.errors.InvalidCalendarName as err:
        raise DataError(
            "Unknown exchange calendar",
            found=repr(name),
            fix="use an exchange_calendars code such as XNYS, XNAS, XLON",
        ) from err
    except ValueError as err:  # bounds outside what the calendar knows
        raise DataError(
            f"The {name} calendar does not cover {first_year}-{last_year}",
            found=str(err),
            fix="check the dates",
        ) from err


def sessions(first: pd.Timestamp, last: pd.Timestamp, calendar: str = DEFAULT_CALENDAR) -> pd.DataFrame:
    """Sessions whose date lies in ``[first.date(), last.date()]``.

    Returns:
        A frame indexed by naive session date with int64 UTC-nanosecond columns
        ``open`` and ``close`` (early closes included).
    """
    first_day = pd.Timestamp(first.date())
    last_day = pd.Timestamp(last.date())
    cal = _calendar(calendar, first_day.year - 1, last_day.year + 1)
    schedule = cal.schedule.loc[first_day:last_day]
    out = pd.DataFrame(
        {
            "open": pd.DatetimeIndex(schedule["open"]).tz_convert("UTC").as_unit("ns").asi8,
            "close": pd.DatetimeIndex(schedule["close"]).tz_convert("UTC").as_unit("ns").asi8,
        },
        index=pd.DatetimeIndex(schedule.index).tz_localize(None).as_unit("ns"),
    )
    return out


def session_dates_ns(schedule: pd.DataFrame) -> np.ndarray:
    """Session dates as int64 nanoseconds of 00:00 UTC (the daily-bar stamp)."""
    return np.asarray(schedule.index.as_unit("ns").asi8, dtype=np.int64)
