"""Terminal output: plain digits for money, one precision per column, `quantlab runs` at 80 columns."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from quantlab.cli import cli
from quantlab.cli._format import fmt, format_column, table
from tests.quantlab.test_report_support import source_runs  # noqa: F401


def test_money_is_printed_in_plain_digits() -> None:
    assert fmt(88930.1234, column="final_value") == "88,930.12"
    assert fmt(88930.1234) == "88,930.123"  # a plain number never switches to an exponent
    assert "e+" not in fmt(1.5e7, column="fees")
    assert fmt(0.1234, pct=True) == "12.34%"


def test_one_precision_per_column() -> None:
    assert format_column([1.5, 0.123456, 2.0], "sharpe") == ["1.500", "0.123", "2.000"]
    assert format_column([5.0, 10.0, 200.0], "fast") == ["5", "10", "200"]
    assert format_column([2.5, 3.0, 0.75], "atr_mult") == ["2.50", "3.00", "0.75"]
    assert format_column([0.1, float("nan"), float("inf")], "profit_factor") == ["0.100", "nan", "inf"]
    assert format_column([12, 3], "n_trades") == ["12", "3"]
    assert format_column([-0.25, 1.623], "in_sample_total_return") == ["-25.00%", "162.30%"]
    text = table([{"a": "x", "cagr": 0.1}, {"a": "yy", "cagr": 0.123}], ["a", "cagr"])
    assert text.splitlines()[2:] == [" x  10.00%", "yy  12.30%"]


def test_backtest_prints_money_in_plain_digits() -> None:
    out = CliRunner().invoke(
        cli,
        [
            "backtest",
            "-s",
            "sma_cross",
            "--symbols",
            "SPY",
            "-p",
            "fast=20,slow=50",
            "--start",
            "2015-01-01",
            "--report",
            "none",
        ],
    )
    assert out.exit_code == 0, out.output
    line = next(x for x in out.output.splitlines() if x.startswith("final_value"))
    value = line.split()[-1]
    assert "e+" not in value and value.count(".") == 1 and len(value.split(".")[1]) == 2, line
    fees = next(x for x in out.output.splitlines() if x.startswith("fees")).split()[-1]
    assert len(fees.split(".")[1]) == 2


def test_runs_fits_80_columns(source_runs: dict[str, Path]) -> None:  # noqa: F811
    reports = next(iter(source_runs.values())).parent
    out = CliRunner().invoke(cli, ["runs", "--reports", str(reports)], env={"COLUMNS": "80"})
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    table_lines = lines[: lines.index("")]
    assert len(table_lines) == 2 + len(source_runs)
    assert max(len(x) for x in table_lines) <= 80, "\n".join(table_lines)
    assert {"run_id", "kind", "sharpe"} <= set(table_lines[0].split())
    wide = CliRunner().invoke(cli, ["runs", "--reports", str(reports)], env={"COLUMNS": "250"})
    assert "params" in wide.output.splitlines()[0]


def test_progress_bars_on_import_and_report_building(
    tmp_path: Path,
    source_runs: dict[str, Path],  # noqa: F811
    real_data: Path,
    capsys,
) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from quantlab.reports import build

    csv = real_data / "daily" / "XOM.csv"
    out = CliRunner().invoke(
        cli, ["data", "import", str(csv), "--symbol", "XOM", "--store", str(tmp_path / "m.h5"), "--progress"]
    )
    assert out.exit_code == 0, out.output
    assert "import XOM" in out.stderr and "3/3" in out.stderr
    assert "XOM 1d: created" in out.stdout and "import XOM" not in out.stdout
    quiet = CliRunner().invoke(cli, ["data", "import", str(csv), "--symbol", "XOM", "--store", str(tmp_path / "m.h5")])
    assert quiet.exit_code == 0 and "import XOM" not in quiet.stderr  # not a terminal: no bar by default

    run = shutil.copytree(source_runs["backtest"], tmp_path / "reports" / source_runs["backtest"].name)
    capsys.readouterr()
    build(run, tearsheet=False, progress=True)
    err = capsys.readouterr().err
    assert f"report {run.name}" in err and "2/2" in err
