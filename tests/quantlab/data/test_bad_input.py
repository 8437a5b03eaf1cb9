"""Every kind of bad input gets a what/found/fix message, a non-zero exit, no traceback,
and leaves the store untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from quantlab.cli import cli
from quantlab.data import import_csv, info, load
from quantlab.errors import DataError, StoreError

from .conftest import file_digest

GOOD_HEADER = "Date,Open,High,Low,Close,Adj Close,Volume\n"
GOOD_ROWS = "2024-01-02,10,11,9,10.5,10.4,100\n2024-01-03,10.5,11,10,10.8,10.7,200\n"

BAD_CSVS = {
    "missing_columns": (
        "Date,Open,High,Close\n2024-01-02,10,11,10.5\n",
        "missing column(s) low, volume",
        "Date",
    ),
    "no_time_column": (
        "When,Open,High,Low,Close,Volume\nx,1,1,1,1,1\n",
        "no date/time column",
        "When",
    ),
    "unparseable_date": (
        GOOD_HEADER + "2024-01-02,10,11,9,10.5,10.4,100\nnot-a-date,10,11,9,10.5,10.4,100\n",
        "cannot parse date/time",
        "line 3: 'not-a-date'",
    ),
    "text_in_prices": (
        GOOD_HEADER + "2024-01-02,10,11,9,abc,10.4,100\n",
        "'Close' has text that is not a number",
        "line 2: 'abc'",
    ),
    "nan_price": (
        GOOD_HEADER + "2024-01-02,10,11,9,,10.4,100\n2024-01-03,10.5,11,10,10.8,10.7,200\n",
        "'close' has 1 NaN",
        "2024-01-02",
    ),
    "negative_price": (
        GOOD_HEADER + "2024-01-02,10,11,-9,10.5,10.4,100\n",
        "non-positive price",
        "-9.0",
    ),
    "unsorted_rows": (
        GOOD_HEADER + "2024-01-03,10.5,11,10,10.8,10.7,200\n2024-01-02,10,11,9,10.5,10.4,100\n",
        "1 backward time step",
        "--sort",
    ),
    "duplicate_rows": (
        GOOD_HEADER + GOOD_ROWS + "2024-01-03,10.5,11,10,10.8,10.7,200\n",
        "1 duplicate time stamp",
        "--dedupe",
    ),
    "ohlc_broken": (
        GOOD_HEADER + "2024-01-02,10,9.5,9,10.5,10.4,100\n",
        "high below max(open, close)",
        "2024-01-02",
    ),
    "empty_file": ("", "The CSV file is empty", None),
}


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_malformed_csv_is_rejected_with_what_found_fix(case: str, tmp_path: Path, bundled_copy: Path) -> None:
    text, what, found = BAD_CSVS[case]
    path = tmp_path / f"{case}.csv"
    path.write_text(text)
    digest = file_digest(bundled_copy)
    with pytest.raises(DataError) as err:
        import_csv(path, "SPY", store=bundled_copy)
    message = str(err.value)
    assert what in message
    if found:
        assert found in message
    assert "Fix:" in message
    result = CliRunner().invoke(cli, ["data", "import", str(path), "--symbol", "SPY", "--store", str(bundled_copy)])
    assert result.exit_code == 1 and what in result.output and "Traceback" not in result.output
    assert file_digest(bundled_copy) == digest


def test_missing_csv_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="CSV file not found"):
        import_csv(tmp_path / "nope.csv", "SPY", store=tmp_path / "m.h5")


def test_unknown_symbol_suggests_close_matches_and_lists_the_store(bundled_copy: Path) -> None:
    with pytest.raises(StoreError) as err:
        load("SPYY", store=bundled_copy)
    message = str(err.value)
    assert "Symbol SPYY is not in the store" in message
    assert "did you mean SPY" in message
    assert "stored symbols: AAPL, DIA, IWM, MSFT, QQQ, SPY" in message
    result = CliRunner().invoke(cli, ["data", "check", "MSTF", "--store", str(bundled_copy)])
    assert result.exit_code == 1 and "did you mean MSFT" in result.output and "Traceback" not in result.output


def test_interval_not_stored_lists_what_is(bundled_copy: Path) -> None:
    with pytest.raises(StoreError) as err:
        load("QQQ", interval="1m", store=bundled_copy)
    assert "QQQ has no 1m bars" in str(err.value) and "stored intervals for QQQ: 1d" in str(err.value)
    with pytest.raises(DataError, match="Unknown bar interval"):
        load("QQQ", interval="7m", store=bundled_copy)


def test_store_file_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "market.h5"
    with pytest.raises(StoreError) as err:
        load("SPY", store=missing)
    assert "No market-data store at" in str(err.value) and "QUANTLAB_STORE" in str(err.value)
    result = CliRunner().invoke(cli, ["data", "list", "--store", str(missing)])
    assert result.exit_code == 1 and "No market-data store" in result.output
    assert not missing.exists()


def test_not_an_hdf5_file(tmp_path: Path) -> None:
    bogus = tmp_path / "market.h5"
    bogus.write_text("Date,Open\n2020-01-01,1\n")
    with pytest.raises(StoreError, match="is not an HDF5 file") as err:
        info(bogus)
    assert "Date,Open" in str(err.value)
    result = CliRunner().invoke(cli, ["data", "import", __file__, "--symbol", "X", "--store", str(bogus)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert bogus.read_text() == "Date,Open\n2020-01-01,1\n"


def test_corrupt_truncated_store(bundled_copy: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(bundled_copy.read_bytes()[:4096])
    digest = file_digest(truncated)
    with pytest.raises(StoreError) as err:
        load("SPY", store=truncated)
    assert "corrupt or truncated" in str(err.value) and "Fix:" in str(err.value)
    result = CliRunner().invoke(cli, ["data", "check", "--store", str(truncated)])
    assert result.exit_code == 1 and "corrupt or truncated" in result.output and "Traceback" not in result.output
    assert file_digest(truncated) == digest


def test_writing_into_a_corrupt_store_is_refused_and_it_is_left_alone(
    bundled_copy: Path, tmp_path: Path, real_data: Path
) -> None:
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(bundled_copy.read_bytes()[:4096])
    digest = file_digest(truncated)
    with pytest.raises(StoreError, match="corrupt or truncated|Cannot open the store"):
        import_csv(real_data / "daily" / "SPY.csv", "SPY", store=truncated)
    assert file_digest(truncated) == digest


def test_hdf5_that_is_not_a_quantlab_store(tmp_path: Path) -> None:
    import h5py

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = [1, 2, 3]
    with pytest.raises(StoreError, match="not a quantlab market store"):
        load("SPY", store=other)


def test_bad_load_arguments(bundled_copy: Path) -> None:
    with pytest.raises(DataError, match="Cannot read the start/end time"):
        load("SPY", start="yesterday-ish", store=bundled_copy)
    with pytest.raises(DataError, match="Unknown panel join"):
        load(["SPY", "QQQ"], how="left", store=bundled_copy)
    with pytest.raises(DataError, match="Symbol must be"):
        load("SP Y/1", store=bundled_copy)


def test_unwritable_store_location_is_a_store_error(tmp_path: Path, real_data: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="Cannot write the store") as err:
        import_csv(real_data / "daily" / "SPY.csv", "SPY", store=blocker / "market.h5")
    assert "left unchanged" in str(err.value)


def test_unknown_time_zone_and_bad_fetch_dates(real_data: Path, tmp_path: Path) -> None:
    path = str(real_data / "intraday" / "SPY_1min_yf_raw_2019-12.csv")
    code = CliRunner().invoke(cli, ["data", "check", "--file", path, "--tz", "Mars/Base"])
    assert code.exit_code == 1 and "Unknown time zone" in code.output and "Traceback" not in code.output
    fetched = CliRunner().invoke(cli, ["data", "fetch", "SPY", "--start", "someday", "--store", str(tmp_path / "m.h5")])
    assert fetched.exit_code == 1 and "Cannot read the start/end date" in fetched.output


def test_daily_interval_for_an_intraday_file_is_refused(real_data: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="--interval 1d but the stamps have 390 different times of day"):
        import_csv(real_data / "intraday" / "SPY_1min.csv", "SPY", interval="1d", store=tmp_path / "m.h5")
