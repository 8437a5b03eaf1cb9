"""Market data: an HDF5 store of OHLCV bars, CSV import, Yahoo download, checks.

Typical use::

    from quantlab import data
    spy = data.load("SPY", start="2020-01-01")            # one frame
    panel = data.load(["SPY", "QQQ"])                        # panel["close"] -> symbol columns
    data.info()                                              # what is stored
    report = data.check_file("messy.csv")                    # quality report of a raw file

Bars are indexed by the bar's start time (UTC ``DatetimeIndex`` named ``time``;
daily bars at 00:00 UTC of the session date) with float64 ``open high low close
volume`` (+ ``adj_close``). See ``docs/data.md``. Importing this package does not
import yfinance or exchange_calendars.
"""

from __future__ import annotations

from quantlab.data._report import Finding, QualityReport
from quantlab.data._schema import ADJUSTMENTS, FIELDS, INTERVALS
from quantlab.data._yahoo import (
    DownloadRequest,
    OfflineError,
    SymbolNotFoundError,
    TransientFetchError,
    yfinance_download,
)
from quantlab.data.actions import adjust, load_actions
from quantlab.data.csvio import CsvBars, import_csv, read_csv
from quantlab.data.fetch import FetchOptions, FetchResult, fetch, update
from quantlab.data.hashing import frame_hash
from quantlab.data.quality import check_file, check_frame, check_store
from quantlab.data.store import (
    SeriesInfo,
    SeriesWrite,
    WriteResult,
    delete_series,
    info,
    load,
    write_bars,
    write_many,
)
from quantlab.data.validate import validate_bars

__all__ = [
    "ADJUSTMENTS",
    "FIELDS",
    "INTERVALS",
    "CsvBars",
    "DownloadRequest",
    "FetchOptions",
    "FetchResult",
    "Finding",
    "OfflineError",
    "QualityReport",
    "SeriesInfo",
    "SeriesWrite",
    "SymbolNotFoundError",
    "TransientFetchError",
    "WriteResult",
    "adjust",
    "check_file",
    "check_frame",
    "check_store",
    "delete_series",
    "fetch",
    "frame_hash",
    "import_csv",
    "info",
    "load",
    "load_actions",
    "read_csv",
    "update",
    "validate_bars",
    "write_bars",
    "write_many",
    "yfinance_download",
]
