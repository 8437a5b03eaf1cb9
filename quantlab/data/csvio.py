"""Read OHLCV CSV files (Yahoo daily, yfinance intraday, generic) and import them.

:func:`read_csv` parses a file **as it is**, keeping duplicates, unsorted rows and
empty rows so that :func:`quantlab.data.check_frame` can report them with file line
numbers. :func:`import_csv` refuses such files unless told how to repair them
(``sort``, ``dedupe``, ``drop_empty``), then validates and stores the bars.

Header matching is case-insensitive: the time column is the first of ``Date``,
``Datetime``, ``Time``, ``Timestamp``; ``Adj Close`` becomes ``adj_close``; extra
columns such as ``Dividends`` and ``Stock Splits`` are ignored. Naive intraday
stamps are wall-clock times in ``tz`` (default America/New_York); stamps with an
offset (``2019-12-13 11:00:00-05:00``) are exact. ``label="end"`` shifts bars
stamped by their end (09:31..16:00) back one interval to the start convention.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from quantlab.data._dates import parse_times
from quantlab.data._schema import (
    ALL_FIELDS,
    FIELDS,
    INDEX_NAME,
    INTERVALS,
    check_timezone,
    daily_stamps,
    interval_nanos,
    is_intraday,
    normalize_interval,
)
from quantlab.data.store import WriteResult, write_bars
from quantlab.data.validate import canonical_columns
from quantlab.errors import DataError

TIME_COLUMNS = ("date", "datetime", "time", "timestamp", "date_time")


@dataclass
class CsvBars:
    """A parsed CSV: bars in file order (UTC bar-start index), with file line numbers."""

    frame: pd.DataFrame
    lines: np.ndarray
    path: Path
    interval: str
    tz: str
    label: str
    ignored_columns: list[str] = field(default_factory=list)


def _read_text(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError("CSV file not found", found=str(path), fix="check the path")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError as err:
        raise DataError("The CSV file is empty", found=str(path), fix="export the data again") from err
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(
            f"Cannot parse {path.name} as CSV",
            found=str(err).strip(),
            fix="check the delimiter (comma) and that every row has the header's columns",
        ) from err


def _time_column(raw: pd.DataFrame, path: Path) -> str:
    for column in raw.columns:
        if isinstance(column, str) and column.strip().lower().replace(" ", "_") in TIME_COLUMNS:
            return column
    raise DataError(
        f"{path.name} has no date/time column",
        found=f"header {list(map(str, raw.columns))}",
        fix="name the time column Date, Datetime, Time or Timestamp",
    )


def _numbers(text: pd.Series, column: str, path: Path) -> np.ndarray:
    stripped = text.str.strip()
    values = pd.to_numeric(stripped.where(stripped != "", None), errors="coerce")
    bad = values.isna() & (stripped != "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{path.name}: column {column!r} has text that is not a number",
            found=f"line {row + 2}: {text.iloc[row]!r} ({int(bad.sum())} such cell(s))",
            fix="fix or remove those cells; leave a cell empty for a missing value",
        )
    return np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def infer_interval(stamps: pd.DatetimeIndex) -> str:
    """Guess the bar interval: ``1d`` for date-only stamps, else the median step.

    Raises:
        DataError: the median step is not a supported interval.
    """
    local = stamps.tz_localize(None) if stamps.tz is not None else stamps
    if (local == local.normalize()).all():
        return "1d"
    unique = np.unique(local.as_unit("ns").asi8)
    steps = np.diff(unique)
    step = int(np.median(steps)) if len(steps) else 0
    for name, nanos in INTERVALS.items():
        if nanos == step:
            return name
    raise DataError(
        "Cannot infer the bar interval",
        found=f"median step {pd.Timedelta(step)}",
        fix="pass --interval (e.g. 1m, 5m, 1h, 1d)",
    )


_AS_TRADED_MARKERS = frozenset(
    {"split coefficient", "split_coefficient", "dividend", "dividend_amount", "dividend amount"}
)


def default_adjustment(bars: CsvBars) -> str:
    """``split`` for Yahoo-style files (``Adj Close``), ``raw`` otherwise or with Alpha Vantage's action columns."""
    as_traded = any(c.strip().lower() in _AS_TRADED_MARKERS for c in bars.ignored_columns)
    return "split" if "adj_close" in bars.frame.columns and not as_traded else "raw"


def _check_intraday_step(index: pd.DatetimeIndex, interval: str, path: Path) -> None:
    """The typical spacing of intraday stamps must be the declared interval."""
    steps = np.diff(np.unique(index.asi8))
    steps = steps[steps > 0]
    if not steps.size:
        return
    typical = int(np.median(steps))
    expected = interval_nanos(interval)
    if expected and typical != expected:
        raise DataError(
            f"{path.name}: bars are {pd.Timedelta(typical, 'ns')} apart, not {interval}",
            found=f"median spacing {pd.Timedelta(typical, 'ns')} over {steps.size + 1} bars",
            fix="import with --interval matching the file (or omit --interval to infer it)",
        )


def read_csv(
    path: str | os.PathLike[str],
    *,
    interval: str | None = None,
    tz: str = "America/New_York",
    label: str = "start",
    date_format: str | None = None,
) -> CsvBars:
    """Parse an OHLCV CSV without repairing it (duplicates, order and empty rows kept).

    Args:
        path: the CSV file.
        interval: bar interval; inferred from the stamps when ``None``.
        tz: time zone of naive stamps (ignored when stamps carry an offset).
        label: ``"start"`` (bars stamped by their start) or ``"end"``.
        date_format: strftime format of the time column (e.g. ``"%d/%m/%Y"``);
            needed when numeric dates could be day-first or month-first.

    Raises:
        DataError: unreadable file, missing columns, bad or ambiguous dates, bad
            numbers, unknown tz.
    """
    path = Path(path)
    check_timezone(tz)
    if label not in ("start", "end"):
        raise DataError("Unknown bar label", found=repr(label), fix="use --label start or --label end")
    raw = _read_text(path)
    time_column = _time_column(raw, path)
    if raw.empty:
        raise DataError(
            f"{path.name} has a header but no rows",
            found=f"header {list(map(str, raw.columns))}, 0 data rows",
            fix="export the data again (the file holds only its header); nothing was stored",
        )
    columns = canonical_columns(raw.drop(columns=[time_column]))
    missing = [f for f in FIELDS if f not in columns]
    if missing:
        raise DataError(
            f"{path.name}: missing column(s) {', '.join(missing)}",
            found=f"header {list(map(str, raw.columns))}",
            fix="the file needs Open, High, Low, Close and Volume columns",
        )
    stamps, aware = parse_times(raw[time_column], path, date_format)
    interval = normalize_interval(interval) if interval else infer_interval(stamps)
    if not is_intraday(interval):
        _check_one_time_of_day(stamps, interval, path)
        index = daily_stamps(stamps)
    else:
        index = _intraday_index(stamps, aware, tz, path)
        _check_intraday_step(index, interval, path)
        if label == "end":
            index = index - pd.Timedelta(interval_nanos(interval), "ns")
    data = {f: _numbers(raw[columns[f]], str(columns[f]), path) for f in ALL_FIELDS if f in columns}
    if "adj_close" in data and np.isnan(data["adj_close"]).all():
        del data["adj_close"]
    frame = pd.DataFrame(data, index=pd.DatetimeIndex(index, name=INDEX_NAME))
    ignored = [str(c) for c in raw.columns if c != time_column and c not in columns.values()]
    return CsvBars(frame, np.arange(2, len(frame) + 2), path, interval, tz, label, ignored)


def _check_one_time_of_day(stamps: pd.DatetimeIndex, interval: str, path: Path) -> None:
    """Daily bars may carry one fixed time (midnight, or a close stamp), never several."""
    local = stamps.tz_localize(None) if stamps.tz is not None else stamps
    times_of_day = np.unique((local - local.normalize()).asi8)
    if len(times_of_day) > 1:
        raise DataError(
            f"{path.name}: --interval {interval} but the stamps have {len(times_of_day)} different times of day",
            found=f"e.g. {stamps[0]} and {stamps[1] if len(stamps) > 1 else ''}",
            fix="pass the bar interval of the file (e.g. --interval 1m) or omit --interval to infer it",
        )


def _intraday_index(stamps: pd.DatetimeIndex, aware: bool, tz: str, path: Path) -> pd.DatetimeIndex:
    if aware:
        return stamps.tz_convert("UTC").as_unit("ns")
    try:
        return stamps.tz_localize(tz, ambiguous="raise", nonexistent="raise").tz_convert("UTC").as_unit("ns")
    except (ValueError, TypeError, KeyError) as err:  # unknown zone, DST gap/overlap
        raise DataError(
            f"{path.name}: cannot place naive times in time zone {tz!r}",
            found=str(err),
            fix="pass --tz with an IANA zone (e.g. America/New_York, UTC) or write offsets in the file",
        ) from err


def repair(bars: CsvBars, *, sort: bool = False, dedupe: bool | str = False, drop_empty: bool = False) -> pd.DataFrame:
    """Apply the explicitly requested repairs; refuse what is still wrong.

    Repairs run in this order: ``drop_empty`` removes rows with every OHLCV cell
    empty; ``dedupe`` keeps one copy of each time stamp, the ``"first"`` in file
    order (``True`` means ``"first"``) or the ``"last"``; ``sort`` orders by time
    (stable). First is the default because files that repeat stamps are usually
    overlapping re-downloads appended to the original, and yfinance gives the
    first bar of each re-download a volume of 0 (the case in
    ``SPY_1min_yf_raw_2019-12.csv``). Compare with ``quantlab data check --file``,
    which lists repeated stamps whose copies differ.

    Raises:
        DataError: empty rows, duplicates or backward steps remain, naming the
            option that would repair them and pointing to ``quantlab data check --file``.
    """
    frame = bars.frame
    empty = frame[list(FIELDS)].isna().all(axis=1).to_numpy()
    if drop_empty:
        frame = frame[~empty]
    if dedupe:
        keep = "first" if dedupe is True else str(dedupe)
        if keep not in ("first", "last"):
            raise DataError("Unknown dedupe rule", found=repr(dedupe), fix="use --dedupe first or --dedupe last")
        frame = frame[~frame.index.duplicated(keep=keep)]
    if sort:
        frame = frame.sort_index(kind="stable")
    problems: list[str] = []
    options: list[str] = []
    if empty.any() and not drop_empty:
        problems.append(f"{int(empty.sum())} empty row(s) (first on line {bars.lines[empty][0]})")
        options.append("--drop-empty (skip them)")
    dup = frame.index.duplicated()
    if dup.any():
        problems.append(f"{int(dup.sum())} duplicate time stamp(s) (first {frame.index[dup][0]})")
        options.append("--dedupe first|last (keep the first or last copy of each)")
    back = np.flatnonzero(np.diff(frame.index.asi8) < 0)
    if len(back):
        problems.append(f"{len(back)} backward time step(s) (first at {frame.index[back[0] + 1]})")
        options.append("--sort (order rows by time)")
    if problems:
        raise DataError(
            f"Refusing to import {bars.path.name} as it is",
            found="; ".join(problems),
            fix=(
                f"see every problem with `quantlab data check --file {bars.path}`; "
                f"if the repairs are right, import with {' '.join(options)}"
            ),
        )
    return frame


def import_csv(
    path: str | os.PathLike[str],
    symbol: str,
    *,
    interval: str | None = None,
    store: str | os.PathLike[str] | None = None,
    tz: str = "America/New_York",
    label: str = "start",
    adjustment: str | None = None,
    sort: bool = False,
    dedupe: bool | str = False,
    drop_empty: bool = False,
    mode: str = "merge",
    updated_at: str | None = None,
    date_format: str | None = None,
    actions: str | os.PathLike[str] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> WriteResult:
    """Read, repair (only if asked), validate and store one CSV file.

    ``on_step(n)`` is called after each of the three steps (read, repair, validate and
    write) with the number done, for a progress bar.

    ``adjustment`` defaults to ``"split"`` when the file has an ``Adj Close``
    column (the Yahoo convention: split-adjusted OHLC) and ``"raw"`` otherwise, or when
    it carries Alpha Vantage's ``Split Coefficient`` / ``Dividend`` columns, which mark
    as-traded prices.

    ``actions`` (a corporate-actions CSV, see :func:`~quantlab.data.load_actions`)
    back-adjusts as-traded bars before storing them: for splits (``adjustment``
    ``"split"``, the default then) or splits and dividends (``"total_return"``).

    Raises:
        DataError: bad file or bars (nothing is written).
        StoreError: adjustment differs from the stored series; unreadable store.
    """
    step = on_step or (lambda done: None)
    bars = read_csv(path, interval=interval, tz=tz, label=label, date_format=date_format)
    step(1)
    frame = repair(bars, sort=sort, dedupe=dedupe, drop_empty=drop_empty)
    step(2)
    source = f"csv:{bars.path.name}"
    if actions is not None:
        adjustment = adjustment or "split"
        frame = _back_adjust(frame, bars, Path(actions), adjustment)
        source += f" + actions:{Path(actions).name}"
    adjustment = adjustment or default_adjustment(bars)
    written = write_bars(
        frame,
        symbol,
        bars.interval,
        store=store,
        adjustment=adjustment,
        source=source,
        timezone=tz,
        mode=mode,
        label=label,
        updated_at=updated_at,
    )
    step(3)
    return written


def _back_adjust(frame: pd.DataFrame, bars: CsvBars, actions: Path, adjustment: str) -> pd.DataFrame:
    """Adjust as-traded bars with their actions; refuse when that cannot be right."""
    from quantlab.data._splits import split_gaps
    from quantlab.data.actions import adjust, load_actions

    if adjustment == "raw":
        raise DataError(
            "--actions back-adjusts the bars, --adjustment raw says to keep them as traded",
            found=f"--actions {actions.name} with --adjustment raw",
            fix="drop --actions to store as-traded bars, or use --adjustment split or total_return",
        )
    if default_adjustment(bars) != "raw":
        raise DataError(
            f"{bars.path.name} looks split-adjusted already (Adj Close, no action columns): "
            "adjusting it again would divide prices by each split twice",
            found=f"columns {list(bars.frame.columns)}",
            fix="import it without --actions (it is stored as split-adjusted)",
        )
    adjusted = adjust(frame, load_actions(actions), mode=adjustment)
    rows, ratios = split_gaps(adjusted["open"].to_numpy(), adjusted["close"].to_numpy())
    if len(rows):
        when = ", ".join(f"{adjusted.index[i].date()} (like {r:g}:1)" for i, r in zip(rows, ratios, strict=True))
        raise DataError(
            f"Split-sized gaps remain after adjusting {bars.path.name} with {actions.name}",
            found=when,
            fix="the actions file misses these splits: add them (Date,Dividend,Split Ratio) and import again",
        )
    return adjusted
