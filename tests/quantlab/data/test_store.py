"""Store round trips, appends, merges, panels and metadata."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantlab.data import SeriesWrite, delete_series, frame_hash, info, load, write_bars, write_many
from quantlab.errors import DataError, StoreError

from .conftest import assert_bitwise_equal, file_digest, make_bars

STAMP = "2026-01-01T00:00:00Z"


def test_round_trip_write_append_read_is_bit_exact(store: Path) -> None:
    bars = make_bars(300, adj_close=True)
    first, second = bars.iloc[:200], bars.iloc[200:]
    created = write_bars(first, "spy", store=store, adjustment="split", source="test", updated_at=STAMP)
    appended = write_bars(
        second,
        "SPY",
        store=store,
        adjustment="split",
        source="test",
        mode="append",
        updated_at=STAMP,
    )
    assert created.created and created.rows_after == 200
    assert (appended.rows_before, appended.added, appended.rewritten, appended.rows_after) == (
        200,
        100,
        0,
        300,
    )
    assert_bitwise_equal(load("SPY", store=store), bars)
    assert frame_hash(load("SPY", store=store)) == frame_hash(bars)


def test_layout_dtypes_chunking_and_attributes(store: Path) -> None:
    write_bars(
        make_bars(50, freq="1min"),
        "QQQ",
        "1m",
        store=store,
        adjustment="raw",
        source="csv:x.csv",
        label="end",
        updated_at=STAMP,
    )
    with h5py.File(store, "r") as f:
        group = f["QQQ/1m"]
        assert group["time"].dtype == np.int64
        for name in ("open", "high", "low", "close", "volume"):
            ds = group[name]
            assert ds.dtype == np.float64 and ds.maxshape == (None,) and ds.chunks is not None
            assert ds.compression == "gzip"
        assert group["time"].shuffle and group["volume"].shuffle and not group["close"].shuffle
        assert list(group.attrs) == [
            "adjustment",
            "interval",
            "last_update",
            "source",
            "source_label",
            "symbol",
            "timezone",
        ]
        assert group.attrs["adjustment"] == "raw" and group.attrs["source_label"] == "end"
        assert group.attrs["last_update"] == STAMP and group.attrs["timezone"] == "America/New_York"


def test_load_returns_utc_index_named_time_and_float64(store: Path) -> None:
    write_bars(make_bars(30), "SPY", store=store)
    frame = load("SPY", store=store)
    assert isinstance(frame.index, pd.DatetimeIndex) and str(frame.index.tz) == "UTC" and frame.index.name == "time"
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert all(dtype == np.float64 for dtype in frame.dtypes)


def test_start_end_are_inclusive_and_accept_strings_and_timestamps(store: Path) -> None:
    bars = make_bars(20)  # business days from 2024-01-02
    write_bars(bars, "SPY", store=store)
    part = load("SPY", start="2024-01-03", end="2024-01-05", store=store)
    assert list(part.index.strftime("%Y-%m-%d")) == ["2024-01-03", "2024-01-04", "2024-01-05"]
    same = load(
        "SPY",
        start=pd.Timestamp("2024-01-03", tz="UTC"),
        end=pd.Timestamp("2024-01-05", tz="UTC"),
        store=store,
    )
    assert_bitwise_equal(same, part)
    assert load("SPY", start="2030-01-01", store=store).empty


def test_date_only_end_covers_the_whole_day_for_intraday(store: Path) -> None:
    bars = make_bars(390 * 2, start="2024-01-02", freq="1min")  # 14:30 UTC + 13 h: runs past UTC midnight
    write_bars(bars, "SPY", "1m", store=store)
    day = load("SPY", start="2024-01-02", end="2024-01-02", interval="1m", store=store)
    assert len(day) == len(bars[bars.index < pd.Timestamp("2024-01-03", tz="UTC")])
    assert day.index[-1] < pd.Timestamp("2024-01-03", tz="UTC")


def test_merge_deduplicates_and_new_values_win(store: Path) -> None:
    bars = make_bars(40)
    write_bars(bars.iloc[:30], "SPY", store=store)
    update = bars.iloc[25:].copy()
    update.iloc[0, update.columns.get_loc("volume")] = 123.0  # a revised bar inside the overlap
    result = write_bars(update, "SPY", store=store, mode="merge")
    assert (result.rows_before, result.rows_after, result.added, result.rewritten) == (
        30,
        40,
        10,
        5,
    )
    merged = load("SPY", store=store)
    assert merged.index.is_unique and merged.index.is_monotonic_increasing and len(merged) == 40
    assert merged["volume"].iloc[25] == 123.0
    expected = bars.copy()
    expected.iloc[25, expected.columns.get_loc("volume")] = 123.0
    assert_bitwise_equal(merged, expected)


def test_merge_of_identical_bars_changes_nothing_not_even_bytes(store: Path) -> None:
    bars = make_bars(20)
    write_bars(bars, "SPY", store=store, updated_at=STAMP)
    before = file_digest(store)
    result = write_bars(bars.iloc[5:], "SPY", store=store, updated_at="2030-01-01T00:00:00Z")
    assert not result.changed
    assert file_digest(store) == before


def test_append_refuses_to_rewrite_history(store: Path) -> None:
    bars = make_bars(20)
    write_bars(bars, "SPY", store=store)
    with pytest.raises(StoreError, match="rewrite history"):
        write_bars(bars.iloc[10:], "SPY", store=store, mode="append")


def test_replace_overwrites_the_series(store: Path) -> None:
    write_bars(make_bars(20, seed=1), "SPY", store=store)
    fresh = make_bars(5, seed=2)
    write_bars(fresh, "SPY", store=store, mode="replace")
    assert_bitwise_equal(load("SPY", store=store), fresh)


def test_adjusted_bars_are_not_appended_to_raw_series(store: Path) -> None:
    bars = make_bars(20)
    write_bars(bars.iloc[:10], "AAPL", store=store, adjustment="raw")
    before = file_digest(store)
    with pytest.raises(StoreError) as err:
        write_bars(bars.iloc[10:], "AAPL", store=store, adjustment="total_return")
    message = str(err.value)
    assert (
        "Refusing to mix adjustments" in message and "raw (as traded)" in message and "total-return adjusted" in message
    )
    assert file_digest(store) == before


def test_columns_must_match_the_stored_series(store: Path) -> None:
    write_bars(make_bars(10, adj_close=True), "SPY", store=store, adjustment="split")
    later = make_bars(20).iloc[10:]
    with pytest.raises(StoreError, match="Columns"):
        write_bars(later, "SPY", store=store, adjustment="split")


def test_panel_inner_and_outer_join(store: Path) -> None:
    spy = make_bars(10, seed=1)
    qqq = make_bars(10, seed=2).iloc[2:]  # starts two days later
    write_many([SeriesWrite(spy, "SPY"), SeriesWrite(qqq, "QQQ")], store=store)
    panel = load(["SPY", "QQQ"], store=store)
    assert panel.columns.names == ["field", "symbol"]
    assert list(panel["close"].columns) == ["SPY", "QQQ"]
    assert len(panel) == 8 and panel.index.equals(qqq.index)
    np.testing.assert_array_equal(panel["close"]["SPY"].to_numpy(), spy["close"].iloc[2:].to_numpy())
    outer = load(["SPY", "QQQ"], store=store, how="outer")
    assert len(outer) == 10 and outer["close"]["QQQ"].isna().sum() == 2
    assert list(outer.columns.get_level_values("field").unique()) == [
        "open",
        "high",
        "low",
        "close",
        "volume",
    ]


def test_panel_fields_are_the_ones_every_symbol_has(bundled_copy: Path) -> None:
    panel = load(["SPY", "AAPL"], store=bundled_copy)
    assert "adj_close" in panel.columns.get_level_values("field")
    assert panel.index.is_monotonic_increasing and panel["close"].notna().all().all()


def test_info_lists_every_series(store: Path) -> None:
    write_many(
        [
            SeriesWrite(make_bars(10), "SPY", adjustment="split", source="a"),
            SeriesWrite(make_bars(5, freq="1min"), "SPY", "1m"),
        ],
        store=store,
        updated_at=STAMP,
    )
    listing = info(store)
    assert [(s.symbol, s.interval, s.rows) for s in listing] == [
        ("SPY", "1d", 10),
        ("SPY", "1m", 5),
    ]
    daily = listing[0]
    assert daily.first == pd.Timestamp("2024-01-02", tz="UTC") and daily.adjustment == "split"
    assert daily.source == "a" and daily.last_update == STAMP and daily.timezone == "America/New_York"


def test_same_writes_give_the_same_bytes(tmp_path: Path) -> None:
    def build(path: Path) -> str:
        bars = make_bars(500, freq="1min")
        write_bars(bars.iloc[:300], "SPY", "1m", store=path, updated_at=STAMP)
        write_bars(bars.iloc[300:], "SPY", "1m", store=path, updated_at=STAMP)
        write_bars(make_bars(50), "QQQ", store=path, updated_at=STAMP)
        return file_digest(path)

    assert build(tmp_path / "a.h5") == build(tmp_path / "b.h5")


def test_appends_reuse_freed_space_instead_of_growing_without_bound(store: Path) -> None:
    bars = make_bars(2000, freq="1min")
    write_bars(bars.iloc[:10], "SPY", "1m", store=store)
    for i in range(10, 2000, 40):
        write_bars(bars.iloc[i : i + 40], "SPY", "1m", store=store, mode="append")
    appended_size = store.stat().st_size
    fresh = store.with_name("fresh.h5")
    write_bars(bars, "SPY", "1m", store=fresh)
    assert_bitwise_equal(load("SPY", interval="1m", store=store), bars)
    assert appended_size < 2 * fresh.stat().st_size  # without persistent free space: ~10x


def test_delete_series(store: Path) -> None:
    write_many([SeriesWrite(make_bars(10), "SPY"), SeriesWrite(make_bars(10), "QQQ")], store=store)
    delete_series("SPY", "1d", store=store)
    assert [s.symbol for s in info(store)] == ["QQQ"]


def test_validation_rejects_bad_frames_before_writing(store: Path) -> None:
    bars = make_bars(10)
    bars.iloc[3, 0] = np.nan
    with pytest.raises(DataError, match="'open' has 1 NaN"):
        write_bars(bars, "SPY", store=store)
    assert not store.exists()


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 400),
    split=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_property_any_split_into_write_plus_append_round_trips(
    tmp_path_factory: pytest.TempPathFactory, n: int, split: float, seed: int
) -> None:
    store = tmp_path_factory.mktemp("prop") / "m.h5"
    bars = make_bars(n, freq="1min", seed=seed)
    cut = int(n * split)
    if cut:
        write_bars(bars.iloc[:cut], "X", "1m", store=store)
    if cut < n:
        write_bars(bars.iloc[cut:], "X", "1m", store=store, mode="append")
    assert_bitwise_equal(load("X", interval="1m", store=store), bars)
