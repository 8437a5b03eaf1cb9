"""The committed data/market.h5 is reproducible from the real CSV files (vendored in tests/fixtures) by the build script."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from quantlab.data import _bundle, info, load

from .conftest import BUNDLED_STORE, file_digest


def test_rebuild_matches_the_committed_store(real_data: Path, tmp_path: Path) -> None:
    rebuilt = _bundle.build(real_data, tmp_path / "market.h5")
    committed = {(s.symbol, s.interval): s for s in info(BUNDLED_STORE)}
    fresh = {(s.symbol, s.interval): s for s in info(rebuilt)}
    assert committed == fresh
    for symbol, interval in committed:
        a = load(symbol, interval=interval, store=BUNDLED_STORE)
        b = load(symbol, interval=interval, store=rebuilt)
        np.testing.assert_array_equal(a.index.asi8, b.index.asi8)
        for column in a.columns:
            np.testing.assert_array_equal(a[column].to_numpy().view(np.uint64), b[column].to_numpy().view(np.uint64))
    if h5py.version.hdf5_version == _bundle.BUNDLE_HDF5_VERSION:  # byte layout is library-specific
        assert file_digest(rebuilt) == file_digest(BUNDLED_STORE)


def test_bundle_content_and_size() -> None:
    series = {(s.symbol, s.interval): s for s in info(BUNDLED_STORE)}
    assert set(series) == {
        ("SPY", "1d"),
        ("QQQ", "1d"),
        ("IWM", "1d"),
        ("DIA", "1d"),
        ("AAPL", "1d"),
        ("MSFT", "1d"),
        ("SPY", "1m"),
    }
    assert series[("SPY", "1m")].rows == 1950 and series[("SPY", "1m")].source_label == "end"
    assert all(s.last_update == _bundle.BUNDLE_TIMESTAMP for s in series.values())
    assert BUNDLED_STORE.stat().st_size < 3_000_000


def test_build_refuses_inputs_that_differ(tmp_path: Path, real_data: Path) -> None:
    import pytest

    from quantlab.errors import DataError

    fake = tmp_path / "shared"
    (fake / "daily").mkdir(parents=True)
    (fake / "daily" / "SPY.csv").write_text(
        (real_data / "daily" / "SPY.csv").read_text().replace("148.25", "148.26", 1)
    )
    with pytest.raises(DataError, match="differs from the recorded file"):
        _bundle.build(fake, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()
