"""Issue 10 item 1 (data side): `data check` flags split-sized gaps in raw series as
errors, on the real AAPL and MSFT as-traded files; `data import --actions` fixes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from quantlab.cli import cli
from quantlab.data import check_file, import_csv, load
from quantlab.data._splits import split_gaps
from quantlab.errors import DataError

AAPL_SPLITS = (
    "2000-06-21 (gap 2.005, like a 2:1 split)",
    "2005-02-28 (gap 1.992, like a 2:1 split)",
    "2014-06-09 (gap 6.964, like a 7:1 split)",
    "2020-08-31 (gap 3.913, like a 4:1 split)",
)


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["data", *args])
    return result.exit_code, result.output


def test_as_traded_files_report_every_split_as_an_error(real_data: Path) -> None:
    aapl = check_file(real_data / "actions" / "AAPL_daily_as_traded.csv")
    gaps = aapl.finding("split_gaps")
    assert gaps is not None and gaps.severity == "error" and gaps.examples == AAPL_SPLITS
    assert "--actions" in gaps.message and "split-adjusted" in gaps.message
    msft = check_file(real_data / "actions" / "MSFT_daily_as_traded.csv")
    assert msft.finding("split_gaps").examples == ("2003-02-18 (gap 1.962, like a 2:1 split)",)
    # the 2000-09-29 AAPL crash (gap 1.898) is a real move, still info only
    assert "2000-09-29 (-51.9%)" in aapl.finding("extreme_returns").examples
    assert aapl.finding("extreme_returns").severity == "info"


def test_stored_raw_series_with_splits_fails_data_check(real_data: Path, tmp_path: Path) -> None:
    """Regression: the raw AAPL series passed `data check` (exit 0, splits shown as info)."""
    store = tmp_path / "m.h5"
    import_csv(real_data / "actions" / "AAPL_daily_as_traded.csv", "AAPL", store=store)
    code, out = _cli("check", "--store", str(store))
    assert code == 1, out
    assert "error   split_gaps" in out and "2014-06-09 (gap 6.964, like a 7:1 split)" in out
    assert "quantlab data import FILE --actions ACTIONS.csv --replace" in out and "--adjust" in out


def test_split_adjusted_series_are_not_flagged(real_data: Path) -> None:
    report = check_file(real_data / "daily" / "AAPL.csv")  # Yahoo, split-adjusted
    assert report.finding("split_gaps") is None and report.clean


def test_import_with_actions_stores_split_adjusted_bars_equal_to_yahoo(real_data: Path, tmp_path: Path) -> None:
    store = tmp_path / "m.h5"
    code, out = _cli(
        "import",
        str(real_data / "actions" / "AAPL_daily_as_traded.csv"),
        "--symbol",
        "AAPL",
        "--actions",
        str(real_data / "actions" / "AAPL.csv"),
        "--store",
        str(store),
    )
    assert code == 0, out
    code, out = _cli("check", "--store", str(store))
    assert code == 0 and "split_gaps" not in out, out
    ours = load("AAPL", store=store)["close"]
    yahoo = pd.read_csv(real_data / "daily" / "AAPL.csv", index_col=0, parse_dates=True)["Close"]
    yahoo.index = yahoo.index.tz_localize("UTC")
    common = ours.index.intersection(yahoo.index)
    assert len(common) == 5200
    relative = np.abs(ours[common].to_numpy() / yahoo[common].to_numpy() - 1)
    assert np.median(relative) < 1e-6


def test_import_with_actions_refuses_what_cannot_be_right(real_data: Path, tmp_path: Path) -> None:
    raw = real_data / "actions" / "AAPL_daily_as_traded.csv"
    actions = real_data / "actions" / "AAPL.csv"
    with pytest.raises(DataError, match="adjusting it again"):
        import_csv(real_data / "daily" / "AAPL.csv", "AAPL", store=tmp_path / "a.h5", actions=actions)
    with pytest.raises(DataError, match="--adjustment raw"):
        import_csv(raw, "AAPL", store=tmp_path / "b.h5", actions=actions, adjustment="raw")
    partial = tmp_path / "no_2014.csv"
    lines = actions.read_text().splitlines(True)
    partial.write_text("".join(line for line in lines if not line.startswith("2014-06-09")))
    with pytest.raises(DataError, match="Split-sized gaps remain") as err:
        import_csv(raw, "AAPL", store=tmp_path / "c.h5", actions=partial)
    assert "2014-06-09 (like 7:1)" in str(err.value)
    assert not any((tmp_path / n).exists() for n in ("a.h5", "b.h5", "c.h5"))


def test_split_gaps_rule() -> None:
    close = np.array([100.0, 100.0, 10.0, 50.0, 52.69, 28.0])
    open_ = np.array([100.0, 100.0, 1000.5, 10.0, 10.0, 27.76])  # 1:10 reverse, 5:1, a 1.898 crash
    rows, ratios = split_gaps(open_, close)
    assert rows.tolist() == [2, 4] and ratios[0] == pytest.approx(0.1) and ratios[1] == pytest.approx(5.0)
    rows, _ = split_gaps(np.array([53.5, 28.19]), np.array([53.5, 28.0]))
    assert rows.tolist() == []  # 53.5 / 28.19 = 1.898: 5% from 2:1
