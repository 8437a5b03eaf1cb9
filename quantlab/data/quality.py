"""Data-quality checks: a frame, a CSV file or stored series in, a report out.

Severity policy (``quantlab data check`` exits 1 when any **error** is found;
``--strict`` also fails on warnings; infos never fail):

========================= ======== ================================================
code                      severity meaning
========================= ======== ================================================
damaged                   error    the store cannot be read there (h5py: corrupt header, B-tree or chunk)
no_bars                   error    the series or file holds no bars at all
empty_rows                error    every OHLCV cell empty
nan_values                error    some OHLCV cells empty / NaN / inf
duplicates                error    rows repeating an earlier time stamp
conflicting_duplicates    error    repeated stamps whose values differ
backwards                 error    time goes back from one row to the next
ohlc_relation             error    high < max(open, close), low > min(open, close) or high < low
nonpositive_prices        error    a price <= 0
negative_volume           error    volume < 0
missing_sessions          error    an exchange session without any bar
non_sessions              error    a daily bar on a date the exchange was closed
partial_sessions          error    an intraday gap longer than ``max_gap`` (default 30 min)
zero_volume               warning  a bar with volume 0 (prices may still move)
missing_bars              warning  short intraday gaps (minutes without trades exist)
off_grid                  warning  intraday bar not on the interval grid from the open
split_gaps                error    raw (as-traded) bars: a stock split (docs/data.md, Split detection)
extreme_returns           warning  intraday close-to-close move above ``max_return`` (3%)
                          info     daily move above ``max_return`` (25%): real events happen
outside_session           info     intraday bar outside regular hours (extended-hours data)
========================= ======== ================================================

Times in findings are local exchange times labelled the way the source labels
bars (``label="end"`` shows bar ends, as in the masonblier files), so they can be
matched against the source file and its PROVENANCE notes; CSV findings add line
numbers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from quantlab.data._h5 import DAMAGE_FIX
from quantlab.data._report import Finding, QualityReport
from quantlab.data._schema import (
    FIELDS,
    PRICE_FIELDS,
    check_timezone,
    daily_stamps,
    interval_nanos,
    is_intraday,
    normalize_interval,
    normalize_symbol,
)
from quantlab.data._session_checks import daily_findings, intraday_findings
from quantlab.data._splits import split_gap_finding
from quantlab.data.store import SeriesInfo
from quantlab.errors import StoreError

DEFAULT_MAX_GAP = pd.Timedelta(minutes=30)
DAILY_MAX_RETURN = 0.25
INTRADAY_MAX_RETURN = 0.03


class _Clock:
    """Renders UTC bar starts as the source shows them."""

    def __init__(self, interval: str, tz: str, label: str) -> None:
        self.daily = not is_intraday(interval)
        self.tz = tz
        self.shift = (interval_nanos(interval) or 0) if label == "end" and not self.daily else 0

    def times(self, nanos: np.ndarray) -> list[str]:
        if self.daily:
            return self.days(nanos)
        idx = pd.DatetimeIndex(np.asarray(nanos, dtype=np.int64) + self.shift, tz="UTC").tz_convert(self.tz)
        fmt = "%Y-%m-%d %H:%M:%S" if (idx.second != 0).any() else "%Y-%m-%d %H:%M"
        return list(idx.strftime(fmt))

    def days(self, nanos: np.ndarray) -> list[str]:
        return list(pd.DatetimeIndex(np.asarray(nanos, dtype=np.int64)).strftime("%Y-%m-%d"))


def _at(clock: _Clock, times: np.ndarray, lines: np.ndarray | None, rows: np.ndarray) -> tuple[str, ...]:
    shown = clock.times(times[rows])
    if lines is None:
        return tuple(shown)
    return tuple(f"{s} (line {int(n)})" for s, n in zip(shown, lines[rows], strict=True))


def _row_findings(
    times: np.ndarray, values: dict[str, np.ndarray], lines: np.ndarray | None, clock: _Clock
) -> list[Finding]:
    out: list[Finding] = []
    block = np.column_stack([values[f] for f in FIELDS])
    empty = np.isnan(block).all(axis=1)
    if empty.any():
        out.append(
            Finding(
                "empty_rows",
                "error",
                int(empty.sum()),
                f"{int(empty.sum())} row(s) with every OHLCV cell empty",
                _at(clock, times, lines, np.flatnonzero(empty)),
            )
        )
    partial = ~np.isfinite(block).all(axis=1) & ~empty
    if partial.any():
        out.append(
            Finding(
                "nan_values",
                "error",
                int(partial.sum()),
                f"{int(partial.sum())} row(s) with some OHLCV cells empty, NaN or inf",
                _at(clock, times, lines, np.flatnonzero(partial)),
            )
        )
    back = np.flatnonzero(np.diff(times) < 0) + 1
    if len(back):
        examples = tuple(
            f"{a} after {b}" for a, b in zip(_at(clock, times, lines, back), clock.times(times[back - 1]), strict=True)
        )
        out.append(
            Finding(
                "backwards",
                "error",
                len(back),
                f"time goes backwards {len(back)} time(s)",
                examples,
            )
        )
    dup = pd.Index(times).duplicated(keep="first")
    if dup.any():
        distinct = len(np.unique(times[dup]))
        out.append(
            Finding(
                "duplicates",
                "error",
                int(dup.sum()),
                f"{int(dup.sum())} row(s) repeat an earlier time stamp ({distinct} distinct stamps affected)",
                _at(clock, times, lines, np.flatnonzero(dup)),
            )
        )
        conflicts = _conflicting(times, block, empty)
        if len(conflicts):
            out.append(
                Finding(
                    "conflicting_duplicates",
                    "error",
                    len(conflicts),
                    f"{len(conflicts)} repeated stamp(s) whose copies carry different values",
                    tuple(clock.times(conflicts)),
                )
            )
    o, h, lo, c = (values[f] for f in PRICE_FIELDS)
    with np.errstate(invalid="ignore"):
        bad = (h < np.maximum(o, c)) | (lo > np.minimum(o, c)) | (h < lo)
        if bad.any():
            out.append(
                Finding(
                    "ohlc_relation",
                    "error",
                    int(bad.sum()),
                    f"{int(bad.sum())} bar(s) break high >= max(open, close) >= min(open, close) >= low",
                    _at(clock, times, lines, np.flatnonzero(bad)),
                )
            )
        bad = (np.column_stack([values[f] for f in PRICE_FIELDS]) <= 0).any(axis=1)
        if bad.any():
            out.append(
                Finding(
                    "nonpositive_prices",
                    "error",
                    int(bad.sum()),
                    f"{int(bad.sum())} bar(s) with a price <= 0",
                    _at(clock, times, lines, np.flatnonzero(bad)),
                )
            )
        volume = values["volume"]
        if (volume < 0).any():
            rows = np.flatnonzero(volume < 0)
            out.append(
                Finding(
                    "negative_volume",
                    "error",
                    len(rows),
                    f"{len(rows)} bar(s) with negative volume",
                    _at(clock, times, lines, rows),
                )
            )
        if (volume == 0).any():
            rows = np.flatnonzero(volume == 0)
            out.append(
                Finding(
                    "zero_volume",
                    "warning",
                    len(rows),
                    f"{len(rows)} bar(s) with zero volume",
                    _at(clock, times, lines, rows),
                )
            )
    return out


def _conflicting(times: np.ndarray, block: np.ndarray, empty: np.ndarray) -> np.ndarray:
    frame = pd.DataFrame(block[~empty], index=times[~empty])
    repeated = frame[frame.index.duplicated(keep=False)]
    if repeated.empty:
        return np.empty(0, np.int64)
    distinct = repeated.groupby(level=0).nunique(dropna=False).max(axis=1)
    return np.asarray(distinct.index[distinct.to_numpy() > 1], dtype=np.int64)


def _return_findings(
    times: np.ndarray, close: np.ndarray, interval: str, max_return: float | None, clock: _Clock
) -> list[Finding]:
    if len(close) < 2:
        return []
    daily = not is_intraday(interval)
    limit = max_return if max_return is not None else (DAILY_MAX_RETURN if daily else INTRADAY_MAX_RETURN)
    with np.errstate(divide="ignore", invalid="ignore"):
        moves = close[1:] / close[:-1] - 1.0
    rows = np.flatnonzero(np.abs(moves) > limit)
    if not len(rows):
        return []
    examples = tuple(f"{t} ({m:+.1%})" for t, m in zip(clock.times(times[rows + 1]), moves[rows], strict=True))
    severity = "info" if daily else "warning"
    note = "; large daily moves are often real events (crashes, splits in raw data)" if daily else ""
    return [
        Finding(
            "extreme_returns",
            severity,
            len(rows),
            f"{len(rows)} close-to-close move(s) beyond {limit:.0%}{note}",
            examples,
        )
    ]


def check_frame(
    frame: pd.DataFrame,
    *,
    interval: str | None = None,
    tz: str = "America/New_York",
    label: str = "start",
    lines: np.ndarray | Sequence[int] | None = None,
    name: str = "bars",
    calendar: str | None = "XNYS",
    max_gap: pd.Timedelta = DEFAULT_MAX_GAP,
    max_return: float | None = None,
    adjustment: str | None = None,
) -> QualityReport:
    """Check raw bars (duplicates, unsorted and empty rows allowed) and report.

    Args:
        frame: bars indexed by bar start (tz-aware; naive stamps are read in ``tz``),
            columns matched case-insensitively (``Open`` .. ``Volume``).
        interval: bar interval; inferred from the stamps when ``None``.
        tz: exchange time zone used to show times (and to read naive stamps).
        label: show times as bar ``"start"`` or bar ``"end"`` (how the source labels them).
        lines: file line number of each row, shown next to row findings.
        name: what to call the data in the report.
        calendar: exchange_calendars code for session checks, ``None`` to skip them.
        max_gap: intraday gaps longer than this are partial sessions (errors).
        max_return: close-to-close threshold (default 25% daily, 3% intraday).
        adjustment: ``"raw"`` (as traded) adds the ``split_gaps`` error for
            overnight gaps the size of a stock split (see ``_splits``).
    """
    from quantlab.data.csvio import infer_interval
    from quantlab.data.validate import ohlcv_columns

    check_timezone(tz)
    columns = ohlcv_columns(frame, name)
    interval = normalize_interval(interval) if interval else infer_interval(frame.index)
    if is_intraday(interval):
        index = frame.index if frame.index.tz is not None else frame.index.tz_localize(tz)
    else:
        index = daily_stamps(frame.index)  # the session date, at 00:00 UTC
    times = np.asarray(index.tz_convert("UTC").as_unit("ns").asi8, dtype=np.int64)
    values = {
        f: pd.to_numeric(frame[columns[f]], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan) for f in FIELDS
    }
    line_numbers = None if lines is None else np.asarray(lines)
    clock = _Clock(interval, tz, label)
    if not len(times):
        empty = Finding("no_bars", "error", 0, "no bars at all: an empty series is not clean data")
        return QualityReport(name, interval, 0, tz, label, "", "", [empty])
    findings = _row_findings(times, values, line_numbers, clock)
    keep = ~np.isnan(np.column_stack([values[f] for f in FIELDS])).all(axis=1)
    bars = pd.DataFrame({"open": values["open"][keep], "close": values["close"][keep]}, index=times[keep])
    if "adj_close" in columns:  # the split detector's best evidence (see _splits)
        bars["adj_close"] = pd.to_numeric(frame[columns["adj_close"]], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )[keep]
    bars = bars[~bars.index.duplicated(keep="last")].sort_index()
    clean = bars["close"]
    clean_times = np.asarray(clean.index, dtype=np.int64)
    if adjustment == "raw":
        split = split_gap_finding(
            bars["open"].to_numpy(),
            clean.to_numpy(),
            lambda rows: clock.times(clean_times[rows]),
            bars["adj_close"].to_numpy() if "adj_close" in bars else None,
        )
        findings += [split] if split else []
    if calendar:
        if is_intraday(interval):
            step = interval_nanos(interval) or 0
            findings += intraday_findings(clean_times, step, calendar, int(max_gap.value), clock.times, clock.days)
        elif interval == "1d":
            findings += daily_findings(clean_times, calendar, clock.days)
    findings += _return_findings(clean_times, clean.to_numpy(), interval, max_return, clock)
    order = {"error": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: order[f.severity])
    shown = clock.times(clean_times[[0, -1]]) if len(clean_times) else ["", ""]
    return QualityReport(name, interval, len(frame), tz, label, shown[0], shown[1], findings)


def check_file(
    path: str | os.PathLike[str],
    *,
    interval: str | None = None,
    tz: str = "America/New_York",
    label: str = "start",
    calendar: str | None = "XNYS",
    max_gap: pd.Timedelta = DEFAULT_MAX_GAP,
    max_return: float | None = None,
    date_format: str | None = None,
    adjustment: str | None = None,
) -> QualityReport:
    """Check a CSV file as it is (see :func:`quantlab.data.csvio.read_csv` for the options).

    ``adjustment`` defaults to what ``import_csv`` would store (``raw`` without
    ``Adj Close`` or with Alpha Vantage's action columns).
    """
    from quantlab.data.csvio import default_adjustment, read_csv

    bars = read_csv(path, interval=interval, tz=tz, label=label, date_format=date_format)
    return check_frame(
        bars.frame,
        interval=bars.interval,
        tz=tz,
        label=label,
        lines=bars.lines,
        name=str(path),
        calendar=calendar,
        max_gap=max_gap,
        max_return=max_return,
        adjustment=adjustment or default_adjustment(bars),
    )


def check_store(
    symbols: Sequence[str] | None = None,
    *,
    interval: str | None = None,
    store: str | os.PathLike[str] | None = None,
    label: str | None = None,
    calendar: str | None = "XNYS",
    max_gap: pd.Timedelta = DEFAULT_MAX_GAP,
    max_return: float | None = None,
) -> list[QualityReport]:
    """Check stored series (all, or those of ``symbols``; one ``interval`` or all).

    Times are shown the way the source labelled the bars (the series'
    ``source_label``) unless ``label`` says otherwise.

    Raises:
        StoreError: missing/corrupt store, or a requested symbol/interval not stored.
    """
    from quantlab.data.store import info, load

    stored = info(store)
    wanted = [normalize_symbol(s) for s in symbols] if symbols else None
    want_interval = normalize_interval(interval) if interval else None
    reports = []
    for symbol in wanted or sorted({s.symbol for s in stored}):
        series = [s for s in stored if s.symbol == symbol and (want_interval is None or s.interval == want_interval)]
        if not series:  # let load() raise the helpful unknown-symbol/interval error
            load(symbol, interval=want_interval or "1d", store=store)
        for s in series:
            try:
                bars = None if s.damaged else load(s.symbol, interval=s.interval, store=store)
            except StoreError as err:  # damage inside the rows: found only when they are read
                bars, s = None, replace(s, damaged=str(err.found if err.found is not None else err))
            if bars is None:
                reports.append(_damaged_report(s))
                continue
            reports.append(
                check_frame(
                    bars,
                    interval=s.interval,
                    tz=s.timezone or "America/New_York",
                    label=label or (s.source_label if s.source_label in ("start", "end") else "start"),
                    name=f"{s.symbol} {s.interval}",
                    calendar=calendar,
                    max_gap=max_gap,
                    max_return=max_return,
                    adjustment=s.adjustment,
                )
            )
    return reports


def _damaged_report(series: SeriesInfo) -> QualityReport:
    """A series h5py cannot read: one error finding, so the other series are still checked."""
    finding = Finding(
        "damaged",
        "error",
        1,
        f"cannot be read, the store is damaged there ({series.damaged}); {DAMAGE_FIX}",
    )
    name = f"{series.symbol} {series.interval if series.interval != '?' else '(every interval)'}"
    return QualityReport(name, series.interval, 0, series.timezone or "America/New_York", "start", "", "", [finding])


__all__ = ["check_file", "check_frame", "check_store", "Finding", "QualityReport"]
