"""Real daily bars from ../shared/data for engine tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.research.conftest import read_daily


@pytest.fixture(scope="session")
def daily(shared_data: Path) -> dict[str, pd.DataFrame]:
    return {s: read_daily(shared_data, s) for s in ("SPY", "QQQ", "AAPL", "XOM", "JPM")}
