"""The research commands through click's runner: happy paths and every bad input."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from quantlab.cli import cli


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args))


def test_strategies_lists_every_strategy_with_parameters() -> None:
    result = run("strategies")
    assert result.exit_code == 0
    for name in ("sma_cross", "ema_cross", "rsi_reversion", "donchian_atr", "bollinger_reversion", "tsmom_vol"):
        assert name in result.output
    assert "atr_mult" in result.output and "fast < slow" in result.output


def test_backtest_prints_key_stats() -> None:
    result = run(
        "backtest",
        "--strategy",
        "sma_cross",
        "--symbols",
        "SPY",
        "--params",
        "fast=20,slow=50",
        "--cash",
        "50000",
        "--report",
        "none",
    )
    assert result.exit_code == 0, result.output
    for key in ("total_return", "sharpe", "max_drawdown", "n_trades", "Saved to"):
        assert key in result.output


def test_optimize_prints_ranking_replay_and_overfitting() -> None:
    result = run(
        "optimize",
        "--strategy",
        "sma_cross",
        "--symbols",
        "SPY,QQQ",
        "--grid",
        "fast=5:40:5,slow=20:120:20",
        "--metric",
        "sharpe",
        "--constraint",
        "max_drawdown>-0.6",
        "--top",
        "3",
        "--holdout",
        "0.3",
        "--report",
        "charts",
    )
    assert result.exit_code == 0, result.output
    for key in (
        "rank",
        "vectorbt replay of the top 3",
        "(ok)",
        "Best: fast=",
        "In-sample vs held out",
        "deflated Sharpe",
        "PBO",
        "Results:",
        "report: ",
    ):
        assert key in result.output, key


def test_optimize_tpe_runs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run(
        "optimize",
        "-s",
        "rsi_reversion",
        "--symbols",
        "SPY",
        "--method",
        "tpe",
        "--trials",
        "15",
        "--seed",
        "1",
        "--storage",
        f"sqlite:///{tmp_path / 'o.db'}",
        "--top",
        "3",
        "--report",
        "none",
    )
    assert result.exit_code == 0, result.output
    assert "15 combinations" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "sma_crss"], "did you mean sma_cross"),
        (["--grid", "fsat=5:10"], "did you mean fast"),
        (["--grid", "fast=5-10"], "not a number"),
        (["--grid", "fast=5:10", "--constraint", "max_dd > 1"], "unknown name 'max_dd'"),
        (["--grid", "fast=5:10", "--constraint", "sharpe >"], "could not parse"),
        (["--grid", "fast=150:190:10,slow=20:50:10"], "empty after applying"),
        (["--grid", "fast=100:150:10,slow=300:400:50", "--start", "2022-06-01"], "too few bars"),
        (["--symbols", "NOPE"], "NOPE"),
        (["--grid", "fast=5:10", "--metric", "sharp"], "did you mean sharpe"),
        (["--grid", "fast=5:10", "--sizing", "fraction:2"], "margin"),
        (["--grid", "fast=5:10", "--interval", "2d"], "unknown bar interval"),
    ],
)
def test_optimize_bad_input_is_one_clear_message(args: list[str], message: str) -> None:
    base = {"--strategy": "sma_cross", "--symbols": "SPY", "--report": "none"}
    for key, value in zip(args[::2], args[1::2], strict=True):
        base[key] = value
    flat = [x for pair in base.items() for x in pair]
    result = run("optimize", *flat)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output
