"""Real daily bars (vendored, tests/fixtures) for engine tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.research.conftest import read_daily


@pytest.fixture(scope="session")
def daily(real_data: Path) -> dict[str, pd.DataFrame]:
    return {s: read_daily(real_data, s) for s in ("SPY", "QQQ", "AAPL", "XOM", "JPM")}
