"""The market-data store: write bars (crash-safe), load bars and panels, list series.

One HDF5 file (default ``data/market.h5``; ``store=`` or ``QUANTLAB_STORE``
overrides) holds one group per symbol and interval; see ``_h5`` for the layout and
compression and ``_txn`` for the write-safety design.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from quantlab.data import _h5
from quantlab.data._schema import (
    ALL_FIELDS,
    INDEX_NAME,
    normalize_adjustment,
    normalize_interval,
    normalize_symbol,
    parse_bound,
)
from quantlab.data._txn import write_transaction
from quantlab.data.validate import validate_bars
from quantlab.errors import DataError, StoreError, suggest
from quantlab.paths import store_path

_ADJ_WORDS = {
    "raw": "raw (as traded)",
    "split": "split-adjusted",
    "total_return": "total-return adjusted",
}


@dataclass(frozen=True)
class SeriesInfo:
    """What is stored for one symbol and interval."""

    symbol: str
    interval: str
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    rows: int
    adjustment: str
    source: str
    timezone: str
    last_update: str
    columns: tuple[str, ...]
    source_label: str = "start"
    #: Why the series cannot be read (h5py's reason), or "" when it opens.
    damaged: str = ""


@dataclass(frozen=True)
class WriteResult:
    """Outcome of writing one series: rows before/after and what changed."""

    symbol: str
    interval: str
    rows_before: int
    rows_after: int
    added: int
    rewritten: int
    created: bool

    @property
    def changed(self) -> bool:
        return self.created or self.added > 0 or self.rewritten > 0


@dataclass(frozen=True)
class SeriesWrite:
    """One series to write in a :func:`write_many` transaction."""

    bars: pd.DataFrame
    symbol: str
    interval: str = "1d"
    adjustment: str = "raw"
    source: str = ""
    timezone: str = "America/New_York"
    mode: str = "merge"
    label: str = "start"


def now_iso() -> str:
    """Current UTC time as ISO-8601 seconds; honours ``SOURCE_DATE_EPOCH`` (reproducible builds)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = dt.datetime.fromtimestamp(int(epoch), dt.UTC) if epoch else dt.datetime.now(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- reading


def info(store: str | os.PathLike[str] | None = None) -> list[SeriesInfo]:
    """List every stored series (sorted by symbol, then interval).

    Raises:
        StoreError: the store is missing, not HDF5, corrupt or not a quantlab store.
    """
    path = store_path(store)
    out = []
    with _h5.open_read(path) as f:
        for symbol, interval, damage in _h5.series_entries(f):
            if damage:
                out.append(_damaged_info(symbol, interval, damage))
                continue
            group = f[symbol][interval]
            attrs = _h5.read_attrs(group)
            ds = group["time"]
            rows = int(ds.shape[0])
            first = pd.Timestamp(int(ds[0]), tz="UTC") if rows else None
            last = pd.Timestamp(int(ds[rows - 1]), tz="UTC") if rows else None
            out.append(
                SeriesInfo(
                    symbol=symbol,
                    interval=interval,
                    first=first,
                    last=last,
                    rows=rows,
                    adjustment=attrs["adjustment"],
                    source=attrs["source"],
                    timezone=attrs["timezone"],
                    last_update=attrs["last_update"],
                    columns=tuple(_h5.stored_fields(group)),
                    source_label=attrs["source_label"] or "start",
                )
            )
    return out


def _damaged_info(symbol: str, interval: str, damage: str) -> SeriesInfo:
    return SeriesInfo(symbol, interval, None, None, 0, "", "", "", "", (), damaged=damage)


def _series_group(f: h5py.File, path: Path, symbol: str, interval: str) -> h5py.Group:
    damage = _h5.damage_of(f, symbol, interval)
    if damage:
        raise StoreError(
            f"{symbol} {interval} cannot be read: the store {path} is damaged there",
            found=damage,
            fix=_h5.DAMAGE_FIX,
        )
    if damage == "":
        return f[symbol][interval]
    stored = sorted({s for s, _ in _h5.series_keys(f)})
    if symbol not in stored:
        listing = ", ".join(stored) if stored else "nothing yet"
        raise StoreError(
            f"Symbol {symbol} is not in the store {path}",
            found=f"stored symbols: {listing}",
            fix=suggest(
                symbol,
                stored,
                then=f"import or fetch it first (quantlab data fetch {symbol}), or see `quantlab data list`",
                cutoff=0.5,
            ),
        )
    intervals = [i for s, i in _h5.series_keys(f) if s == symbol]
    if interval not in intervals:
        raise StoreError(
            f"{symbol} has no {interval} bars in the store",
            found=f"stored intervals for {symbol}: {', '.join(intervals)}",
            fix=f"load with interval={intervals[0]!r} or fetch {interval} bars (quantlab data fetch {symbol} --interval {interval})",
        )
    return f[symbol][interval]


def _frame_from(times: np.ndarray, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    index = pd.DatetimeIndex(times.view("datetime64[ns]"), name=INDEX_NAME).tz_localize("UTC")
    return pd.DataFrame(columns, index=index, copy=False)


def _read_series(f: h5py.File, path: Path, symbol: str, interval: str, lo: int | None, hi: int | None) -> pd.DataFrame:
    group = _series_group(f, path, symbol, interval)
    try:
        times = _h5.read_times(group)
        i0 = 0 if lo is None else int(np.searchsorted(times, lo, side="left"))
        i1 = len(times) if hi is None else int(np.searchsorted(times, hi, side="right"))
        i1 = max(i0, i1)
        columns = _h5.read_rows(group, i0, i1, _h5.stored_fields(group))
    except _h5.DAMAGE_ERRORS as err:
        raise StoreError(
            f"{symbol} {interval} cannot be read: the store {path} is damaged there",
            found=str(err),
            fix=_h5.DAMAGE_FIX,
        ) from err
    return _frame_from(times[i0:i1], columns)


def load(
    symbols: str | Sequence[str],
    start: object = None,
    end: object = None,
    interval: str = "1d",
    store: str | os.PathLike[str] | None = None,
    how: str = "inner",
) -> pd.DataFrame:
    """Load bars for one symbol, or an aligned panel for several.

    Args:
        symbols: ``"SPY"`` for one frame, or a list for a panel.
        start: first bar time to include (string, date or Timestamp; naive = UTC).
        end: last bar time to include; a date-only string covers the whole day.
        interval: bar interval, e.g. ``"1d"`` or ``"1m"``.
        store: store path (default ``$QUANTLAB_STORE`` or ``data/market.h5``).
        how: panel rows: ``"inner"`` (time stamps all symbols share) or ``"outer"``.

    Returns:
        One symbol: float64 columns ``open high low close volume`` (+ ``adj_close``)
        on a UTC ``DatetimeIndex`` named ``time``. Several: MultiIndex columns
        ``(field, symbol)`` so that ``panel["close"]`` is a symbol-column frame;
        fields are those every symbol has.

    Raises:
        StoreError: missing/corrupt store, unknown symbol or interval.
        DataError: bad ``start``/``end``/``how``.
    """
    path = store_path(store)
    interval = normalize_interval(interval)
    lo, hi = parse_bound(start), parse_bound(end, end=True)
    if how not in ("inner", "outer"):
        raise DataError("Unknown panel join", found=repr(how), fix="use how='inner' or how='outer'")
    single = isinstance(symbols, str)
    if isinstance(symbols, str):
        names = [normalize_symbol(symbols)]
    else:
        names = list(dict.fromkeys(normalize_symbol(s) for s in symbols))
    if not names:
        raise DataError("No symbols given", fix="pass a symbol or a list of symbols")
    with _h5.open_read(path) as f:
        frames = {name: _read_series(f, path, name, interval, lo, hi) for name in names}
    if single:
        return frames[names[0]]
    return _panel(frames, how)


def _panel(frames: dict[str, pd.DataFrame], how: str) -> pd.DataFrame:
    fields = [f for f in ALL_FIELDS if all(f in frame.columns for frame in frames.values())]
    joined = pd.concat({s: fr[fields] for s, fr in frames.items()}, axis=1, join=how, names=["symbol", "field"])
    joined = joined.sort_index()
    columns = pd.MultiIndex.from_product([fields, list(frames)], names=["field", "symbol"])
    panel = joined.swaplevel(0, 1, axis=1).reindex(columns=columns)
    panel.index.name = INDEX_NAME
    return panel


# ----------------------------------------------------------------------------- writing


def _merge_source(old: str, new: str) -> str:
    parts = [p for p in old.split("; ") if p]
    if new and new not in parts:
        parts.append(new)
    return "; ".join(parts)


def _check_adjustment(symbol: str, interval: str, stored: str, new: str) -> None:
    if stored and stored != new:
        raise StoreError(
            f"Refusing to mix adjustments: {symbol} {interval} is stored {_ADJ_WORDS.get(stored, stored)}, "
            f"the new bars are {_ADJ_WORDS.get(new, new)}",
            found=f"stored adjustment={stored!r}, new adjustment={new!r}",
            fix="write bars with the stored adjustment (for yfinance: auto_adjust=False is 'split', True is "
            "'total_return'), or replace the whole series (mode='replace', CLI --replace)",
        )


#: Overlapping stored and new prices must agree to this relative tolerance to merge.
OVERLAP_RTOL = 1e-6


def _check_overlap(symbol: str, interval: str, stored: pd.DataFrame, new: pd.DataFrame) -> None:
    """Refuse a merge whose overlapping bars disagree: that is another source or adjustment
    (say as-traded prices merged into a split-adjusted series), not new data. The last
    stored bar may differ: it may have been incomplete when it was stored."""
    common = stored.index[:-1].intersection(new.index)
    if not len(common):
        return
    fields = [c for c in ("open", "high", "low", "close") if c in stored.columns and c in new.columns]
    a = stored.loc[common, fields].to_numpy(dtype=np.float64)
    b = new.loc[common, fields].to_numpy(dtype=np.float64)
    bad = (np.abs(a - b) > OVERLAP_RTOL * np.maximum(np.abs(a), np.abs(b))).any(axis=1)
    if bad.any():
        first = int(np.argmax(bad))
        when = common[first]
        raise StoreError(
            f"{int(bad.sum())} of {len(common)} overlapping {symbol} {interval} bars differ from the stored ones; "
            "the new bars look like another source or adjustment, so they were not merged",
            found=f"first at {when}: stored close {a[first, -1]:.6g}, new close {b[first, -1]:.6g}",
            fix="store them under another symbol, or replace the whole series (mode='replace', CLI --replace)",
        )


def _write_one(f: h5py.File, item: SeriesWrite, bars: pd.DataFrame, updated_at: str) -> WriteResult:
    symbol, interval = item.symbol, item.interval
    times = bars.index.asi8.astype(np.int64, copy=False)
    columns = {c: bars[c].to_numpy(dtype=np.float64) for c in bars.columns}
    attrs = {
        "symbol": symbol,
        "interval": interval,
        "adjustment": item.adjustment,
        "source": item.source,
        "source_label": item.label,
        "timezone": item.timezone,
        "last_update": updated_at,
    }
    exists = symbol in f and interval in f[symbol]
    if not len(times) and (not exists or item.mode == "replace"):
        raise DataError(
            f"Refusing to store {symbol} {interval} with no bars",
            found=f"0 rows ({'replace' if exists else 'new series'}); source {item.source or 'unknown'}",
            fix="check the source: a header-only CSV or an empty download holds no data",
        )
    if not exists or item.mode == "replace":
        before = int(f[symbol][interval]["time"].shape[0]) if exists else 0
        _h5.create_series(f, symbol, interval, times, columns, attrs)
        return WriteResult(symbol, interval, before, len(times), len(times), 0, True)
    group = f[symbol][interval]
    stored_attrs = _h5.read_attrs(group)
    _check_adjustment(symbol, interval, stored_attrs["adjustment"], item.adjustment)
    stored_fields = _h5.stored_fields(group)
    if set(stored_fields) != set(columns):
        raise StoreError(
            f"Columns of the new {symbol} {interval} bars differ from the stored series",
            found=f"stored {stored_fields}, new {list(columns)}",
            fix="write bars with the same columns (adj_close in both or in neither), or replace the series (--replace)",
        )
    stored_times = _h5.read_times(group)
    n = len(stored_times)
    position = int(np.searchsorted(stored_times, times[0], side="left")) if len(times) else n
    if item.mode == "append" and position < n:
        raise StoreError(
            f"Append would rewrite history of {symbol} {interval}",
            found=(
                f"new bars start {pd.Timestamp(int(times[0]), tz='UTC')}, "
                f"stored bars end {pd.Timestamp(int(stored_times[-1]), tz='UTC')}"
            ),
            fix="use mode='merge' to de-duplicate overlapping bars (new values win)",
        )
    if position < n:
        tail = _frame_from(stored_times[position:], _h5.read_rows(group, position, n, stored_fields))
        _check_overlap(symbol, interval, tail, bars)
        merged = pd.concat([tail, bars[stored_fields]])
        merged = merged[~merged.index.duplicated(keep="last")].sort_index()
        if merged.equals(tail):
            return WriteResult(symbol, interval, n, n, 0, 0, False)
        times = merged.index.asi8.astype(np.int64, copy=False)
        columns = {c: merged[c].to_numpy(dtype=np.float64) for c in merged.columns}
    _h5.write_from(group, position, times, columns)
    stored_attrs.update(
        last_update=updated_at,
        source=_merge_source(stored_attrs["source"], item.source),
        timezone=item.timezone or stored_attrs["timezone"],
    )
    if stored_attrs["source_label"] != item.label:
        stored_attrs["source_label"] = "mixed"
    _h5.write_attrs(group, stored_attrs)
    after = position + len(times)
    return WriteResult(symbol, interval, n, after, after - n, n - position, False)


def _prepare(item: SeriesWrite) -> tuple[SeriesWrite, pd.DataFrame]:
    symbol = normalize_symbol(item.symbol)
    interval = normalize_interval(item.interval)
    adjustment = normalize_adjustment(item.adjustment)
    if item.mode not in ("merge", "append", "replace"):
        raise DataError("Unknown write mode", found=repr(item.mode), fix="use merge, append or replace")
    bars = validate_bars(item.bars, interval=interval, name=f"{symbol} {interval}")
    if item.label not in ("start", "end"):
        raise DataError("Unknown bar label", found=repr(item.label), fix="use 'start' or 'end'")
    clean = SeriesWrite(bars, symbol, interval, adjustment, item.source, item.timezone, item.mode, item.label)
    return clean, bars


def write_many(
    items: Iterable[SeriesWrite],
    *,
    store: str | os.PathLike[str] | None = None,
    updated_at: str | None = None,
) -> list[WriteResult]:
    """Validate, then write several series in one crash-safe transaction (one store copy).

    Raises:
        DataError: a frame fails validation (nothing is written).
        StoreError: adjustment mismatch, append over history, unreadable store.
    """
    prepared = [_prepare(item) for item in items]
    stamp = updated_at or now_iso()
    path = store_path(store)
    results = []
    with write_transaction(path) as txn:
        for item, bars in prepared:
            try:
                result = _write_one(txn.file, item, bars, stamp)
            except _h5.DAMAGE_ERRORS as err:  # h5py's raw errors from a damaged interior
                raise StoreError(
                    f"{item.symbol} {item.interval} cannot be written: the store {path} is damaged there "
                    "(nothing was written)",
                    found=_h5.damage_of(txn.file, item.symbol, item.interval) or str(err),
                    fix=_h5.DAMAGE_FIX,
                ) from err
            results.append(result)
            txn.changed = txn.changed or result.changed
    return results


def write_bars(
    bars: pd.DataFrame,
    symbol: str,
    interval: str = "1d",
    *,
    store: str | os.PathLike[str] | None = None,
    adjustment: str = "raw",
    source: str = "",
    timezone: str = "America/New_York",
    mode: str = "merge",
    label: str = "start",
    updated_at: str | None = None,
) -> WriteResult:
    """Write one series: create, append, merge (new values win on equal stamps) or replace.

    Merging rewrites only stored rows at or after the first new bar; earlier history
    is never touched. ``mode="append"`` refuses bars that do not start after the last
    stored bar. The store is updated atomically (see ``_txn``).

    Raises:
        DataError: the bars fail :func:`~quantlab.data.validate.validate_bars`.
        StoreError: adjustment differs from the stored series, or store unreadable.
    """
    item = SeriesWrite(bars, symbol, interval, adjustment, source, timezone, mode, label)
    return write_many([item], store=store, updated_at=updated_at)[0]


def delete_series(symbol: str, interval: str, *, store: str | os.PathLike[str] | None = None) -> None:
    """Remove one series from the store (crash-safe).

    Raises:
        StoreError: the series is not stored.
    """
    symbol, interval = normalize_symbol(symbol), normalize_interval(interval)
    path = store_path(store)
    with write_transaction(path) as txn:
        group = _series_group(txn.file, path, symbol, interval)
        del txn.file[group.name]
        if not len(txn.file[symbol]):
            del txn.file[symbol]
        txn.changed = True
