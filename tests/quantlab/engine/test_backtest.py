"""quantlab.backtest: independent and shared-cash portfolios, saved records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import quantlab
from quantlab.engine.settings import SimConfig, Sizing
from quantlab.kernels.group_sim import simulate_group_nb


def test_backtest_exposes_vectorbt_portfolio_and_saves(tmp_path: Path) -> None:
    result = quantlab.backtest("sma_cross", "SPY,QQQ", "fast=20,slow=50", reports=tmp_path, report="charts")
    assert set(result.portfolios) == {"SPY", "QQQ"}
    assert result.summary["replay_check"]["ok"]
    assert result.metrics.loc["SPY", "n_orders"] == result.portfolios["SPY"].orders.count()
    for name in ("summary.json", "metrics.csv", "equity.csv", "trades.csv", "orders.csv", "report.html"):
        assert (Path(result.path) / name).is_file()
    stats = result.stats("SPY")
    assert stats["Total Trades"] == result.metrics.loc["SPY", "n_trades"]


def test_shared_cash_group_replays_exactly(tmp_path: Path) -> None:
    sim = SimConfig(sizing=Sizing("fraction", 0.4))
    result = quantlab.backtest("sma_cross", "SPY,QQQ,IWM", "fast=10,slow=40", sim=sim, shared_cash=True, save=False)
    pf = result.portfolio
    assert list(result.portfolios) == ["portfolio"]
    # Recompute the group simulation and compare with vectorbt's cash-sharing replay.
    inputs = result.inputs
    index = pf.wrapper.index
    close = np.column_stack([inputs.frames[s]["close"].reindex(index).to_numpy() for s in inputs.symbols])
    open_ = np.column_stack([inputs.frames[s]["open"].reindex(index).to_numpy() for s in inputs.symbols])
    target = np.column_stack([result.targets[s].reindex(index).to_numpy() for s in inputs.symbols])
    n, m = close.shape
    size, fee, seq, value = np.empty((n, m)), np.empty((n, m)), np.empty((n, m), dtype=np.int64), np.empty(n)
    simulate_group_nb(target, open_, close, np.zeros((n, m)), sim.to_array(), size, fee, seq, value)
    np.testing.assert_allclose(pf.value().to_numpy(), value, rtol=1e-12)
    orders = pf.orders.records
    assert len(orders) == int((~np.isnan(size)).sum())
    assert float(pf.cash().min()) >= 0.0


def test_unknown_symbol_and_params(tmp_path: Path) -> None:
    from quantlab.errors import ParameterError, QuantlabError

    with pytest.raises(ParameterError, match="has no parameter"):
        quantlab.backtest("sma_cross", "SPY", "fsat=3", save=False)
    with pytest.raises(QuantlabError, match="ZZZZ"):
        quantlab.backtest("sma_cross", "ZZZZ", None, save=False)


def test_two_runs_with_the_same_id_never_share_a_folder(tmp_path: Path) -> None:
    from quantlab.runs.record import RunDir

    first = RunDir.create("backtest-20260101-000000-abcdef12", tmp_path)
    (first.path / "summary.json").write_text("{}")
    second = RunDir.create("backtest-20260101-000000-abcdef12", tmp_path)
    assert second.run_id == "backtest-20260101-000000-abcdef12-2" and second.path != first.path
    assert (first.path / "summary.json").read_text() == "{}" and not any(second.path.iterdir())


def test_unwritable_reports_folder_fails_before_any_work(tmp_path: Path) -> None:
    from quantlab.errors import ReportError

    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    with pytest.raises(ReportError, match="cannot write to the reports folder"):
        quantlab.optimize("sma_cross", "SPY", "fast=5:10,slow=20", method="tpe", trials=3, reports=blocker / "x")
    with pytest.raises(ReportError, match="cannot write to the reports folder"):
        quantlab.backtest("sma_cross", "SPY", None, reports=blocker / "x")


def test_shared_cash_replay_check_is_measured() -> None:
    result = quantlab.backtest(
        "sma_cross",
        "SPY,QQQ",
        "fast=10,slow=40",
        shared_cash=True,
        save=False,
        sizing={"mode": "fraction", "value": 0.5},
    )
    check = result.summary["replay_check"]
    assert check["ok"] and 0.0 <= check["max_relative_difference"] <= 1e-9


def test_shared_cash_refuses_short_borrow() -> None:
    """The group simulator charges no borrow: a rate was silently ignored (now refused)."""
    from quantlab.engine.settings import Costs
    from quantlab.errors import ParameterError

    sim = SimConfig(costs=Costs(borrow_rate=0.05), sizing=Sizing("fraction", 0.5, allow_short=True))
    with pytest.raises(ParameterError, match="short borrow is not simulated for a shared-cash group") as err:
        quantlab.backtest("sma_cross", "SPY,QQQ", "fast=10,slow=40", sim=sim, shared_cash=True, save=False)
    assert "borrow_rate=0.05" in str(err.value) and "shared_cash" in str(err.value)


def test_shared_cash_with_exit_rules_saves_reasons(tmp_path: Path) -> None:
    """Exit rules in a shared-cash group (formerly refused): replayed exactly, each order and
    round trip labelled with its rule and symbol."""
    import pandas as pd

    params = "fast=10,slow=40,sl_stop=0.03,tp_stop=0.08,max_hold=20"
    result = quantlab.backtest("sma_cross", "SPY,QQQ", params, shared_cash=True, reports=tmp_path, report=False)
    assert result.summary["replay_check"]["ok"]
    assert result.summary["params"]["sl_stop"] == 0.03
    orders = pd.read_csv(Path(result.path) / "orders.csv")
    trades = pd.read_csv(Path(result.path) / "trades.csv")
    assert set(orders["Symbol"]) == {"SPY", "QQQ"}
    assert {"signal", "stop", "target", "time"} <= set(orders["Reason"])
    closed = trades[trades["Status"] == "Closed"]
    assert {"stop", "target", "time"} <= set(closed["Exit Reason"])
    # a position's exit reason is its own symbol's closing order's
    first_stop = closed[closed["Exit Reason"] == "stop"].iloc[0]
    closing = orders[(orders["Symbol"] == first_stop["Symbol"]) & (orders["Timestamp"] == first_stop["Exit Timestamp"])]
    assert list(closing["Reason"]) == ["stop"]


@pytest.mark.filterwarnings("ignore::quantlab.engine.settings.InertSettingWarning")
def test_cli_shared_cash_runs_exit_rules(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from quantlab.cli import cli

    base = ["backtest", "-s", "sma_cross", "--symbols", "SPY,QQQ", "--shared-cash", "--reports", str(tmp_path)]
    ok = CliRunner().invoke(cli, [*base, "--params", "fast=10,slow=40,sl_trail=0.05,max_hold=15", "--report", "none"])
    assert ok.exit_code == 0, ok.output
    assert "sl_trail=0.050" in ok.output and "Saved to" in ok.output
    # the CLI cannot short, so a borrow rate is inert there: reported, not refused
    inert = CliRunner().invoke(cli, [*base, "--params", "fast=10,slow=40,sl_stop=0.03", "--borrow-rate", "0.03"])
    assert inert.exit_code == 0, inert.output
    assert "inert" in inert.output


def test_group_flip_with_fractional_shares_books_one_order() -> None:
    """A flip (or a cut to a smaller non-zero size) in the sells phase left float dust
    (desired - position ~ 1e-15) that the buys phase then traded: a dust order that
    replaced the real one in the (bar, symbol) record and paid a fixed fee."""
    from quantlab.engine.settings import Costs

    rng = np.random.default_rng(0)
    n, m = 80, 3
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, (n, m)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.02, (n, m)))
    target = np.repeat(rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0], size=(n // 3 + 1, m)), 3, axis=0)[:n]
    sim = SimConfig(
        10_000,
        Costs(model="percent", pct_fee=0.001, fixed_fee=0.3),
        Sizing("fraction", 0.45, whole_shares=False, allow_short=True),
    )
    size, fee, seq, value = np.empty((n, m)), np.empty((n, m)), np.empty((n, m), dtype=np.int64), np.empty(n)
    simulate_group_nb(target, open_, close, np.zeros((n, m)), sim.to_array(), size, fee, seq, value)
    traded = size[~np.isnan(size)]
    assert np.abs(traded).min() > 1.0
    # every target change is one order of the full difference
    changes = np.count_nonzero(np.diff(target[:-1], axis=0) != 0) + np.count_nonzero(target[0] != 0)
    assert len(traded) == changes
