"""Historical bar store: seeding, IB bar sizes and durations, aggregation.

Bars are labelled by their **start** time, as IB labels them. Daily bars are
stamped by date (sent as ``YYYYMMDD``); intraday bars are tz-aware in the
gateway's time zone (sent as ``YYYYMMDD HH:MM:SS <zone>`` or epoch seconds).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

INTRADAY_SIZES: dict[str, pd.Timedelta] = {
    "1 secs": pd.Timedelta(seconds=1),
    "5 secs": pd.Timedelta(seconds=5),
    "10 secs": pd.Timedelta(seconds=10),
    "15 secs": pd.Timedelta(seconds=15),
    "30 secs": pd.Timedelta(seconds=30),
    "1 min": pd.Timedelta(minutes=1),
    "2 mins": pd.Timedelta(minutes=2),
    "3 mins": pd.Timedelta(minutes=3),
    "5 mins": pd.Timedelta(minutes=5),
    "10 mins": pd.Timedelta(minutes=10),
    "15 mins": pd.Timedelta(minutes=15),
    "20 mins": pd.Timedelta(minutes=20),
    "30 mins": pd.Timedelta(minutes=30),
    "1 hour": pd.Timedelta(hours=1),
    "2 hours": pd.Timedelta(hours=2),
    "3 hours": pd.Timedelta(hours=3),
    "4 hours": pd.Timedelta(hours=4),
    "8 hours": pd.Timedelta(hours=8),
}
DAILY_SIZES = ("1 day", "1 week", "1 month")
_COLS = ("open", "high", "low", "close", "volume", "wap", "count")
_DURATION = re.compile(r"^\s*(\d+)\s+([SDWMY])\s*$")

Row = tuple[str, float, float, float, float, float, float, int]


class HistoryError(Exception):
    """A historical request the gateway answers with an error code."""

    def __init__(self, code: int, message: str, times: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code  # 0: no answer at all (the client's request times out)
        self.message = message
        self.times = times  # None: every request fails; n: the next n requests fail


def parse_duration(text: str) -> pd.DateOffset | pd.Timedelta:
    """``"30 D"``, ``"1 Y"``, ``"3600 S"``... as a calendar span."""
    m = _DURATION.match(text or "")
    if not m:
        raise HistoryError(
            321, f"Error validating request.-'bQ' : cause - Historical data query duration {text!r} is invalid."
        )
    n, unit = int(m.group(1)), m.group(2)
    if unit == "S":
        return pd.Timedelta(seconds=n)
    if unit == "D":
        return pd.Timedelta(days=n)
    if unit == "W":
        return pd.Timedelta(weeks=n)
    if unit == "M":
        return pd.DateOffset(months=n)
    return pd.DateOffset(years=n)


def parse_end(text: str, tz: ZoneInfo) -> pd.Timestamp | None:
    """Parse an endDateTime: empty, ``YYYYMMDD[ HH:MM:SS[ zone]]`` or ``YYYYMMDD-HH:MM:SS`` (UTC)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        if "-" in text and len(text) >= 17 and text[8] == "-":
            return pd.Timestamp(dt.datetime.strptime(text[:17], "%Y%m%d-%H:%M:%S"), tz="UTC").tz_convert(tz)
        parts = text.split()
        if len(parts) == 1:
            return pd.Timestamp(dt.datetime.strptime(parts[0], "%Y%m%d")).tz_localize(tz) + pd.Timedelta(
                days=1, seconds=-1
            )
        naive = dt.datetime.strptime(parts[0] + parts[1], "%Y%m%d%H:%M:%S")
        zone = ZoneInfo(parts[2]) if len(parts) > 2 else tz
        return pd.Timestamp(naive).tz_localize(zone).tz_convert(tz)
    except (ValueError, KeyError) as exc:
        raise HistoryError(321, f"Error validating request.-'bQ' : cause - bad end date {text!r}") from exc


@dataclass
class _Series:
    frame: pd.DataFrame  # columns _COLS, index: naive dates (daily) or tz-aware times
    daily: bool
    base: pd.Timedelta


class BarStore:
    """Per-symbol OHLCV bars answering reqHistoricalData."""

    def __init__(self, tz: ZoneInfo, rth: tuple[dt.time, dt.time] = (dt.time(9, 30), dt.time(16, 0))) -> None:
        self.tz = tz
        self.rth = rth
        self._series: dict[str, _Series] = {}
        self.failures: dict[str, HistoryError] = {}
        self.hmds_down = False  # farms.farm_down("hmds"): requests get no answer

    # --- seeding -----------------------------------------------------------
    def seed(self, symbol: str, frame: pd.DataFrame) -> None:
        """Store bars for ``symbol`` (replaces earlier ones).

        ``frame`` has open/high/low/close[/volume/wap|average/count|barCount]
        columns (any case) and a DatetimeIndex or a date/datetime column.
        Midnight-only naive stamps mean daily bars; naive intraday stamps are
        read in the gateway time zone.
        """
        df = frame.copy()
        df.columns = [str(c).lower().replace(" ", "") for c in df.columns]
        if not isinstance(df.index, pd.DatetimeIndex):
            for name in ("date", "datetime", "time", "timestamp"):
                if name in df.columns:
                    df = df.set_index(name)
                    break
            df.index = pd.DatetimeIndex(pd.to_datetime(df.index))
        df = df.rename(columns={"average": "wap", "vwap": "wap", "barcount": "count", "trades": "count"})
        if "volume" not in df.columns:
            df["volume"] = 0.0
        if "wap" not in df.columns:
            df["wap"] = (df["high"] + df["low"] + df["close"]) / 3.0
        if "count" not in df.columns:
            df["count"] = 0
        idx = pd.DatetimeIndex(df.index)
        daily = idx.tz is None and bool((idx == idx.normalize()).all()) and len(idx) > 0
        if not daily:
            idx = idx.tz_localize(self.tz) if idx.tz is None else idx.tz_convert(self.tz)
        df.index = idx
        df = df[list(_COLS)].astype({c: float for c in _COLS if c != "count"}).astype({"count": np.int64})
        df = df[~df.index.duplicated(keep="last")].sort_index()
        diffs = df.index.to_series().diff().dropna()
        base = (
            pd.Timedelta(days=1)
            if daily
            else (diffs[diffs > pd.Timedelta(0)].min() if len(diffs) else pd.Timedelta(minutes=1))
        )
        self._series[symbol.upper()] = _Series(df, daily, base)

    def has(self, symbol: str) -> bool:
        return symbol.upper() in self._series

    def frame(self, symbol: str) -> pd.DataFrame:
        return self._series[symbol.upper()].frame.copy()

    def last_close(self, symbol: str) -> float | None:
        s = self._series.get(symbol.upper())
        return None if s is None or s.frame.empty else float(s.frame["close"].iloc[-1])

    def last_row(self, symbol: str) -> tuple[pd.Timestamp, dict[str, float]] | None:
        """The latest bar of ``symbol`` as ``(stamp, {open, high, low, close})``, or None."""
        s = self._series.get(symbol.upper())
        if s is None or s.frame.empty:
            return None
        row = s.frame.iloc[-1]
        return s.frame.index[-1], {k: float(row[k]) for k in ("open", "high", "low", "close")}

    def push(self, symbol: str, bar: Mapping[str, object] | pd.Series, time: object = None) -> pd.Timestamp:
        """Insert or replace one bar; returns its normalised timestamp."""
        s = self._series.get(symbol.upper())
        if s is None:
            raise KeyError(f"seed bars for {symbol} before pushing")
        data = {str(k).lower(): v for k, v in dict(bar).items()}
        stamp = (
            time
            if time is not None
            else next(
                (data[k] for k in ("date", "datetime", "time", "timestamp") if k in data),
                getattr(bar, "name", None),
            )
        )
        if stamp is None:
            raise ValueError("push_bar needs a timestamp (date/time key, Series name or time=)")
        ts = pd.Timestamp(stamp)  # type: ignore[arg-type]
        if s.daily:
            ts = (ts.tz_convert(self.tz).tz_localize(None) if ts.tz else ts).normalize()
        else:
            ts = ts.tz_localize(self.tz) if ts.tz is None else ts.tz_convert(self.tz)
        close = float(data["close"])  # type: ignore[arg-type]
        high = float(data.get("high", close))  # type: ignore[arg-type]
        low = float(data.get("low", close))  # type: ignore[arg-type]
        row = {
            "open": float(data.get("open", close)),  # type: ignore[arg-type]
            "high": high,
            "low": low,
            "close": close,
            "volume": float(data.get("volume", 0.0)),  # type: ignore[arg-type]
            "wap": float(data.get("wap", data.get("average", (high + low + close) / 3.0))),  # type: ignore[arg-type]
            "count": int(data.get("count", data.get("barcount", 0))),  # type: ignore[call-overload]
        }
        new = pd.DataFrame([row], index=pd.DatetimeIndex([ts]))
        frame = pd.concat([s.frame[s.frame.index != ts], new]).sort_index()
        s.frame = frame.astype({"count": np.int64})
        return ts

    # --- queries -----------------------------------------------------------
    def query(
        self,
        symbol: str,
        bar_size: str,
        duration: str,
        end: str,
        use_rth: bool,
        what_to_show: str,
        format_date: int,
    ) -> tuple[str, str, list[Row]]:
        """Answer a reqHistoricalData: ``(startStr, endStr, rows)``.

        Raises:
            HistoryError: 321 for invalid parameters, 162 for no data, or a scripted failure
                (``fail_history``; code 0 means the gateway never answers).
        """
        sym = symbol.upper()
        if self.hmds_down:
            raise HistoryError(0, "HMDS data farm connection is broken")
        failure = self.failures.get(sym)
        if failure is not None:
            if failure.times is not None:
                failure.times -= 1
                if failure.times <= 0:
                    del self.failures[sym]
            raise failure
        if bar_size not in INTRADAY_SIZES and bar_size not in DAILY_SIZES:
            raise HistoryError(
                321,
                f"Error validating request.-'bP' : cause - Historical data bar size setting {bar_size!r} is invalid.",
            )
        span = parse_duration(duration)
        end_ts = parse_end(end, self.tz)
        bars, daily = self._bars(sym, bar_size, use_rth)
        if bars.empty:
            raise HistoryError(
                162,
                f"Historical Market Data Service error message:HMDS query returned no data: {sym}@SMART {what_to_show}",
            )
        if daily:
            end_day = bars.index[-1] if end_ts is None else pd.Timestamp(end_ts.date())
            start_day = end_day - span
            window = bars[(bars.index > start_day) & (bars.index <= end_day)]
            start_s, end_s = f"{start_day:%Y%m%d}", f"{end_day:%Y%m%d}"
        else:
            size = INTRADAY_SIZES[bar_size]
            stop = bars.index[-1] + size if end_ts is None else end_ts
            begin = stop - span
            window = bars[(bars.index >= begin) & (bars.index < stop)]
            start_s = f"{begin:%Y%m%d %H:%M:%S} {self.tz.key}"
            end_s = f"{stop:%Y%m%d %H:%M:%S} {self.tz.key}"
        if window.empty:
            raise HistoryError(
                162,
                f"Historical Market Data Service error message:HMDS query returned no data: {sym}@SMART {what_to_show}",
            )
        return start_s, end_s, self._rows(window, daily, what_to_show, format_date)

    def bucket(
        self, symbol: str, bar_size: str, ts: pd.Timestamp, use_rth: bool, what_to_show: str, format_date: int
    ) -> Row | None:
        """The (possibly still forming) bar of ``bar_size`` that contains ``ts``."""
        s = self._series[symbol.upper()]
        if s.daily:
            lo, hi = ts - pd.Timedelta(days=40), ts + pd.Timedelta(days=40)
        else:
            lo, hi = ts - pd.Timedelta(days=2), ts + pd.Timedelta(days=2)
        sub = s.frame[(s.frame.index >= lo) & (s.frame.index <= hi)]
        bars, daily = self._aggregate(sub, s.daily, bar_size, use_rth)
        label = self._label_of(ts, s.daily, bar_size, use_rth)
        if label is None or label not in bars.index:
            return None
        return self._rows(bars.loc[[label]], daily, what_to_show, format_date)[0]

    def head_timestamp(self, symbol: str, format_date: int) -> str | None:
        s = self._series.get(symbol.upper())
        if s is None or s.frame.empty:
            return None
        first = s.frame.index[0]
        if s.daily:
            return f"{first:%Y%m%d}"
        return str(int(first.timestamp())) if format_date == 2 else f"{first:%Y%m%d %H:%M:%S} {self.tz.key}"

    # --- internals ---------------------------------------------------------
    def _bars(self, sym: str, bar_size: str, use_rth: bool) -> tuple[pd.DataFrame, bool]:
        s = self._series.get(sym)
        if s is None:
            raise HistoryError(
                162, f"Historical Market Data Service error message:HMDS query returned no data: {sym}@SMART"
            )
        if s.daily and bar_size in INTRADAY_SIZES:
            raise HistoryError(
                162,
                f"Historical Market Data Service error message:No data of type {bar_size} for {sym}: only daily bars are seeded",
            )
        if not s.daily and bar_size in INTRADAY_SIZES and INTRADAY_SIZES[bar_size] < s.base:
            raise HistoryError(
                162,
                f"Historical Market Data Service error message:No data of bar size {bar_size} for {sym}: seeded bars are {s.base}",
            )
        return self._aggregate(s.frame, s.daily, bar_size, use_rth)

    def _rth_mask(self, idx: pd.DatetimeIndex) -> np.ndarray:
        t = idx.time
        return np.array([self.rth[0] <= x < self.rth[1] for x in t], dtype=bool)

    def _label_of(self, ts: pd.Timestamp, daily: bool, bar_size: str, use_rth: bool) -> pd.Timestamp | None:
        labels = self._labels(pd.DatetimeIndex([ts]), daily, bar_size, use_rth)
        return None if labels is None or len(labels) == 0 else labels[0]

    def _labels(self, idx: pd.DatetimeIndex, daily: bool, bar_size: str, use_rth: bool) -> pd.DatetimeIndex | None:
        if bar_size in INTRADAY_SIZES:
            size = INTRADAY_SIZES[bar_size]
            labels = idx.floor(size)
            if use_rth:
                open_ = idx.normalize() + pd.Timedelta(hours=self.rth[0].hour, minutes=self.rth[0].minute)
                labels = labels.where(labels >= open_, open_)
            return labels
        days = idx if daily else idx.tz_localize(None).normalize()
        if bar_size == "1 day":
            return pd.DatetimeIndex(days)
        if bar_size == "1 week":
            return pd.DatetimeIndex(days - pd.to_timedelta(days.weekday, unit="D"))
        return pd.DatetimeIndex(days.to_period("M").to_timestamp())

    def _aggregate(self, frame: pd.DataFrame, daily: bool, bar_size: str, use_rth: bool) -> tuple[pd.DataFrame, bool]:
        out_daily = bar_size in DAILY_SIZES
        if not daily and use_rth:
            frame = frame[self._rth_mask(pd.DatetimeIndex(frame.index))]
        if frame.empty:
            return frame, out_daily
        labels = self._labels(pd.DatetimeIndex(frame.index), daily, bar_size, use_rth)
        if daily and bar_size == "1 day":
            return frame, True
        g = frame.assign(_pv=frame["wap"] * frame["volume"]).groupby(labels)
        agg = g.agg(
            open=("open", "first"),
            high=("high", "max"),
            low=("low", "min"),
            close=("close", "last"),
            volume=("volume", "sum"),
            _pv=("_pv", "sum"),
            wap=("wap", "mean"),
            count=("count", "sum"),
        )
        weighted = agg["_pv"] / agg["volume"].where(agg["volume"] != 0)
        agg["wap"] = weighted.fillna(agg["wap"])
        return agg[list(_COLS)], out_daily

    def _rows(self, bars: pd.DataFrame, daily: bool, what_to_show: str, format_date: int) -> list[Row]:
        trades = what_to_show.upper() in ("TRADES", "ADJUSTED_LAST", "")
        rows: list[Row] = []
        for ts, r in bars.iterrows():
            stamp = pd.Timestamp(ts)  # type: ignore[arg-type]
            if daily:
                date = f"{stamp:%Y%m%d}"
            elif format_date == 2:
                date = str(int(stamp.timestamp()))
            else:
                date = f"{stamp:%Y%m%d %H:%M:%S} {self.tz.key}"
            vol, wap, count = (float(r["volume"]), float(r["wap"]), int(r["count"])) if trades else (-1.0, -1.0, -1)
            rows.append((date, float(r["open"]), float(r["high"]), float(r["low"]), float(r["close"]), vol, wap, count))
        return rows
