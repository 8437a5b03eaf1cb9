"""Clocks: the wall clock for paper/live, a manual clock that replay and tests drive.

Everything time-dependent in the bridge (bar freshness, the market-hours gate, the
trading day of the daily loss limit, order-rate windows, end-of-day rules) asks a
:class:`Clock` for ``now()``; timeouts of working orders use ``monotonic()``.
"""

from __future__ import annotations

import time
from typing import Protocol

import pandas as pd


class Clock(Protocol):
    """Source of the current time (tz-aware UTC) and of a monotonic counter (seconds)."""

    def now(self) -> pd.Timestamp: ...

    def monotonic(self) -> float: ...


class WallClock:
    """The real time."""

    def now(self) -> pd.Timestamp:
        return pd.Timestamp.now(tz="UTC")

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that only moves when told to (replay and tests).

    ``monotonic()`` follows the simulated time, so order timeouts expire in simulated
    seconds; ``advance`` and ``set`` never move it backwards.
    """

    def __init__(self, start: pd.Timestamp | str) -> None:
        self._now = _utc(start)
        self._origin = self._now

    def now(self) -> pd.Timestamp:
        return self._now

    def monotonic(self) -> float:
        return float((self._now - self._origin).total_seconds())

    def set(self, when: pd.Timestamp | str) -> None:
        ts = _utc(when)
        if ts > self._now:
            self._now = ts

    def advance(self, seconds: float) -> None:
        self._now = self._now + pd.Timedelta(seconds=seconds)


def _utc(value: pd.Timestamp | str) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
