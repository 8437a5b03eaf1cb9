"""Bar windows: the last N completed bars of a symbol plus the bar still forming.

A bar is **complete** when a newer bar starts (IB's ``hasNewBar``), or when the clock is
``complete_grace`` seconds past its due time with no newer bar (the last bar before a
quiet period). Only complete bars reach the strategy. Seeds and every appended bar are
validated (finite, positive prices; sorted; no missing bars per the exchange calendar);
a window with a missing bar refuses to produce prices until the gap has left it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bridge.brokers.protocol import Bar
from bridge.errors import StaleData
from bridge.market import MarketCalendar
from quantlab.engine.intervals import Interval
from quantlab.engine.signals import PriceArrays, price_arrays
from quantlab.errors import DataError

_FIELDS = ("open", "high", "low", "close", "volume")


class BarWindow:
    """Completed bars of one symbol (trailing ``capacity``; 0 keeps everything)."""

    def __init__(self, symbol: str, interval: Interval, calendar: MarketCalendar, capacity: int = 0) -> None:
        self.symbol = symbol
        self.interval = interval
        self.calendar = calendar
        self.capacity = int(capacity)
        self._times = np.empty(0, dtype=np.int64)
        self._cols = {f: np.empty(0, dtype=np.float64) for f in _FIELDS}
        self._n = 0
        self.forming: Bar | None = None
        self.gaps: list[tuple[pd.Timestamp, pd.Timestamp]] = []

    # --- filling -----------------------------------------------------------------
    def seed(self, frame: pd.DataFrame, last_is_complete: bool) -> None:
        """Replace the window with ``frame`` (validated); its last row may be the forming bar."""
        if frame.empty:
            raise StaleData(f"no bars for {self.symbol}", fix="never trade without history")
        frame = frame.sort_index()
        try:
            arrays = price_arrays(frame, self.symbol)
        except DataError as err:
            raise StaleData(f"invalid bars for {self.symbol}: {err.what}", found=err.found, fix=err.fix) from None
        n = len(arrays) if last_is_complete else len(arrays) - 1
        self.forming = None
        if not last_is_complete:
            self.forming = Bar(arrays.index[-1], *(float(arrays.field(f)[-1]) for f in _FIELDS))
        self._times = np.asarray(arrays.index[:n].as_unit("ns").asi8, dtype=np.int64).copy()
        self._cols = {f: np.ascontiguousarray(arrays.field(f)[:n]).copy() for f in _FIELDS}
        self._n = n
        self._trim()
        self.gaps = self.calendar.missing(self.index, self.interval) if self._n > 1 else []

    def add_complete(self, bar: Bar) -> bool:
        """Append a completed bar; returns True if it is new (a revision returns False)."""
        _check(bar, self.symbol)
        t = pd.Timestamp(bar.time).value
        if self._n and t < self._times[self._n - 1]:
            return False
        if self._n and t == self._times[self._n - 1]:
            self._set(self._n - 1, bar)
            return False
        if self._n and not self.calendar.is_next(self.last_time, bar.time, self.interval):
            self.gaps.append((self.last_time, bar.time))
        self._grow()
        self._times[self._n] = t
        self._set(self._n, bar)
        self._n += 1
        if self.forming is not None and self.forming.time <= bar.time:
            self.forming = None
        self._trim()
        return True

    def set_forming(self, bar: Bar) -> None:
        """Record the bar still forming (ignored if it is not newer than the last complete one)."""
        if not self._n or pd.Timestamp(bar.time).value > self._times[self._n - 1]:
            self.forming = bar

    def promote_forming(self) -> Bar | None:
        """Treat the forming bar as complete (the clock says it is); returns it."""
        bar, self.forming = self.forming, None
        if bar is not None and self.add_complete(bar):
            return bar
        return None

    # --- reading --------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    @property
    def last_time(self) -> pd.Timestamp | None:
        return pd.Timestamp(int(self._times[self._n - 1]), tz="UTC") if self._n else None

    @property
    def last_close(self) -> float:
        return float(self._cols["close"][self._n - 1]) if self._n else float("nan")

    def last_price(self) -> float:
        """The latest known price: the forming bar's close, else the last complete close."""
        return self.forming.close if self.forming is not None else self.last_close

    @property
    def index(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self._times[: self._n].view("datetime64[ns]")).tz_localize("UTC")

    def gap_in_window(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        if not self._n:
            return None
        start = self._n - self.capacity if self.capacity and self._n > self.capacity else 0
        first = pd.Timestamp(int(self._times[start]), tz="UTC")
        inside = [g for g in self.gaps if g[1] > first]
        return inside[-1] if inside else None

    def prices(self) -> PriceArrays:
        """The completed bars as the engine's validated arrays (no copies of the data)."""
        n = self._n
        return PriceArrays(self.symbol, self.index, *(self._cols[f][:n] for f in _FIELDS))

    # --- internals ---------------------------------------------------------------------
    def _set(self, i: int, bar: Bar) -> None:
        for f in _FIELDS:
            self._cols[f][i] = float(getattr(bar, f))

    def _grow(self) -> None:
        if self._n < len(self._times):
            return
        size = max(16, 2 * len(self._times))
        self._times = np.resize(self._times, size)
        self._cols = {f: np.resize(a, size) for f, a in self._cols.items()}

    def _trim(self) -> None:
        if self.capacity and self._n > 2 * self.capacity:
            drop = self._n - self.capacity
            self._times = self._times[drop : self._n].copy()
            self._cols = {f: a[drop : self._n].copy() for f, a in self._cols.items()}
            self._n = self.capacity

    def window(self) -> PriceArrays:
        """The trailing ``capacity`` completed bars (all of them when capacity is 0)."""
        if not self.capacity or self._n <= self.capacity:
            return self.prices()
        start = self._n - self.capacity
        idx = pd.DatetimeIndex(self._times[start : self._n].view("datetime64[ns]")).tz_localize("UTC")
        return PriceArrays(self.symbol, idx, *(self._cols[f][start : self._n] for f in _FIELDS))


def _check(bar: Bar, symbol: str) -> None:
    values = (bar.open, bar.high, bar.low, bar.close)
    if not all(np.isfinite(v) and v > 0 for v in values) or not np.isfinite(bar.volume):
        raise StaleData(
            f"invalid bar for {symbol} at {bar.time}",
            found=f"OHLC {values}, volume {bar.volume}",
            fix="the feed sent NaN or non-positive prices; never trade on them",
        )
