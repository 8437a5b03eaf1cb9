"""The one download seam to Yahoo (yfinance), its error triage, and frame normalisation.

:func:`yfinance_download` is the only function in quantlab that calls yfinance.
Tests replace it (``fetch(..., downloader=...)``) or replay recorded Yahoo
responses underneath it. ``yfinance.download`` never raises for a failed symbol:
it logs the error and returns an empty frame, so the seam listens to the
``yfinance`` logger and turns what it heard into a typed :class:`FetchError`.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from dataclasses import dataclass

import pandas as pd

from quantlab.data._schema import INDEX_NAME, as_utc_ns, daily_stamps, is_intraday
from quantlab.data.validate import canonical_columns
from quantlab.errors import FetchError

YAHOO_HOST = "query2.finance.yahoo.com"
_OFFLINE_HINT = "check the network or proxy; the bundled store and CSV import (quantlab data import) work offline"


class OfflineError(FetchError):
    """Yahoo cannot be reached at all (DNS, refused, no route): retrying is pointless."""


class SymbolNotFoundError(FetchError):
    """Yahoo has no data for the symbol/range/interval: retrying is pointless."""


class TransientFetchError(FetchError):
    """Rate limiting, time-outs or server errors: worth retrying after a pause."""


@dataclass(frozen=True)
class DownloadRequest:
    """One download: ``start`` inclusive, ``end`` exclusive (yfinance semantics)."""

    symbol: str
    interval: str
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    auto_adjust: bool
    timeout: float = 10.0


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


_NETWORK_WORDS = (
    "could not resolve",
    "dnserror",
    "failed to connect",
    "connection refused",
    "network is unreachable",
    "no route to host",
    "name or service not known",
    "temporary failure in name resolution",
)
_TRANSIENT_WORDS = (
    "too many requests",
    "rate limit",
    "timed out",
    "timeout",
    "502",
    "503",
    "504",
    "yahoo! finance is currently down",
    "connection reset",
)
_MISSING_WORDS = (
    "delisted",
    "no data found",
    "no price data",
    "no timezone",
    "not found",
    "data doesn't exist",
    "not available",
    "invalid",
)


def classify(symbol: str, message: str) -> FetchError:
    """Turn a yfinance error message into the matching :class:`FetchError` subclass."""
    text = message.lower()
    short = message.strip().splitlines()[-1][:300] if message.strip() else "empty response"
    if any(w in text for w in _NETWORK_WORDS):
        return OfflineError(f"Cannot reach Yahoo Finance while downloading {symbol}", found=short, fix=_OFFLINE_HINT)
    if any(w in text for w in _TRANSIENT_WORDS):
        return TransientFetchError(
            f"Yahoo Finance did not answer for {symbol}",
            found=short,
            fix="wait a minute and run the command again (stored bars are kept)",
        )
    if any(w in text for w in _MISSING_WORDS):
        return SymbolNotFoundError(
            f"Yahoo Finance has no data for {symbol} in that range/interval",
            found=short,
            fix="check the ticker spelling and the dates; intraday bars only go back 7 days (1m) to 730 days (1h)",
        )
    return TransientFetchError(
        f"Download of {symbol} failed",
        found=short,
        fix="run the command again; if it keeps failing, check the ticker",
    )


def yfinance_download(request: DownloadRequest) -> pd.DataFrame:
    """THE download seam: call ``yfinance.download`` once, with every option explicit.

    ``auto_adjust`` is always passed (its default flipped from False to True in
    yfinance 0.2.51), ``actions``/``repair``/``keepna`` are off, ``multi_level_index``
    is on so the shape does not depend on the number of tickers.

    Returns:
        The frame exactly as yfinance returns it (MultiIndex columns ``(Price, Ticker)``).

    Raises:
        OfflineError, SymbolNotFoundError, TransientFetchError: classified failures.
    """
    import yfinance as yf

    logger = logging.getLogger("yfinance")
    handler = _Collect()
    logger.addHandler(handler)
    # Let yfinance raise inside its per-ticker worker: the worker logs repr(exception),
    # so a dropped connection is not reported as "possibly delisted".
    debug = yf.config.debug
    hide = debug.hide_exceptions
    debug.hide_exceptions = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # yfinance's own pandas deprecation noise
            frame = yf.download(
                request.symbol,
                start=request.start,
                end=request.end,
                interval=request.interval,
                auto_adjust=request.auto_adjust,
                actions=False,
                repair=False,
                keepna=False,
                progress=False,
                threads=False,
                multi_level_index=True,
                timeout=request.timeout,
            )
    except Exception as err:  # yfinance raises a zoo of types (curl, requests, JSON)
        raise classify(request.symbol, f"{type(err).__name__}: {err}") from err
    finally:
        debug.hide_exceptions = hide
        logger.removeHandler(handler)
    if frame is None or frame.empty:
        raise classify(request.symbol, "\n".join(handler.messages) or "no data found (empty response)")
    return frame


def probe_yahoo(host: str = YAHOO_HOST, port: int = 443, timeout: float = 3.0) -> None:
    """Fail fast when Yahoo is unreachable (one TCP connect, a few seconds at most).

    Skipped when an HTTP(S) proxy is configured (the proxy decides reachability).

    Raises:
        OfflineError: DNS failure, refused or timed-out connection.
    """
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        raise OfflineError(
            f"Cannot reach Yahoo Finance ({host}:{port}); nothing was downloaded",
            found=f"{type(err).__name__}: {err}",
            fix=_OFFLINE_HINT,
        ) from err


def normalize_download(raw: pd.DataFrame, symbol: str, interval: str) -> pd.DataFrame:
    """Turn a yfinance frame (one ticker, any column layout) into canonical bars.

    Selects ``symbol`` from MultiIndex columns, maps ``Open .. Volume`` and
    ``Adj Close`` to canonical names, drops all-NaN rows (yfinance pads), stamps
    daily bars at 00:00 UTC of their exchange date and converts intraday stamps
    (bar starts, exchange time zone) to UTC. Not validated: callers do that.

    Raises:
        FetchError: the frame has no OHLCV columns for ``symbol``.
    """
    frame = raw
    if isinstance(frame.columns, pd.MultiIndex):
        level = next(
            (i for i in range(frame.columns.nlevels) if symbol in frame.columns.get_level_values(i)),
            None,
        )
        if level is None:
            raise FetchError(
                f"The download has no columns for {symbol}",
                found=f"columns {list(frame.columns)[:8]}",
                fix="report this: yfinance changed its output shape",
            )
        frame = frame.xs(symbol, axis=1, level=level)
    columns = canonical_columns(frame)
    if not all(f in columns for f in ("open", "high", "low", "close", "volume")):
        raise FetchError(
            f"The download for {symbol} lacks OHLCV columns",
            found=f"columns {list(map(str, frame.columns))}",
            fix="report this: yfinance changed its output shape",
        )
    out = pd.DataFrame(
        {key: pd.to_numeric(frame[col], errors="coerce").astype("float64") for key, col in columns.items()}
    )
    out = out.dropna(how="all", subset=["open", "high", "low", "close"])
    index = pd.DatetimeIndex(out.index)
    if is_intraday(interval):
        out.index = as_utc_ns(index if index.tz is not None else index.tz_localize("UTC"))
    else:
        out.index = daily_stamps(index)
    out.index.name = INDEX_NAME
    return out
