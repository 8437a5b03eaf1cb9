"""Quality checks find exactly what the data PROVENANCE.md (tests/fixtures) documents."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantlab.data import check_file, check_frame, check_store, import_csv
from quantlab.data._report import QualityReport

from .conftest import make_bars

DAILY = ["SPY", "QQQ", "IWM", "DIA", "AAPL", "MSFT", "JPM", "XOM"]
#: Not vendored (no other test needs them): checked only when the shared folder is present.
DAILY_EXTRA = ["AMZN", "GOOG"]


@pytest.fixture(scope="module")
def yf_raw(real_data: Path) -> QualityReport:
    return check_file(real_data / "intraday" / "SPY_1min_yf_raw_2019-12.csv")


def _codes(report: QualityReport) -> dict[str, tuple[str, int]]:
    return {f.code: (f.severity, f.count) for f in report.findings}


def test_yf_raw_backwards_steps_and_duplicates(yf_raw: QualityReport) -> None:
    codes = _codes(yf_raw)
    assert codes["backwards"] == ("error", 18)
    assert codes["duplicates"] == ("error", 5075)
    assert "8360" not in yf_raw.finding("duplicates").message  # message counts affected stamps
    conflicting = yf_raw.finding("conflicting_duplicates")
    assert conflicting is not None and conflicting.examples == (
        "2020-01-14 11:00",
        "2020-01-15 11:00",
        "2020-01-16 11:01",
    )


def test_yf_raw_empty_row_is_named_with_its_line(yf_raw: QualityReport) -> None:
    empty = yf_raw.finding("empty_rows")
    assert empty is not None and empty.severity == "error" and empty.count == 1
    assert empty.examples == ("2019-12-20 09:30 (line 1940)",)
    assert yf_raw.finding("nan_values") is None  # the 5 NaN cells are that one row


def test_yf_raw_zero_volume_rows(yf_raw: QualityReport) -> None:
    zero = yf_raw.finding("zero_volume")
    assert zero is not None and (zero.severity, zero.count) == ("warning", 37)
    assert zero.examples[0] == "2019-12-13 11:00 (line 2)"
    assert sum(e.split(" ")[1] in ("11:00", "11:01") for e in zero.examples) == 21  # first bar of a download chunk


def test_yf_raw_partial_sessions_include_the_2020_01_10_download_gap(yf_raw: QualityReport) -> None:
    partial = yf_raw.finding("partial_sessions")
    assert partial is not None and partial.severity == "error"
    assert "2020-01-10: 90 of 390 bars, missing 2020-01-10 11:00-15:59" in partial.examples
    assert "2019-12-13: 299 of 390 bars, missing 2019-12-13 09:30-10:59" in partial.examples
    assert not any(e.startswith("2019-12-24") for e in partial.examples)  # the 13:00 early close is respected
    outside = yf_raw.finding("outside_session")
    assert outside is not None and outside.severity == "info" and outside.examples == ("2019-12-24 13:00",)
    assert not yf_raw.ok


def test_qqq_two_missing_minutes_and_zero_volume_bar(real_data: Path) -> None:
    report = check_file(real_data / "intraday" / "QQQ_1min.csv", label="end")
    missing = report.finding("missing_bars")
    assert missing is not None and missing.severity == "warning"
    assert missing.examples == (
        "2019-02-14 14:32",
        "2019-02-14 14:37",
    )  # bar-end labels, as in the file
    zero = report.finding("zero_volume")
    assert zero is not None and zero.examples == ("2019-02-14 16:00 (line 1559)",)
    assert report.ok and not report.clean and not report.errors


def test_spy_1min_only_its_zero_volume_bar(real_data: Path) -> None:
    report = check_file(real_data / "intraday" / "SPY_1min.csv", label="end")
    assert [f.code for f in report.findings] == ["zero_volume"]
    assert report.finding("zero_volume").examples == ("2019-02-11 13:10 (line 221)",)


def test_wrong_label_shows_up_as_missing_open_and_bars_after_close(real_data: Path) -> None:
    report = check_file(real_data / "intraday" / "SPY_1min.csv")  # bar-end file read as bar starts
    assert report.finding("missing_bars").examples[0] == "2019-02-11 09:30"
    assert report.finding("outside_session").examples[0] == "2019-02-11 16:00"


@pytest.mark.parametrize("symbol", DAILY)
def test_daily_files_are_clean(real_data: Path, symbol: str) -> None:
    report = check_file(real_data / "daily" / f"{symbol}.csv")
    assert report.clean, report.format_text()
    assert report.interval == "1d"


@pytest.mark.parametrize("symbol", DAILY_EXTRA)
def test_extra_daily_files_are_clean(shared_extra: Path, symbol: str) -> None:
    report = check_file(shared_extra / "daily" / f"{symbol}.csv")
    assert report.clean, report.format_text()


def test_real_daily_crashes_are_info_not_errors(real_data: Path) -> None:
    report = check_file(real_data / "daily" / "AAPL.csv")
    moves = report.finding("extreme_returns")
    assert moves is not None and moves.severity == "info" and moves.examples == ("2000-09-29 (-51.9%)",)


def test_extended_hours_file_bad_prints_and_early_close(real_data: Path) -> None:
    report = check_file(real_data / "intraday" / "SPY_1min_ext_2025-07.csv")
    assert (
        report.finding("missing_sessions") is None
    )  # 2025-07-30 20:00 New York is 07-31 UTC, still the 30th's session
    jumps = report.finding("extreme_returns")
    assert jumps is not None and jumps.severity == "warning" and jumps.count == 6
    assert jumps.examples[2].startswith("2025-07-18 17:37 (-10.1%)")
    outside = report.finding("outside_session")
    assert outside is not None and "2025-07-03 13:01" in outside.examples


def test_check_frame_on_a_raw_dataframe_with_row_problems() -> None:
    bars = make_bars(6)
    messy = pd.concat([bars.iloc[:3], bars.iloc[[1]], bars.iloc[3:]])  # duplicate + backwards step
    messy.iloc[4, messy.columns.get_loc("high")] = messy["low"].iloc[4] * 0.5
    messy.iloc[5, messy.columns.get_loc("close")] = -1.0
    messy.iloc[6, messy.columns.get_loc("volume")] = np.nan
    report = check_frame(messy, interval="1d", calendar=None)
    codes = _codes(report)
    assert codes["duplicates"] == ("error", 1) and codes["backwards"] == ("error", 1)
    assert codes["ohlc_relation"][0] == "error" and codes["nonpositive_prices"] == ("error", 1)
    assert codes["nan_values"] == ("error", 1)


def test_missing_daily_session_is_an_error(real_data: Path) -> None:
    raw = pd.read_csv(real_data / "daily" / "SPY.csv", parse_dates=["Date"], index_col="Date")
    raw = raw.drop(pd.Timestamp("2020-03-16"))
    report = check_frame(raw, interval="1d")
    missing = report.finding("missing_sessions")
    assert missing is not None and missing.severity == "error" and missing.examples == ("2020-03-16",)


def test_store_check_shows_times_as_the_source_labelled_them(bundled_copy: Path) -> None:
    reports = check_store(["SPY"], interval="1m", store=bundled_copy)
    assert len(reports) == 1 and reports[0].label == "end"
    assert reports[0].finding("zero_volume").examples == ("2019-02-11 13:10",)  # PROVENANCE says 13:10
    as_start = check_store(["SPY"], interval="1m", store=bundled_copy, label="start")[0]
    assert as_start.finding("zero_volume").examples == ("2019-02-11 13:09",)


def test_bundled_store_has_no_errors(bundled_copy: Path) -> None:
    reports = check_store(store=bundled_copy)
    assert len(reports) == 7
    assert all(r.ok for r in reports)
    assert sum(len(r.warnings) for r in reports) == 1


def test_report_json_is_serialisable(yf_raw: QualityReport, store: Path, real_data: Path) -> None:
    data = json.loads(json.dumps(yf_raw.to_dict()))
    assert data["errors"] == len(yf_raw.errors) and data["label"] == "start"
    assert {f["code"] for f in data["findings"]} >= {"backwards", "duplicates", "empty_rows"}
    import_csv(real_data / "daily" / "DIA.csv", "DIA", store=store)
    assert check_store(store=store)[0].to_dict()["findings"] == []
