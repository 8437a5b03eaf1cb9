"""Download bars from Yahoo (yfinance) into the store: fetch, resume and update.

* **Adjustment** is explicit: ``auto_adjust=False`` (default) stores Yahoo's
  split-adjusted OHLCV plus ``adj_close`` as ``adjustment="split"``;
  ``auto_adjust=True`` stores split-and-dividend-adjusted OHLC as
  ``"total_return"``. Mixing the two in one series is refused.
* **Resume**: only the part of ``[start, end)`` that is not stored is downloaded
  (bars after the last stored bar, and before the first one if ``start`` is
  earlier). The last stored bar is downloaded again and compared: if Yahoo's
  values changed (a split or dividend since the last download re-adjusted the
  whole history), the series is downloaded in full and replaced, so a series is
  never a mix of two adjustment anchors.
* **Retries** with exponential backoff for rate limits and time-outs; unknown
  symbols are not retried; an unreachable host aborts at once (one TCP probe
  before anything else). ``sleep``, ``downloader`` and ``probe`` are injectable.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from quantlab.data._schema import interval_nanos, is_intraday, normalize_interval, normalize_symbol
from quantlab.data._yahoo import (
    DownloadRequest,
    OfflineError,
    SymbolNotFoundError,
    TransientFetchError,
    normalize_download,
    probe_yahoo,
    yfinance_download,
)
from quantlab.data.store import SeriesInfo, WriteResult, info, load, write_bars
from quantlab.data.validate import validate_bars
from quantlab.errors import DataError, FetchError, StoreError
from quantlab.paths import store_path

Downloader = Callable[[DownloadRequest], pd.DataFrame]
REVISION_TOLERANCE = 1e-6
_ADJUSTMENT = {False: "split", True: "total_return"}


@dataclass(frozen=True)
class FetchResult:
    """What happened to one symbol: ``written``, ``up-to-date``, ``replaced`` or ``failed``."""

    symbol: str
    interval: str
    status: str
    added: int = 0
    rows: int = 0
    message: str = ""


@dataclass(frozen=True)
class FetchOptions:
    """How to download: adjustment, retries, and the injectable seams."""

    auto_adjust: bool = False
    retries: int = 3
    backoff: float = 2.0
    timeout: float = 10.0
    downloader: Downloader = yfinance_download
    sleep: Callable[[float], None] = time.sleep
    probe: Callable[[], None] | None = probe_yahoo
    updated_at: str | None = None


def _download(request: DownloadRequest, options: FetchOptions) -> pd.DataFrame:
    """Download with retries; offline and unknown-symbol errors are not retried."""
    for attempt in range(options.retries + 1):
        try:
            raw = options.downloader(request)
            bars = normalize_download(raw, request.symbol, request.interval)
            return validate_bars(
                bars,
                interval=request.interval,
                name=f"{request.symbol} {request.interval} from Yahoo",
            )
        except (OfflineError, SymbolNotFoundError):
            raise
        except TransientFetchError as err:
            if attempt == options.retries:
                raise FetchError(
                    f"{err.what} (gave up after {attempt + 1} attempts)",
                    found=err.found,
                    fix=err.fix,
                ) from err
            options.sleep(options.backoff * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _download_new(request: DownloadRequest, options: FetchOptions) -> pd.DataFrame | None:
    """Like :func:`_download`, but "no data in that range" just means nothing new."""
    try:
        return _download(request, options)
    except SymbolNotFoundError:
        return None


def _bar(interval: str) -> pd.Timedelta:
    return pd.Timedelta(interval_nanos(interval) or 86_400_000_000_000, "ns")


def _revised(stored: pd.DataFrame, fresh: pd.DataFrame) -> bool:
    """True when bars present in both differ beyond float noise (history re-adjusted)."""
    common = stored.index.intersection(fresh.index)
    if not len(common):
        return False
    fields = [f for f in ("close", "adj_close") if f in stored.columns and f in fresh.columns]
    a = stored.loc[common, fields].to_numpy()
    b = fresh.loc[common, fields].to_numpy()
    return bool((np.abs(a / b - 1.0) > REVISION_TOLERANCE).any())


def _series(stored: list[SeriesInfo], symbol: str, interval: str) -> SeriesInfo | None:
    return next((s for s in stored if s.symbol == symbol and s.interval == interval), None)


def _fetch_symbol(
    symbol: str,
    interval: str,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    existing: SeriesInfo | None,
    replace: bool,
    store: Path,
    options: FetchOptions,
) -> FetchResult:
    adjustment = _ADJUSTMENT[options.auto_adjust]
    if existing is not None and existing.damaged and not replace:
        raise StoreError(
            f"{symbol} {interval} cannot be read: the store is damaged there, so it cannot be extended",
            found=existing.damaged,
            fix="download it again in full with --replace, or restore the store from a backup",
        )
    request = DownloadRequest(symbol, interval, start, end, options.auto_adjust, options.timeout)

    def write(frame: pd.DataFrame, mode: str) -> WriteResult:
        return write_bars(
            frame,
            symbol,
            interval,
            mode=mode,
            store=store,
            adjustment=adjustment,
            source="yfinance",
            timezone="America/New_York",
            updated_at=options.updated_at,
        )

    if existing is None or existing.rows == 0 or replace:
        if start is None:
            request = DownloadRequest(
                symbol,
                interval,
                _default_start(interval),
                end,
                options.auto_adjust,
                options.timeout,
            )
        bars = _download(request, options)
        result = write(bars, "replace")
        return FetchResult(symbol, interval, "written", result.added, result.rows_after)
    if existing.adjustment != adjustment:
        raise StoreError(
            f"Refusing to mix adjustments: {symbol} {interval} is stored as {existing.adjustment!r}, "
            f"this download would be {adjustment!r} (auto_adjust={options.auto_adjust})",
            found=f"stored adjustment {existing.adjustment!r} from {existing.source or 'unknown source'}",
            fix=f"fetch with {'--auto-adjust' if existing.adjustment == 'total_return' else '--no-auto-adjust'} to match, "
            "or download the whole series again with --replace",
        )
    assert existing.first is not None and existing.last is not None
    pieces = []
    if start is not None and start < existing.first:  # backfill, overlapping the first stored bar
        pieces.append(
            _download_new(
                DownloadRequest(
                    symbol,
                    interval,
                    start,
                    existing.first + _bar(interval),
                    options.auto_adjust,
                    options.timeout,
                ),
                options,
            )
        )
    if end is None or end > existing.last + _bar(interval):  # forward, re-reading the last stored bar
        forward_start = existing.last if start is None or start <= existing.last else start
        pieces.append(
            _download_new(
                DownloadRequest(symbol, interval, forward_start, end, options.auto_adjust, options.timeout),
                options,
            )
        )
    pieces = [p for p in pieces if p is not None]
    if not pieces:
        return FetchResult(symbol, interval, "up-to-date", 0, existing.rows, "already stored")
    fresh = pd.concat(pieces)
    fresh = fresh[~fresh.index.duplicated(keep="last")].sort_index()
    stored = load(symbol, start=fresh.index[0], end=fresh.index[-1], interval=interval, store=store)
    if _revised(stored, fresh):
        full_start = min(existing.first, start) if start is not None else existing.first
        bars = _download(
            DownloadRequest(symbol, interval, full_start, end, options.auto_adjust, options.timeout),
            options,
        )
        result = write(bars, "replace")
        return FetchResult(
            symbol,
            interval,
            "replaced",
            result.rows_after - existing.rows,
            result.rows_after,
            "Yahoo re-adjusted the history (split or dividend): downloaded again in full",
        )
    result = write(fresh, "merge")
    status = "written" if result.changed else "up-to-date"
    return FetchResult(symbol, interval, status, result.added, result.rows_after)


def _default_start(interval: str) -> pd.Timestamp:
    """Earliest start Yahoo serves for a new series (intraday history is short)."""
    days = {"1m": 7, "1h": 729}.get(interval, 59 if is_intraday(interval) else None)
    if days is None:
        return pd.Timestamp("1970-01-01", tz="UTC")
    return (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=days)).floor("D")


class _Progress(Protocol):
    """What _run uses of a tqdm bar."""

    def __iter__(self) -> Iterator[str]: ...

    def close(self) -> None: ...


def _progress(items: Sequence[str], enabled: bool, desc: str) -> _Progress:
    from tqdm.auto import tqdm

    bar: _Progress = tqdm(items, desc=desc, unit="symbol", disable=not enabled, leave=False)
    return bar


def _run(
    jobs: list[tuple[str, str, pd.Timestamp | None, pd.Timestamp | None, bool]],
    store: str | os.PathLike[str] | None,
    options: FetchOptions,
    progress: bool,
    desc: str,
) -> list[FetchResult]:
    if options.probe is not None and jobs:
        options.probe()
    path = store_path(store)
    stored = info(path) if path.exists() else []
    results: list[FetchResult] = []
    bar = _progress([j[0] for j in jobs], progress, desc)
    for (symbol, interval, start, end, replace), _ in zip(jobs, bar, strict=True):
        try:
            results.append(
                _fetch_symbol(
                    symbol,
                    interval,
                    start,
                    end,
                    _series(stored, symbol, interval),
                    replace,
                    path,
                    options,
                )
            )
        except OfflineError:
            raise
        except (FetchError, StoreError) as err:
            results.append(FetchResult(symbol, interval, "failed", message=str(err)))
    bar.close()
    return results


def _timestamp(value: object, interval: str, *, end: bool = False) -> pd.Timestamp | None:
    """A start/end argument as a UTC Timestamp; an inclusive end date becomes yfinance's
    exclusive end (the next midnight). Naive values are UTC.

    Raises:
        DataError: the value is not a date/time.
    """
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as err:
        raise DataError(
            "Cannot read the start/end date",
            found=repr(value),
            fix="use YYYY-MM-DD, e.g. --start 2010-01-01",
        ) from err
    if stamp is pd.NaT:
        raise DataError("start/end is NaT", found=repr(value), fix="pass a real date")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    date_only = isinstance(value, str) and len(value.strip()) <= 10
    if end and (date_only or (not is_intraday(interval) and stamp == stamp.normalize())):
        stamp += pd.Timedelta(days=1)
    return stamp


def fetch(
    symbols: Sequence[str],
    *,
    start: object = None,
    end: object = None,
    interval: str = "1d",
    store: str | os.PathLike[str] | None = None,
    replace: bool = False,
    progress: bool = False,
    options: FetchOptions | None = None,
) -> list[FetchResult]:
    """Download ``symbols`` into the store, skipping what is already stored.

    Args:
        symbols: tickers.
        start: first date/time (inclusive); ``None`` = what Yahoo has (daily) or the
            provider's intraday limit.
        end: last date (inclusive); ``None`` = now.
        interval: ``1d``, ``1h``, ``5m``, ``1m`` ...
        store: store path.
        replace: download everything again and replace stored series.
        progress: show a tqdm bar across symbols.
        options: adjustment, retries, backoff and the injectable seams.

    Returns:
        One :class:`FetchResult` per symbol (failed symbols do not stop the others).

    Raises:
        OfflineError: Yahoo is unreachable (raised before any download).
    """
    options = options or FetchOptions()
    interval = normalize_interval(interval)
    s, e = _timestamp(start, interval), _timestamp(end, interval, end=True)
    jobs = [(normalize_symbol(sym), interval, s, e, replace) for sym in dict.fromkeys(symbols)]
    return _run(jobs, store, options, progress, "fetch")


def update(
    symbols: Sequence[str] | None = None,
    *,
    interval: str | None = None,
    store: str | os.PathLike[str] | None = None,
    progress: bool = False,
    options: FetchOptions | None = None,
) -> list[FetchResult]:
    """Fetch only bars after the last stored one, for all (or the given) stored series.

    The adjustment of each series decides ``auto_adjust``; series stored ``raw``
    (as-traded, e.g. imported CSVs) cannot be continued from Yahoo and are reported
    as failed.

    Raises:
        StoreError: missing store, or a requested symbol not stored.
        OfflineError: Yahoo is unreachable.
    """
    base = options or FetchOptions()
    stored = info(store)
    wanted = {normalize_symbol(s) for s in symbols} if symbols else None
    want_interval = normalize_interval(interval) if interval else None
    if wanted:
        missing = wanted - {s.symbol for s in stored}
        if missing:
            load(sorted(missing)[0], store=store)  # raises the helpful unknown-symbol error
    chosen = [
        s
        for s in stored
        if (wanted is None or s.symbol in wanted) and (want_interval is None or s.interval == want_interval)
    ]
    results: list[FetchResult] = []
    by_adjust: dict[bool, list[tuple[str, str, pd.Timestamp | None, pd.Timestamp | None, bool]]] = {
        False: [],
        True: [],
    }
    for s in chosen:
        if s.adjustment == "raw":
            results.append(
                FetchResult(
                    s.symbol,
                    s.interval,
                    "failed",
                    message=(
                        f"{s.symbol} {s.interval} is stored as traded (raw); "
                        "Yahoo only serves adjusted prices, so it cannot be updated from Yahoo"
                    ),
                )
            )
            continue
        by_adjust[s.adjustment == "total_return"].append((s.symbol, s.interval, s.last, None, False))
    for auto_adjust, jobs in by_adjust.items():
        if jobs:
            opts = FetchOptions(
                auto_adjust,
                base.retries,
                base.backoff,
                base.timeout,
                base.downloader,
                base.sleep,
                base.probe,
                base.updated_at,
            )
            results += _run(jobs, store, opts, progress, "update")
    return results
