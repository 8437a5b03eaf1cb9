"""Fixtures for the market-data tests: temp stores, synthetic bars, bit-exact comparison."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[3]
BUNDLED_STORE = REPO / "data" / "market.h5"


def make_bars(
    n: int = 20, start: str = "2024-01-02", freq: str = "1D", seed: int = 0, adj_close: bool = False
) -> pd.DataFrame:
    """Valid OHLCV bars with full-precision floats (so any lossy step shows)."""
    rng = np.random.default_rng(seed)
    if freq == "1D":
        index = pd.bdate_range(start, periods=n, tz="UTC")
    else:
        index = pd.date_range(
            pd.Timestamp(start, tz="America/New_York") + pd.Timedelta(hours=9, minutes=30),
            periods=n,
            freq=freq,
        ).tz_convert("UTC")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.integers(1, 10**7, n).astype(float),
        },
        index=pd.DatetimeIndex(index, name="time").as_unit("ns"),
    )
    if adj_close:
        frame["adj_close"] = close * 0.9
    return frame


def assert_bitwise_equal(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same index (int64 ns), same columns, same float64 bit patterns."""
    assert list(actual.columns) == list(expected.columns)
    assert str(actual.index.tz) == "UTC" and actual.index.name == "time"
    np.testing.assert_array_equal(actual.index.as_unit("ns").asi8, expected.index.as_unit("ns").asi8)
    for column in expected.columns:
        assert actual[column].dtype == np.float64, column
        a = actual[column].to_numpy().view(np.uint64)
        b = expected[column].to_numpy(dtype=np.float64).view(np.uint64)
        np.testing.assert_array_equal(a, b, err_msg=column)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store path in a fresh temp folder (the file does not exist yet)."""
    return tmp_path / "market.h5"


@pytest.fixture
def bundled_copy(tmp_path: Path) -> Path:
    """A private copy of the committed ``data/market.h5``."""
    target = tmp_path / "bundle" / "market.h5"
    target.parent.mkdir()
    target.write_bytes(BUNDLED_STORE.read_bytes())
    return target
