"""Issue 10 follow-up: one split detector. `data check` and the research refusal name the
same split dates, on the real as-traded files and where the two old detectors disagreed."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import quantlab
from quantlab import data as market
from quantlab.data import check_file, check_frame
from quantlab.errors import DataError


def _check_dates(report: market.QualityReport) -> list[str]:
    finding = report.finding("split_gaps")
    return [] if finding is None else [e.split(" ")[0] for e in finding.examples]


def _refusal_dates(store: Path, symbol: str) -> list[str]:
    with pytest.raises(DataError) as err:
        quantlab.backtest("sma_cross", symbol, "fast=5,slow=10", store=store, save=False)
    return re.findall(r"(\d{4}-\d\d-\d\d) \(", str(err.value))


@pytest.mark.parametrize(
    ("symbol", "dates"),
    [
        ("AAPL", ["2000-06-21", "2005-02-28", "2014-06-09", "2020-08-31"]),
        ("MSFT", ["2003-02-18"]),
    ],
)
def test_data_check_and_research_name_the_same_splits(
    real_data: Path, tmp_path: Path, symbol: str, dates: list[str]
) -> None:
    path = real_data / "actions" / f"{symbol}_daily_as_traded.csv"
    store = tmp_path / "raw.h5"
    market.import_csv(path, symbol, store=store)
    assert _check_dates(check_file(path)) == dates
    stored = market.check_store(store=store)
    assert [_check_dates(r) for r in stored] == [dates]
    assert _refusal_dates(store, symbol) == dates


def _raw(close: list[float], open_: list[float], adj_close: list[float] | None) -> pd.DataFrame:
    index = pd.date_range("2024-01-02", periods=len(close), freq="B", tz="UTC", name="time")
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.01,
            "low": np.minimum(open_, close) * 0.99,
            "close": close,
            "volume": 1e6,
        },
        index=index,
    )
    if adj_close is not None:
        frame["adj_close"] = adj_close
    frame.attrs["adjustment"] = "raw"
    return frame


@pytest.mark.parametrize("case", ["split_on_a_crash_day", "five_for_two"])
def test_cases_the_two_old_detectors_disagreed_on(case: str) -> None:
    """Regression: a 2:1 split on a day the stock also fell 10% (gap 2.22, 11% off 2:1, seen only
    in adj_close) passed `data check`; a 5:2 split was refused by research but passed `data check`."""
    n = 60
    close = [100.0] * n
    if case == "split_on_a_crash_day":
        close[30:] = [45.0] * (n - 30)  # 2:1 and -10%
        adj = [c * (0.5 if i < 30 else 1.0) for i, c in enumerate(close)]
    else:
        close[30:] = [40.0] * (n - 30)  # 5:2, no adj_close: the gap rule
        adj = None
    frame = _raw(close, close, adj)
    check_dates = _check_dates(check_frame(frame, name="X", adjustment="raw", calendar=None))
    with pytest.raises(DataError) as err:
        quantlab.backtest("sma_cross", "X", "fast=5,slow=10", data={"X": frame}, save=False)
    assert check_dates == ["2024-02-13"]
    assert re.findall(r"(\d{4}-\d\d-\d\d) \(", str(err.value)) == check_dates
