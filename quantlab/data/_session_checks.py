"""Calendar checks: missing sessions (daily and intraday) and gaps inside sessions."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from quantlab.data._calendar import session_dates_ns, sessions
from quantlab.data._report import Finding

Formatter = Callable[[np.ndarray], list[str]]


def daily_findings(times: np.ndarray, calendar: str, fmt_day: Formatter) -> list[Finding]:
    """Sessions with no bar (error) and bars on non-session dates (error)."""
    if not len(times):
        return []
    schedule = sessions(pd.Timestamp(int(times[0]), unit="ns"), pd.Timestamp(int(times[-1]), unit="ns"), calendar)
    expected = session_dates_ns(schedule)
    missing = np.setdiff1d(expected, times)
    extra = np.setdiff1d(times, expected)
    out = []
    if len(missing):
        out.append(
            Finding(
                "missing_sessions",
                "error",
                len(missing),
                f"{len(missing)} {calendar} session(s) have no bar",
                tuple(fmt_day(missing)),
            )
        )
    if len(extra):
        out.append(
            Finding(
                "non_sessions",
                "error",
                len(extra),
                f"{len(extra)} bar(s) on dates {calendar} was closed",
                tuple(fmt_day(extra)),
            )
        )
    return out


def _runs(values: np.ndarray, step: int) -> list[tuple[int, int]]:
    """Split sorted stamps into runs of consecutive bars: ``[(first, last), ...]``."""
    if not len(values):
        return []
    breaks = np.flatnonzero(np.diff(values) != step)
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [len(values) - 1]))
    return [(int(values[s]), int(values[e])) for s, e in zip(starts, ends, strict=True)]


def intraday_findings(
    times: np.ndarray,
    step: int,
    calendar: str,
    max_gap: int,
    fmt: Formatter,
    fmt_day: Formatter,
) -> list[Finding]:
    """Missing sessions, partial sessions, missing bars, off-grid and out-of-hours bars.

    Args:
        times: sorted unique bar starts (int64 UTC ns).
        step: bar length in ns.
        calendar: exchange_calendars code.
        max_gap: a run of missing bars longer than this (ns) makes a *partial
            session* (error); shorter runs are *missing bars* (warning).
        fmt: renders bar starts the way the source labels them.
        fmt_day: renders session dates.
    """
    if not len(times):
        return []
    day = pd.Timedelta(days=1)
    schedule = sessions(
        pd.Timestamp(int(times[0]), unit="ns") - day,
        pd.Timestamp(int(times[-1]), unit="ns") + day,
        calendar,
    )
    # keep the sessions that overlap the data (stamps are UTC; session dates are local)
    schedule = schedule[(schedule["close"] > times[0]) & (schedule["open"] <= times[-1])]
    opens = schedule["open"].to_numpy()
    closes = schedule["close"].to_numpy()
    days = session_dates_ns(schedule)
    which = np.searchsorted(opens, times, side="right") - 1
    known = which >= 0
    in_session = known & (times < closes[np.maximum(which, 0)])
    on_grid = in_session & ((times - opens[np.maximum(which, 0)]) % step == 0)
    out: list[Finding] = []
    outside = times[~in_session]
    if len(outside):
        out.append(
            Finding(
                "outside_session",
                "info",
                len(outside),
                f"{len(outside)} bar(s) outside regular {calendar} hours (extended hours, or wrong --tz/--label)",
                tuple(fmt(outside)),
            )
        )
    off = times[in_session & ~on_grid]
    if len(off):
        out.append(
            Finding(
                "off_grid",
                "warning",
                len(off),
                f"{len(off)} bar(s) not on the {_duration(step)} grid from the session open",
                tuple(fmt(off)),
            )
        )
    counts = np.bincount(which[on_grid], minlength=len(opens))
    expected = -(-(closes - opens) // step)
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        out.append(
            Finding(
                "missing_sessions",
                "error",
                len(empty),
                f"{len(empty)} {calendar} session(s) have no bar",
                tuple(fmt_day(days[empty])),
            )
        )
    partial, gaps = _session_gaps(
        times[on_grid],
        which[on_grid],
        np.flatnonzero((counts > 0) & (counts < expected)),
        opens,
        expected,
        step,
        max_gap,
        fmt,
        fmt_day,
        days,
    )
    if partial:
        out.append(
            Finding(
                "partial_sessions",
                "error",
                len(partial),
                f"{len(partial)} session(s) with a gap longer than {_duration(max_gap)}",
                tuple(partial),
            )
        )
    if gaps:
        out.append(
            Finding(
                "missing_bars",
                "warning",
                len(gaps),
                f"{len(gaps)} bar(s) missing inside sessions (short gaps)",
                tuple(gaps),
            )
        )
    return out


def _session_gaps(
    times: np.ndarray,
    which: np.ndarray,
    short_sessions: Sequence[int] | np.ndarray,
    opens: np.ndarray,
    expected: np.ndarray,
    step: int,
    max_gap: int,
    fmt: Formatter,
    fmt_day: Formatter,
    days: np.ndarray,
) -> tuple[list[str], list[str]]:
    partial: list[str] = []
    gaps: list[str] = []
    for i in short_sessions:
        grid = opens[i] + step * np.arange(expected[i], dtype=np.int64)
        missing = np.setdiff1d(grid, times[which == i])
        runs = _runs(missing, step)
        long_runs = [(a, b) for a, b in runs if b - a + step > max_gap]
        if long_runs:
            spans = ", ".join(f"{x}-{y}" for (x, y) in (_span(fmt, a, b) for a, b in long_runs))
            have = int(expected[i] - len(missing))
            partial.append(f"{fmt_day(days[[i]])[0]}: {have} of {int(expected[i])} bars, missing {spans}")
        short = np.concatenate(
            [np.arange(a, b + step, step) for a, b in runs if b - a + step <= max_gap] or [np.empty(0, np.int64)]
        )
        gaps.extend(fmt(short.astype(np.int64)))
    return partial, gaps


def _span(fmt: Formatter, first: int, last: int) -> tuple[str, str]:
    a, b = fmt(np.array([first, last], dtype=np.int64))
    return a, b.split(" ")[-1]


def _duration(nanos: int) -> str:
    minutes = nanos / 60e9
    return f"{minutes:g} min" if minutes < 120 else f"{minutes / 60:g} h"
