"""Import guards found by review: a different source is never merged silently, and the
declared interval must match the file's bar spacing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from quantlab import data
from quantlab.cli import cli
from quantlab.errors import DataError, StoreError


def test_as_traded_prices_are_not_merged_into_a_split_adjusted_series(real_data: Path, tmp_path: Path) -> None:
    store = tmp_path / "s.h5"
    data.import_csv(real_data / "daily" / "AAPL.csv", "AAPL", store=store)
    before = data.load("AAPL", store=store)
    with pytest.raises(StoreError, match="overlapping AAPL 1d bars differ") as info:
        data.import_csv(real_data / "actions" / "AAPL_daily_as_traded.csv", "AAPL", store=store, adjustment="split")
    assert "--replace" in str(info.value)
    after = data.load("AAPL", store=store)
    assert after.equals(before)  # stored data untouched


def test_alpha_vantage_as_traded_file_defaults_to_raw(real_data: Path, tmp_path: Path) -> None:
    store = tmp_path / "s.h5"
    data.import_csv(real_data / "actions" / "AAPL_daily_as_traded.csv", "AAPL", store=store)
    assert {i.symbol: i.adjustment for i in data.info(store)}["AAPL"] == "raw"


def test_same_values_still_merge(real_data: Path, tmp_path: Path) -> None:
    store = tmp_path / "s.h5"
    data.import_csv(real_data / "daily" / "SPY.csv", "SPY", store=store)
    again = data.import_csv(real_data / "daily" / "SPY.csv", "SPY", store=store)
    assert again.added == 0


@pytest.mark.parametrize(
    ("file", "interval"),
    [("daily/SPY.csv", "1m"), ("intraday/SPY_15min.csv", "1h"), ("intraday/SPY_1min.csv", "5m")],
)
def test_declared_interval_must_match_the_bar_spacing(
    real_data: Path, tmp_path: Path, file: str, interval: str
) -> None:
    with pytest.raises(DataError, match=f"apart, not {interval}"):
        data.import_csv(real_data / file, "X", interval=interval, store=tmp_path / "s.h5")
    result = CliRunner().invoke(
        cli,
        [
            "data",
            "import",
            str(real_data / file),
            "--symbol",
            "X",
            "--interval",
            interval,
            "--store",
            str(tmp_path / "c.h5"),
        ],
    )
    assert result.exit_code != 0 and "apart, not" in result.output


def test_end_labelled_intraday_file_is_flagged(real_data: Path, tmp_path: Path) -> None:
    args = ["data", "import", str(real_data / "intraday" / "SPY_15min.csv"), "--symbol", "SPY"]
    plain = CliRunner().invoke(cli, [*args, "--store", str(tmp_path / "a.h5")])
    assert plain.exit_code == 0 and "labels bars by their end time" in plain.output
    labelled = CliRunner().invoke(cli, [*args, "--label", "end", "--store", str(tmp_path / "b.h5")])
    assert labelled.exit_code == 0 and "end time" not in labelled.output
