"""The README's tour, run as a new user would on bad input (issue 10 follow-up, item 4):
each mistake gets an error that names it, and a non-zero exit."""

from __future__ import annotations

from click.testing import CliRunner

from quantlab.cli import cli


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_start_after_end_says_so() -> None:
    """Regression: it said 'SPY has fewer than 2 bars ... fix: widen --start/--end'."""
    code, out = _run(
        "backtest",
        "--strategy",
        "sma_cross",
        "--symbols",
        "SPY",
        "--start",
        "2021-01-01",
        "--end",
        "2020-01-01",
        "--report",
        "none",
    )
    assert code != 0 and "Traceback" not in out
    assert "--start 2021-01-01 is after --end 2020-01-01" in out and "swap" in out, out


def test_a_bad_constraint_operator_is_shown_as_written() -> None:
    """Regression: '>>' was reported as 'unsupported syntax (RShift)', a Python AST name."""
    code, out = _run(
        "optimize",
        "--strategy",
        "sma_cross",
        "--symbols",
        "SPY",
        "--grid",
        "fast=5:10,slow=20:30",
        "--constraint",
        "max_drawdown>>-0.25",
    )
    assert code != 0 and "RShift" not in out
    assert "unsupported operator '>>'" in out, out


def test_exits_on_a_backtest_points_to_params() -> None:
    """Regression: `backtest --exits sl_stop=0.03` said 'No such option' and suggested --fees,
    --reports or --returns; a backtest takes exit rules in --params (issue 12)."""
    args = ("backtest", "--strategy", "sma_cross", "--symbols", "SPY", "--report", "none")
    code, out = _run(*args, "--params", "fast=20,slow=50", "--exits", "sl_stop=0.03")
    assert code not in (0, 2) and "Traceback" not in out  # 2 is click's usage error
    assert "--params" in out and "--params fast=20,slow=50,sl_stop=0.03" in out, out
    code, out = _run(*args, "--exits", "sl_stop=0.03:0.05:0.01")
    assert code != 0 and "--params sl_stop=0.03" in out and "optimize" in out, out
