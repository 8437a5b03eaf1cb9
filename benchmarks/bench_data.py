"""Market-data store: load speed, file size per compression filter, write-transaction cost.

A synthetic year of 1-minute bars (252 sessions x 390 = 98,280 rows; cent prices,
integer volumes, like real SPY bars) is written to temporary stores with each
candidate filter; the chosen one (gzip-4, shuffle on time and volume only:
"gzip4_mixed") gives the headline figures.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ALL = {"time", "open", "high", "low", "close", "volume", "adj_close"}
#: name -> (compression settings, columns that get the shuffle filter)
FILTERS: dict[str, tuple[dict[str, object], set[str]]] = {
    "none": ({}, set()),
    "lzf+shuffle": ({"compression": "lzf"}, ALL),
    "gzip4+shuffle_all": ({"compression": "gzip", "compression_opts": 4}, ALL),
    "gzip4_no_shuffle": ({"compression": "gzip", "compression_opts": 4}, set()),
    "gzip1_mixed": ({"compression": "gzip", "compression_opts": 1}, {"time", "volume"}),
    "gzip4_mixed": ({"compression": "gzip", "compression_opts": 4}, {"time", "volume"}),
    "gzip9_mixed": ({"compression": "gzip", "compression_opts": 9}, {"time", "volume"}),
}


def synthetic_year(seed: int = 7) -> pd.DataFrame:
    """One year of regular-session 1-minute bars (bar starts, UTC)."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2023-01-02", periods=252)
    opens = (days + pd.Timedelta(hours=14, minutes=30)).as_unit("ns").asi8
    times = (opens[:, None] + np.arange(390, dtype=np.int64)[None, :] * 60_000_000_000).ravel()
    n = len(times)
    close = np.round(400 * np.exp(np.cumsum(rng.normal(0, 0.0004, n))), 2)
    open_ = np.round(np.concatenate(([close[0]], close[:-1])), 2)
    high = np.round(np.maximum(open_, close) + np.abs(rng.normal(0, 0.05, n)), 2)
    low = np.round(np.minimum(open_, close) - np.abs(rng.normal(0, 0.05, n)), 2)
    volume = np.round(rng.lognormal(10, 1, n))
    index = pd.DatetimeIndex(times, tz="UTC", name="time")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index)


def _set_filters(h5mod, settings) -> None:  # type: ignore[no-untyped-def]
    compression, shuffled = settings
    h5mod.COMPRESSION.clear()
    h5mod.COMPRESSION.update(compression)
    h5mod.SHUFFLED.clear()
    h5mod.SHUFFLED.update(shuffled)


def _best(func, repeat: int = 7) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run() -> list[dict]:  # type: ignore[type-arg]
    from quantlab.data import _h5, frame_hash, load, write_bars
    from quantlab.data.store import write_many

    bars = synthetic_year()
    figures: list[dict] = []  # type: ignore[type-arg]
    chosen = (dict(_h5.COMPRESSION), set(_h5.SHUFFLED))
    raw_mb = bars.memory_usage(index=True).sum() / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        for name, settings in FILTERS.items():
            path = Path(tmp) / f"{name}.h5"
            _set_filters(_h5, settings)
            try:
                write_bars(bars, "SYN", "1m", store=path, updated_at="2026-01-01T00:00:00Z")
            finally:
                _set_filters(_h5, chosen)
            seconds = _best(lambda p=path: load("SYN", interval="1m", store=p))
            note = "chosen" if settings == chosen else ""
            figures.append(
                {
                    "name": f"size_1y_1m_{name}",
                    "value": round(path.stat().st_size / 1e6, 3),
                    "unit": "MB",
                    "note": f"raw arrays {raw_mb:.2f} MB {note}".strip(),
                }
            )
            figures.append({"name": f"load_1y_1m_{name}", "value": round(seconds * 1e3, 2), "unit": "ms"})
        store = Path(tmp) / "gzip4_mixed.h5"
        loaded = load("SYN", interval="1m", store=store)
        assert frame_hash(loaded) == frame_hash(bars), "round trip changed the data"
        figures.append(
            {
                "name": "load_1y_1m",
                "value": round(_best(lambda: load("SYN", interval="1m", store=store)), 4),
                "unit": "s",
                "target": "< 1 s",
                "note": f"{len(bars):,} rows, gzip4_mixed",
            }
        )
        figures.append(
            {
                "name": "load_1m_slice_one_month",
                "value": round(
                    _best(lambda: load("SYN", "2023-06-01", "2023-06-30", interval="1m", store=store)) * 1e3,
                    2,
                ),
                "unit": "ms",
                "note": "searchsorted on time, partial read",
            }
        )
        figures.append(
            {
                "name": "frame_hash_1y_1m",
                "value": round(_best(lambda: frame_hash(loaded)) * 1e3, 2),
                "unit": "ms",
            }
        )
        # write transaction cost: copy the store, append one session, fsync, replace
        day = pd.Timedelta(days=365)
        extra = bars.iloc[:390].copy()
        extra.index = extra.index + day + pd.Timedelta(days=7)
        figures.append(
            {
                "name": "append_one_session_txn",
                "value": round(
                    _best(
                        lambda: write_bars(extra, "SYN", "1m", store=store, updated_at="2026-01-01T00:00:00Z"),
                        5,
                    )
                    * 1e3,
                    1,
                ),
                "unit": "ms",
                "note": f"store {store.stat().st_size / 1e6:.1f} MB: lock+copy+append+fsync+replace",
            }
        )

        def append_in_place() -> None:  # what the copy-on-write design avoids: unsafe if killed
            import h5py

            with h5py.File(store, "r+") as f:
                group = f["SYN/1m"]
                times = extra.index.asi8 + 10**15
                _h5.write_from(group, group["time"].shape[0], times, {c: extra[c].to_numpy() for c in extra.columns})

        figures.append(
            {
                "name": "append_one_session_in_place_unsafe",
                "value": round(_best(append_in_place, 5) * 1e3, 1),
                "unit": "ms",
                "note": "same append without copy/fsync/replace (not crash-safe), for comparison",
            }
        )
        big = Path(tmp) / "big.bin"
        big.write_bytes(np.random.default_rng(1).bytes(200_000_000))
        import shutil

        copy_s = _best(lambda: shutil.copyfile(big, Path(tmp) / "big2.bin"), 3)
        figures.append(
            {
                "name": "store_copy_throughput",
                "value": round(200 / copy_s),
                "unit": "MB/s",
                "note": "cost of copy-on-write per write transaction = store size / this",
            }
        )
        # many series in one transaction (the bundle pattern) vs one per series
        daily = bars.iloc[:6000].copy()
        daily.index = pd.DatetimeIndex(pd.bdate_range("2000-01-03", periods=6000, tz="UTC"), name="time")
        from quantlab.data.store import SeriesWrite

        items = [SeriesWrite(daily, f"S{i}", "1d") for i in range(20)]
        figures.append(
            {
                "name": "write_20_daily_series_one_txn",
                "value": round(_best(lambda: write_many(items, store=Path(tmp) / "many.h5"), 3) * 1e3, 1),
                "unit": "ms",
            }
        )
        panel_store = Path(__file__).resolve().parent.parent / "data" / "market.h5"
        if panel_store.exists():
            symbols = ["SPY", "QQQ", "IWM", "DIA", "AAPL", "MSFT"]
            figures.append(
                {
                    "name": "load_panel_6_daily_bundle",
                    "value": round(_best(lambda: load(symbols, store=panel_store)) * 1e3, 2),
                    "unit": "ms",
                }
            )
    return figures


if __name__ == "__main__":
    for fig in run():
        print(fig)
