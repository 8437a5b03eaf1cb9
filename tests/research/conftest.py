"""Real bars for strategy tests, from the vendored CSV files (tests/fixtures), read directly."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest


def read_daily(shared: Path, symbol: str) -> pd.DataFrame:
    frame = pd.read_csv(shared / "daily" / f"{symbol}.csv", index_col=0, parse_dates=True)
    frame.columns = [c.lower().replace(" ", "_") for c in frame.columns]
    frame.index = frame.index.tz_localize("UTC")
    frame.index.name = "time"
    return frame.astype("float64")


@pytest.fixture(scope="session")
def daily(real_data: Path) -> dict[str, pd.DataFrame]:
    return {s: read_daily(real_data, s) for s in ("SPY", "QQQ", "AAPL", "XOM")}
