"""Real bars (vendored, tests/fixtures) for the exit-rule reference tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tests.research.conftest import read_daily


def read_minute(real_data: Path, name: str = "SPY_1min") -> pd.DataFrame:
    """The vendored 1-minute bars with lower-case column names and a UTC index."""
    frame = pd.read_csv(real_data / "intraday" / f"{name}.csv", index_col=0, parse_dates=True)
    frame.columns = [c.lower().replace(" ", "_") for c in frame.columns]
    frame.index = frame.index.tz_localize("America/New_York").tz_convert("UTC")
    frame.index.name = "time"
    return frame.astype("float64")


__all__ = ["read_daily", "read_minute"]
