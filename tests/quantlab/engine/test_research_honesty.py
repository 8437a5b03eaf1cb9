"""Issue 10, research bugs: conclusions the tool must not let a user draw silently.

Each test runs on the real bundled store (data/market.h5) and failed before its fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import quantlab
from quantlab.cli import cli
from quantlab.errors import ParameterError

# Bollinger reversion on two years of SPY: the widest bands never trade (7 of 140 rows).
BOLL = dict(
    strategy="bollinger_reversion",
    symbols="SPY",
    grid="window=5:100:5,width=0.5:3.5:0.5",
    start="2019-01-01",
    end="2020-12-31",
    save=False,
)


@pytest.mark.parametrize("metric", ["max_drawdown", "volatility", "n_orders", "fees", "exposure"])
def test_rows_that_never_trade_never_win_the_grid(metric: str) -> None:
    result = quantlab.optimize(**BOLL, metric=metric)  # type: ignore[arg-type]
    assert (result.results["n_orders"] == 0).sum() > 0  # the grid does hold do-nothing rows
    winner = result.ranking[result.ranking["passes"]].iloc[0]
    assert winner["n_orders"] > 0
    assert not result.ranking.loc[result.ranking["n_orders"] == 0, "passes"].any()


def test_rows_that_never_trade_never_win_tpe(tmp_path: Path) -> None:
    result = quantlab.optimize(
        **BOLL,
        metric="max_drawdown",
        method="tpe",
        trials=25,
        seed=2,  # type: ignore[arg-type]
        storage=f"sqlite:///{tmp_path / 't.db'}",
    )
    assert (result.results["n_orders"] == 0).any()  # TPE tried some, reported, not ranked
    assert result.ranking[result.ranking["passes"]].iloc[0]["n_orders"] > 0


def test_holdout_percentile_ignores_rows_that_never_trade() -> None:
    result = quantlab.optimize(**BOLL, metric="max_drawdown", holdout=0.3)  # type: ignore[arg-type]
    res = result.results
    traded = res[res["holdout_n_orders"] > 0]
    assert (res["holdout_n_orders"] == 0).any()
    best = result.best
    row = res[(res["window"] == best["window"]) & (res["width"] == best["width"])].iloc[0]
    value = row["holdout_max_drawdown"]
    expected = float(np.mean(traded["holdout_max_drawdown"].to_numpy() < value))
    assert result.holdout.iloc[0]["holdout_percentile"] == pytest.approx(expected)


def test_walkforward_never_picks_a_do_nothing_set_and_says_when_it_must() -> None:
    wf = quantlab.walkforward(
        "bollinger_reversion",
        "SPY",
        "window=5:100:5,width=0.5:3.5:0.5",
        train="1y",
        test="6m",
        start="2017-01-01",
        end="2020-12-31",
        metric="max_drawdown",
        save=False,
    )
    assert (wf.folds["is_n_trades"] > 0).all()
    flat = wf.folds["oos_n_trades"] == 0  # chosen set idle in its test window: unranked, counted
    assert wf.folds.loc[flat, "oos_rank"].isna().all()
    assert wf.summary["walkforward"]["overfit"]["SPY"]["folds_flat_out_of_sample"] == int(flat.sum())
    # Only do-nothing sets on offer: the run refuses instead of certifying a flat strategy.
    with pytest.raises(ParameterError, match="never trade"):
        quantlab.walkforward(
            "bollinger_reversion",
            "SPY",
            "window=100,width=3:3.5:0.5",
            train="6m",
            test="3m",
            start="2017-01-01",
            end="2018-12-31",
            metric="max_drawdown",
            save=False,
        )


# --- TPE resume ---------------------------------------------------------------------------------


def test_resumed_tpe_study_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    common = dict(method="tpe", seed=11, save=False, study="s", metric="sharpe")
    grid = "fast=5:60,slow=20:200"
    quantlab.optimize("sma_cross", "SPY", grid, trials=5, storage=f"sqlite:///{tmp_path / 'a.db'}", **common)
    resumed = quantlab.optimize("sma_cross", "SPY", grid, trials=25, storage=f"sqlite:///{tmp_path / 'a.db'}", **common)
    fresh = quantlab.optimize("sma_cross", "SPY", grid, trials=25, storage=f"sqlite:///{tmp_path / 'b.db'}", **common)
    assert resumed.summary["study"]["resumed_from"] == 5
    pairs = resumed.results[["fast", "slow"]].to_numpy()
    assert len(np.unique(pairs, axis=0)) == 25  # no trial proposed twice
    np.testing.assert_array_equal(pairs, fresh.results[["fast", "slow"]].to_numpy())
    assert resumed.summary["study"]["objective"] == fresh.summary["study"]["objective"]


def test_more_trials_extend_the_default_study(tmp_path: Path) -> None:
    common = dict(method="tpe", seed=4, save=False, reports=tmp_path)
    quantlab.optimize("sma_cross", "SPY", "fast=5:60,slow=20:200", trials=4, **common)
    more = quantlab.optimize("sma_cross", "SPY", "fast=5:60,slow=20:200", trials=8, **common)
    assert more.summary["study"]["resumed_from"] == 4 and more.summary["n_combinations"] == 8


# --- --blocks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("blocks", [0, 2, 3, 7, 22, -4])
def test_bad_blocks_are_refused_before_any_work(blocks: int) -> None:
    with pytest.raises(ParameterError, match="--blocks"):
        quantlab.optimize("sma_cross", "SPY", "fast=5:20:5,slow=30:60:10", n_blocks=blocks, save=False)


def test_blocks_must_fit_the_in_sample_window() -> None:
    with pytest.raises(ParameterError, match="--blocks 20 needs at least 80 in-sample bars") as err:
        quantlab.optimize("sma_cross", "SPY", "fast=5:10:5,slow=20:30:10", n_blocks=20, start="2022-08-01", save=False)
    assert "use --blocks" in str(err.value)


def test_blocks_cli_exits_non_zero_with_a_message() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "optimize",
            "--strategy",
            "sma_cross",
            "--symbols",
            "SPY",
            "--grid",
            "fast=5:20:5,slow=30:60:10",
            "--blocks",
            "0",
            "--report",
            "none",
        ],
    )
    assert result.exit_code != 0 and "--blocks" in result.output and "Traceback" not in result.output


# --- runs that should fail ----------------------------------------------------------------------


def test_a_fixed_param_that_the_grid_also_sweeps_is_an_error() -> None:
    with pytest.raises(ParameterError, match="both"):
        quantlab.optimize("sma_cross", "SPY", "fast=5:20:5,slow=30:60:10", params="fast=10", save=False)
    result = CliRunner().invoke(
        cli,
        [
            "optimize",
            "--strategy",
            "sma_cross",
            "--symbols",
            "SPY",
            "--grid",
            "fast=5:20:5,slow=30:60:10",
            "-p",
            "fast=10",
            "--report",
            "none",
        ],
    )
    assert result.exit_code != 0 and "fast" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("grid", ["fast=5,,slow=50", ",fast=5", "fast=5,", "fast=5, ,slow=50"])
def test_empty_grid_items_are_refused(grid: str) -> None:
    with pytest.raises(ParameterError, match="empty"):
        quantlab.optimize("sma_cross", "SPY", grid, save=False)


def test_python_grid_accepts_ranges_lists_and_arrays() -> None:
    text = quantlab.optimize("sma_cross", "SPY", "fast=5:35:5,slow=50|100", start="2015-01-01", save=False)
    native = quantlab.optimize(
        "sma_cross", "SPY", {"fast": range(5, 40, 5), "slow": [50, 100]}, start="2015-01-01", save=False
    )
    arrays = quantlab.optimize(
        "sma_cross",
        "SPY",
        {"fast": np.arange(5, 40, 5), "slow": np.array([50.0, 100.0])},
        start="2015-01-01",
        save=False,
    )
    for other in (native, arrays):
        np.testing.assert_array_equal(
            other.results[["fast", "slow"]].to_numpy(), text.results[["fast", "slow"]].to_numpy()
        )
        assert other.best == text.best
    with pytest.raises(ParameterError, match="outside its valid range"):
        quantlab.optimize("sma_cross", "SPY", {"fast": range(0, 10)}, save=False)
    with pytest.raises(ParameterError, match="no values"):
        quantlab.optimize("sma_cross", "SPY", {"fast": []}, save=False)
    with pytest.raises(ParameterError, match="has no parameter"):
        quantlab.optimize("sma_cross", "SPY", {"fsat": [5, 10]}, save=False)
    with pytest.raises(ParameterError, match="not a number|must be a number"):
        quantlab.optimize("sma_cross", "SPY", {"fast": ["a"]}, save=False)


# --- DSR: trial variance and N from the same trials -----------------------------------------------


def test_dsr_deflates_by_the_trading_trials_only_by_hand() -> None:
    """Bailey & Lopez de Prado (2014) by hand: V and N over the same set, the trials that traded."""
    from scipy.stats import kurtosis, norm, skew

    result = quantlab.optimize(**BOLL, metric="sharpe")  # type: ignore[arg-type]
    rows = result.results[result.results["n_orders"] > 0]
    assert len(rows) < len(result.results)  # some rows never traded
    srs = rows["sharpe"].to_numpy() / np.sqrt(252)  # per-bar Sharpe of every trading trial
    n, v = len(srs), np.var(srs, ddof=1)
    gamma = 0.5772156649015329
    sr0 = np.sqrt(v) * ((1 - gamma) * norm.ppf(1 - 1 / n) + gamma * norm.ppf(1 - 1 / (n * np.e)))
    value = result.records["SPY"].value
    r = value / np.concatenate(([100_000.0], value[:-1])) - 1
    sr = r.mean() / r.std(ddof=1)
    g3, g4 = skew(r), kurtosis(r, fisher=False)
    dsr = norm.cdf((sr - sr0) * np.sqrt(len(r) - 1) / np.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2))
    stats = result.overfit["SPY"]
    assert stats["n_trials"] == n and stats["n_never_traded"] == len(result.results) - n
    assert stats["deflated_sharpe"]["sr_variance"] == pytest.approx(v, rel=1e-9)
    assert stats["deflated_sharpe"]["sr0_per_bar"] == pytest.approx(sr0, rel=1e-9)
    assert stats["deflated_sharpe"]["dsr"] == pytest.approx(dsr, rel=1e-9)


# --- short samples and annualisation ----------------------------------------------------------


def test_short_samples_are_flagged_next_to_the_numbers(tmp_path: Path) -> None:
    import json

    with pytest.warns(UserWarning, match="short sample: 1,950 1m bars = 0.02 years"):
        run = quantlab.backtest("sma_cross", "SPY", "fast=5,slow=20", interval="1m", reports=tmp_path, report=False)
    saved = json.loads((Path(run.path) / "summary.json").read_text())
    assert "0.02 years" in saved["short_sample"]["SPY"]
    result = CliRunner().invoke(
        cli,
        [
            "backtest",
            "--strategy",
            "sma_cross",
            "--symbols",
            "SPY",
            "--interval",
            "1m",
            "--params",
            "fast=5,slow=20",
            "--report",
            "none",
        ],
    )
    assert result.exit_code == 0 and "short sample" in result.output
    daily = quantlab.backtest("sma_cross", "SPY", "fast=5,slow=20", save=False)
    assert daily.summary["short_sample"] == {}
    with pytest.warns(UserWarning, match="SPY holdout"):
        opt = quantlab.optimize(
            "sma_cross", "SPY", "fast=5:20:5,slow=30:60:10", start="2022-01-01", holdout=0.3, save=False
        )
    assert set(opt.summary["short_sample"]) == {"SPY in-sample", "SPY holdout"}


def test_tsmom_vol_annualises_with_the_interval() -> None:
    minute = quantlab.backtest("tsmom_vol", "SPY", "lookback=60,vol_window=30", interval="1m", save=False)
    assert minute.params["bars_per_year"] == 98_280
    stale = quantlab.backtest(
        "tsmom_vol", "SPY", "lookback=60,vol_window=30,bars_per_year=252", interval="1m", save=False
    )
    assert stale.params["bars_per_year"] == 252  # an explicit value still wins
    assert not np.allclose(minute.targets["SPY"].fillna(0), stale.targets["SPY"].fillna(0))
    opt = quantlab.optimize("tsmom_vol", "SPY", "lookback=40:80:20", interval="1m", save=False)
    assert set(opt.results["bars_per_year"]) == {98_280.0}
    assert quantlab.backtest("tsmom_vol", "SPY", save=False).params["bars_per_year"] == 252


def test_live_bridge_annualises_like_the_backtest() -> None:
    """Parity: the bridge resolves tsmom_vol's bars_per_year from its bar size, as research does."""
    from bridge.app import validate_run
    from bridge.config import BridgeConfig, StrategyConfig

    cfg = BridgeConfig(strategy=StrategyConfig(name="tsmom_vol", symbols=("SPY",), bar="1m"))
    _, params = validate_run(cfg)
    research = quantlab.backtest("tsmom_vol", "SPY", interval="1m", save=False)
    assert params == research.params and params["bars_per_year"] == 98_280
