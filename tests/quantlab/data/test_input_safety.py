"""Issue 10, input and data safety: ambiguous dates and header-only files are refused
with a clear message and a non-zero exit, never stored half-right or empty."""

from __future__ import annotations

from pathlib import Path

import h5py
import pytest
from click.testing import CliRunner

from quantlab.cli import cli
from quantlab.data import check_file, check_frame, import_csv, load, write_bars
from quantlab.errors import DataError, StoreError

from .conftest import make_bars

HEADER = "Date,Open,High,Low,Close,Volume\n"


def _csv(tmp_path: Path, name: str, dates: list[str]) -> Path:
    rows = "".join(f"{d},10,11,9,10.5,100\n" for d in dates)
    path = tmp_path / name
    path.write_text(HEADER + rows)
    return path


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["data", *args])
    return result.exit_code, result.output


# ------------------------------------------------------------------ ambiguous dates


def test_mixed_day_first_and_month_first_dates_are_refused_naming_the_rows(tmp_path: Path) -> None:
    """Regression: 01/02/2020 became 2 January and 13/01/2020 13 January, exit 0."""
    path = _csv(tmp_path, "mixed.csv", ["01/02/2020", "13/01/2020", "14/01/2020"])
    store = tmp_path / "m.h5"
    with pytest.raises(DataError) as err:
        import_csv(path, "X", store=store)
    message = str(err.value)
    assert "ambiguous dates" in message
    assert "line 2 '01/02/2020'" in message  # read either way
    assert "line 3 '13/01/2020'" in message and "day-first" in message
    assert "--date-format '%d/%m/%Y'" in message
    assert not store.exists()
    code, out = _cli("import", str(path), "--symbol", "X", "--store", str(store))
    assert code == 1 and "ambiguous dates" in out and "Traceback" not in out
    code, out = _cli("check", "--file", str(path))
    assert code == 1 and "ambiguous dates" in out and "line 2" in out


def test_all_ambiguous_dates_suggest_both_orders(tmp_path: Path) -> None:
    path = _csv(tmp_path, "us.csv", ["01/02/2020", "01/03/2020", "01/06/2020"])
    with pytest.raises(DataError, match="3 date\\(s\\) read either way") as err:
        import_csv(path, "X", store=tmp_path / "m.h5")
    assert "'%d/%m/%Y' (day first) or '%m/%d/%Y' (month first)" in str(err.value)


def test_date_format_parses_the_whole_file_one_way(tmp_path: Path) -> None:
    path = _csv(tmp_path, "eu.csv", ["10/01/2020", "13/01/2020", "14/01/2020"])
    store = tmp_path / "m.h5"
    code, out = _cli("import", str(path), "--symbol", "X", "--store", str(store), "--date-format", "%d/%m/%Y")
    assert code == 0, out
    stored = load("X", store=store).index
    assert list(stored.strftime("%Y-%m-%d")) == ["2020-01-10", "2020-01-13", "2020-01-14"]
    report = check_file(path, date_format="%d/%m/%Y", calendar=None)
    assert report.first == "2020-01-10" and report.clean
    code, out = _cli("check", "--file", str(path), "--date-format", "%d/%m/%Y", "--calendar", "none")
    assert code == 0, out


def test_date_format_names_the_rows_that_do_not_match(tmp_path: Path) -> None:
    path = _csv(tmp_path, "eu.csv", ["10/01/2020", "13/01/2020", "14/01/2020"])
    with pytest.raises(DataError) as err:
        import_csv(path, "X", store=tmp_path / "m.h5", date_format="%m/%d/%Y")
    message = str(err.value)
    assert "2 date/time value(s) do not match --date-format '%m/%d/%Y'" in message
    assert "line 3 '13/01/2020', line 4 '14/01/2020'" in message
    code, out = _cli("check", "--date-format", "%d/%m/%Y")
    assert code == 2 and "--file only" in out


def test_unambiguous_and_iso_dates_need_no_format(tmp_path: Path) -> None:
    iso = _csv(tmp_path, "iso.csv", ["2020-01-10", "2020-01-13"])
    assert import_csv(iso, "X", store=tmp_path / "a.h5").rows_after == 2
    words = _csv(tmp_path, "words.csv", ["Jan 10 2020", "Jan 13 2020"])
    assert import_csv(words, "Y", store=tmp_path / "b.h5").rows_after == 2
    same = _csv(tmp_path, "same.csv", ["01/01/2021", "02/02/2021"])  # day == month
    assert import_csv(same, "Z", store=tmp_path / "c.h5").rows_after == 2


# ------------------------------------------------------------------ header-only files


def test_header_only_csv_is_refused_and_creates_no_series(tmp_path: Path, bundled_copy: Path) -> None:
    """Regression: a header-only file created an empty series that `data check` called clean."""
    path = tmp_path / "header.csv"
    path.write_text(HEADER)
    store = tmp_path / "m.h5"
    with pytest.raises(DataError, match="has a header but no rows") as err:
        import_csv(path, "X", store=store)
    assert "Fix:" in str(err.value)
    assert not store.exists()
    before = bundled_copy.read_bytes()
    code, out = _cli("import", str(path), "--symbol", "SPY", "--store", str(bundled_copy))
    assert code == 1 and "no rows" in out and "Traceback" not in out
    assert bundled_copy.read_bytes() == before
    code, out = _cli("check", "--file", str(path))
    assert code == 1 and "no rows" in out


def test_empty_series_is_never_called_clean(tmp_path: Path) -> None:
    empty = make_bars(3).iloc[:0]
    report = check_frame(empty, interval="1d", calendar=None)
    assert not report.clean and report.finding("no_bars") is not None
    assert report.finding("no_bars").severity == "error"
    with pytest.raises(DataError, match="no bars"):
        write_bars(empty, "X", store=tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


def test_empty_series_in_an_old_store_fails_data_check(tmp_path: Path) -> None:
    """Stores written before the fix may hold an empty series: check reports it as an error."""
    store = tmp_path / "m.h5"
    write_bars(make_bars(5), "SPY", store=store)
    with h5py.File(store, "r+") as f:  # what the old import of a header-only file left behind
        group = f["SPY"]["1d"]
        for name in group:
            group[name].resize((0,))
    code, out = _cli("check", "--store", str(store), "--calendar", "none")
    assert code == 1 and "no bars" in out
    code, out = _cli("list", "--store", str(store))
    assert code == 0 and "SPY" in out


# ------------------------------------------------------------------ damaged HDF5 interior


def _damage(store: Path, where: str, dataset: str = "QQQ/1d/close") -> None:
    """Overwrite 64 bytes inside the store: a dataset's first data chunk, or an object header.

    The store's datasets are chunked, so ``id.get_offset()`` (contiguous data only)
    is ``None``; the chunk's offset comes from ``id.get_chunk_info(0)``.
    """
    with h5py.File(store, "r") as f:
        obj = f[dataset]
        if where == "chunk":
            assert obj.id.get_offset() is None
            chunk = obj.id.get_chunk_info(0)
            offset = chunk.byte_offset + chunk.size // 2
        else:
            offset = h5py.h5o.get_info(obj.id).addr
    with open(store, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * 64)


DAMAGE = {
    "time_chunk": ("chunk", "QQQ/1d/time", True),  # `data list` reads first/last time: it sees this
    "close_header": ("header", "QQQ/1d/close", True),
    "close_chunk": ("chunk", "QQQ/1d/close", False),  # found only when rows are read
    "symbol_group": ("header", "QQQ", True),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_interior_gives_one_clear_message_and_the_rest_stays_readable(case: str, bundled_copy: Path) -> None:
    """Regression: list, check and backtest printed raw h5py tracebacks."""
    where, dataset, listed = DAMAGE[case]
    _damage(bundled_copy, where, dataset)
    store = str(bundled_copy)

    code, out = _cli("list", "--store", store)
    assert "Traceback" not in out and "SPY      1d" in out and "MSFT" in out
    if listed:
        assert code == 1 and "DAMAGED" in out and "cannot be read: the store is damaged there" in out
        assert "Found: QQQ" in out and "Fix: restore the store" in out
    else:
        assert code == 0

    code, out = _cli("check", "--store", store, "--calendar", "none")
    assert code == 1 and "Traceback" not in out
    assert "damaged" in out and "7 series checked" in out  # the others were checked too
    assert "SPY 1d [1d] 5759 rows" in out

    result = CliRunner().invoke(cli, ["backtest", "-s", "sma_cross", "--symbols", "QQQ", "--store", store])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "QQQ 1d cannot be read: the store" in result.output and "damaged there" in result.output

    assert len(load("SPY", store=bundled_copy)) == 5759
    with pytest.raises(StoreError, match="damaged there"):
        load(["SPY", "QQQ"], store=bundled_copy)


def test_damaged_root_group_is_one_clear_message_everywhere(bundled_copy: Path) -> None:
    with h5py.File(bundled_copy, "r") as f:
        root = h5py.h5o.get_info(f.id).addr
    with open(bundled_copy, "r+b") as fh:
        fh.seek(root + 40)  # the root's link index (B-tree address) inside its object header
        fh.write(b"\xff" * 24)
    for args in (["data", "list"], ["data", "check"], ["backtest", "-s", "sma_cross", "--symbols", "SPY"]):
        result = CliRunner().invoke(cli, [*args, "--store", str(bundled_copy)])
        assert result.exit_code == 1 and "Traceback" not in result.output, args
        assert "damaged" in result.output and "Fix: restore" in result.output, args


def test_writing_into_a_damaged_series_is_refused_cleanly(bundled_copy: Path, real_data: Path) -> None:
    _damage(bundled_copy, "header", "QQQ/1d/close")
    before = bundled_copy.read_bytes()
    code, out = _cli("import", str(real_data / "daily" / "QQQ.csv"), "--symbol", "QQQ", "--store", str(bundled_copy))
    assert code == 1 and "QQQ 1d cannot be written" in out and "Traceback" not in out
    assert bundled_copy.read_bytes() == before
    code, out = _cli("import", str(real_data / "daily" / "DIA.csv"), "--symbol", "DIA2", "--store", str(bundled_copy))
    assert code == 0, out
    assert len(load("DIA2", store=bundled_copy)) == 5759
