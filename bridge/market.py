"""The exchange calendar (XNYS by default): market hours, bar due times, missing bars.

Bars are labelled by their **start** (UTC): daily bars at 00:00 UTC of the session
date, intraday bars at their first minute, as ``quantlab.data`` stores them and as the
backtest aligns them. A bar's *due time* is the start of the bar that follows it (the
next session's open for the last bar of a session and for daily bars): that is when
the backtest trades on its close, so that is when the bridge acts on it.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import pandas as pd

from quantlab.engine.intervals import Interval

EXCHANGE_TZ = "America/New_York"


class MarketCalendar:
    """Thin cached wrapper over an ``exchange_calendars`` calendar."""

    def __init__(self, name: str = "XNYS", start: str = "1998-01-01") -> None:
        self.name = name
        self._start = start
        self._cal: Any = None

    @property
    def cal(self) -> Any:
        if self._cal is None:
            from quantlab.data._calendar import exchange_calendar

            self._cal = exchange_calendar(self.name, start=self._start, warm=("minutes_nanos", "sessions_nanos"))
        return self._cal

    # --- hours -------------------------------------------------------------
    def is_open(self, now: pd.Timestamp) -> bool:
        """True while the regular session is open at ``now``."""
        try:
            return bool(self.cal.is_open_on_minute(now.floor("min")))
        except Exception:  # noqa: BLE001 - outside the calendar's range: treat as closed
            return False

    def trading_day(self, now: pd.Timestamp) -> dt.date:
        """The exchange-local date of ``now`` (the day the daily loss limit resets)."""
        day: dt.date = now.tz_convert(EXCHANGE_TZ).date()
        return day

    def session_close_of(self, now: pd.Timestamp) -> pd.Timestamp | None:
        """Close of the session open at ``now`` (None when the market is closed)."""
        if not self.is_open(now):
            return None
        session = self.cal.minute_to_session(now.floor("min"))
        return pd.Timestamp(self.cal.session_close(session))

    # --- bars ----------------------------------------------------------------
    def due(self, bar_start: pd.Timestamp, interval: Interval) -> pd.Timestamp:
        """When the bar after ``bar_start`` opens (when the backtest trades on this bar)."""
        return _due(self.cal, pd.Timestamp(bar_start).value, interval.minutes)

    def is_next(self, prev_start: pd.Timestamp, start: pd.Timestamp, interval: Interval) -> bool:
        """True if ``start`` is the bar right after ``prev_start`` (no bar missing)."""
        if interval.minutes == 0:
            nxt = self.cal.next_session(_session_date(prev_start))
            return bool(pd.Timestamp(nxt).date() == pd.Timestamp(start).tz_convert("UTC").date())
        return bool(self.due(prev_start, interval) == start)

    def missing(self, index: pd.DatetimeIndex, interval: Interval) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """Pairs of consecutive bars in ``index`` with at least one bar missing between them."""
        gaps: list[tuple[pd.Timestamp, pd.Timestamp]] = []
        if len(index) < 2:
            return gaps
        if interval.minutes == 0:
            first, last = _session_date(index[0]), _session_date(index[-1])
            sessions = pd.DatetimeIndex(self.cal.sessions_in_range(first, last))
            have = pd.DatetimeIndex([_session_date(t) for t in index])
            absent = sessions.difference(have)
            for day in absent:
                pos = int(have.searchsorted(day))
                gaps.append((index[max(pos - 1, 0)], index[min(pos, len(index) - 1)]))
            return gaps
        for a, b in zip(index[:-1], index[1:], strict=True):
            if not self.is_next(a, b, interval):
                gaps.append((a, b))
        return gaps


def _session_date(ts: pd.Timestamp) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    t = t.tz_convert("UTC") if t.tz is not None else t
    return pd.Timestamp(t.date())


@functools.lru_cache(maxsize=8192)
def _due(cal: Any, start_ns: int, minutes: int) -> pd.Timestamp:
    start = pd.Timestamp(start_ns, tz="UTC")
    if minutes == 0:
        session = cal.date_to_session(_session_date(start), direction="next")
        return pd.Timestamp(cal.session_open(cal.next_session(session)))
    size = pd.Timedelta(minutes=minutes)
    nxt = start.floor(size) + size
    try:
        session = cal.minute_to_session(start, direction="previous")
    except Exception:  # noqa: BLE001 - outside the calendar: plain arithmetic
        return nxt
    close = pd.Timestamp(cal.session_close(session))
    if nxt >= close:
        return pd.Timestamp(cal.session_open(cal.next_session(session)))
    return nxt
