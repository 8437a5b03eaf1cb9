"""CSV parsing and import: Yahoo daily, yfinance intraday with offsets, generic, labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantlab.data import import_csv, info, load, read_csv
from quantlab.data.csvio import infer_interval
from quantlab.errors import DataError

from .conftest import file_digest


def test_yahoo_daily_file_round_trips_bit_exact(real_data: Path, store: Path) -> None:
    path = real_data / "daily" / "SPY.csv"
    result = import_csv(path, "SPY", store=store)
    assert result.created and result.rows_after == 5759
    stored = load("SPY", store=store)
    raw = pd.read_csv(path)
    assert stored.index[0] == pd.Timestamp("2000-01-03", tz="UTC") and (stored.index.hour == 0).all()
    for column, source in [
        ("open", "Open"),
        ("high", "High"),
        ("low", "Low"),
        ("close", "Close"),
        ("adj_close", "Adj Close"),
        ("volume", "Volume"),
    ]:
        np.testing.assert_array_equal(stored[column].to_numpy(), raw[source].to_numpy(dtype=np.float64))
    series = info(store)[0]
    assert (
        series.adjustment == "split" and series.source == "csv:SPY.csv"
    )  # Yahoo file: Adj Close => split-adjusted OHLC


def test_yfinance_intraday_export_with_offsets_and_extra_columns(real_data: Path) -> None:
    bars = read_csv(real_data / "intraday" / "SPY_1min_yf_raw_2019-12.csv")
    assert bars.interval == "1m"
    assert bars.ignored_columns == ["Dividends", "Stock Splits"]
    assert "adj_close" not in bars.frame.columns  # empty on every row
    assert bars.frame.index[0] == pd.Timestamp("2019-12-13 16:00", tz="UTC")  # 11:00-05:00
    assert len(bars.frame) == 13435 and bars.lines[0] == 2


def test_naive_intraday_stamps_use_tz_and_end_labels_shift_back(real_data: Path) -> None:
    path = real_data / "intraday" / "SPY_1min.csv"
    as_end = read_csv(path, label="end").frame
    as_start = read_csv(path).frame
    assert as_start.index[0] == pd.Timestamp("2019-02-11 14:31", tz="UTC")  # 09:31 New York (EST)
    assert as_end.index[0] == pd.Timestamp("2019-02-11 14:30", tz="UTC")  # bar that ends 09:31 starts 09:30
    assert (as_start.index - as_end.index == pd.Timedelta(minutes=1)).all()
    utc = read_csv(path, tz="UTC").frame
    assert utc.index[0] == pd.Timestamp("2019-02-11 09:31", tz="UTC")


def test_generic_csv_with_odd_header_case_and_datetime_column(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "generic.csv"
    path.write_text(
        "TIMESTAMP,open,HIGH,Low,close,VOLUME,extra\n2024-03-01 09:30:00,10,11,9,10.5,100,x\n"
        "2024-03-01 09:35:00,10.5,11,10,10.8,200,y\n2024-03-01 09:40:00,10.8,11.2,10.7,11,300,z\n"
    )
    result = import_csv(path, "abc", store=store)
    assert (result.symbol, result.interval, result.rows_after) == ("ABC", "5m", 3)
    frame = load("ABC", interval="5m", store=store)
    assert frame.index[0] == pd.Timestamp("2024-03-01 14:30", tz="UTC")
    assert info(store)[0].adjustment == "raw"


def test_interval_inference() -> None:
    assert infer_interval(pd.DatetimeIndex(["2020-01-02", "2020-01-03"])) == "1d"
    assert infer_interval(pd.DatetimeIndex(["2020-01-02 09:30", "2020-01-02 09:45", "2020-01-02 10:00"])) == "15m"
    with pytest.raises(DataError, match="Cannot infer"):
        infer_interval(pd.DatetimeIndex(["2020-01-02 09:30", "2020-01-02 09:37", "2020-01-02 09:44"]))


def test_messy_file_is_refused_with_the_repairs_named(real_data: Path, store: Path) -> None:
    path = real_data / "intraday" / "SPY_1min_yf_raw_2019-12.csv"
    with pytest.raises(DataError) as err:
        import_csv(path, "SPY", store=store)
    message = str(err.value)
    for needle in [
        "1 empty row(s) (first on line 1940)",
        "5075 duplicate",
        "18 backward",
        "quantlab data check --file",
        "--drop-empty",
        "--dedupe",
        "--sort",
    ]:
        assert needle in message
    assert not store.exists()


def test_messy_file_imports_with_explicit_repairs(real_data: Path, store: Path) -> None:
    path = real_data / "intraday" / "SPY_1min_yf_raw_2019-12.csv"
    result = import_csv(path, "SPY", store=store, sort=True, dedupe="first", drop_empty=True)
    assert result.rows_after == 8360  # distinct stamps
    frame = load("SPY", interval="1m", store=store)
    # the three conflicting stamps keep the first copy: the one with the real volume
    assert frame.loc["2020-01-14 16:00", "volume"].item() == 70973.0
    assert frame.loc["2020-01-15 16:00", "volume"].item() == 109484.0
    assert frame.loc["2020-01-16 16:01", "volume"].item() == 244628.0
    assert frame.loc["2019-12-20 14:30"].notna().all(axis=None)  # the empty row was dropped, its filled twin kept


def test_reimport_merges_without_duplicates(real_data: Path, store: Path) -> None:
    path = real_data / "daily" / "QQQ.csv"
    import_csv(path, "QQQ", store=store)
    digest = file_digest(store)
    again = import_csv(path, "QQQ", store=store)
    assert not again.changed and file_digest(store) == digest
