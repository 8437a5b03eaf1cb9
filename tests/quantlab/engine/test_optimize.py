"""quantlab.optimize on the bundled store: results, replay check, holdout, records, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import quantlab
from quantlab.errors import DataError, ParameterError
from quantlab.kernels.layout import METRIC_NAMES

GRID = "fast=5:50:5,slow=20:200:20"


@pytest.fixture(scope="module")
def opt(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    reports = tmp_path_factory.mktemp("reports")
    return quantlab.optimize(
        "sma_cross",
        "SPY,QQQ",
        GRID,
        holdout=0.3,
        top=5,
        reports=reports,
        constraints=["max_drawdown > -0.6"],
        report=False,
    )


def test_results_cover_every_symbol_and_combination(opt) -> None:  # type: ignore[no-untyped-def]
    n = opt.summary["n_combinations"]
    assert n == len(opt.ranking) and len(opt.results) == 2 * n
    assert set(opt.results["symbol"]) == {"SPY", "QQQ"}
    assert {f"holdout_{m}" for m in METRIC_NAMES} <= set(opt.results.columns)
    assert set(opt.results["status"]) <= {"ok", "no_trades", "nan_metric"}


def test_best_is_the_top_ranked_passing_combination(opt) -> None:  # type: ignore[no-untyped-def]
    passing = opt.ranking[opt.ranking["passes"]]
    assert passing["sharpe"].is_monotonic_decreasing
    assert opt.best == {"fast": passing.iloc[0]["fast"], "slow": passing.iloc[0]["slow"]}
    per_symbol = opt.results[(opt.results["fast"] == opt.best["fast"]) & (opt.results["slow"] == opt.best["slow"])]
    assert per_symbol["sharpe"].mean() == pytest.approx(passing.iloc[0]["sharpe"])
    assert (per_symbol["max_drawdown"] > -0.6).all()


def test_top_n_replayed_through_vectorbt_agree(opt) -> None:  # type: ignore[no-untyped-def]
    check = opt.summary["replay_check"]
    assert check["ok"] and check["max_relative_difference"] <= 1e-9
    assert len(opt.top) == 2 * 5
    row = opt.top[(opt.top["symbol"] == "SPY") & (opt.top["rank"] == 1)].iloc[0]
    swept = opt.results[(opt.results["symbol"] == "SPY") & (opt.results["combo"] == row["combo"])].iloc[0]
    assert row["vbt_sharpe"] == pytest.approx(swept["sharpe"], rel=1e-9)


def test_portfolio_of_params_is_a_vectorbt_portfolio(opt) -> None:  # type: ignore[no-untyped-def]
    pf = opt.portfolio(symbol="QQQ", window="in_sample")
    row = opt.results[
        (opt.results["symbol"] == "QQQ")
        & (opt.results["fast"] == opt.best["fast"])
        & (opt.results["slow"] == opt.best["slow"])
    ].iloc[0]
    assert float(pf.total_return()) == pytest.approx(row["total_return"], rel=1e-9)
    held = opt.portfolio(symbol="QQQ", window="holdout")
    assert float(held.total_return()) == pytest.approx(row["holdout_total_return"], rel=1e-9)


def test_holdout_and_overfitting_statistics(opt) -> None:  # type: ignore[no-untyped-def]
    assert list(opt.holdout["symbol"]) == ["SPY", "QQQ"]
    assert opt.holdout["holdout_percentile"].between(0, 1).all()
    for symbol in ("SPY", "QQQ"):
        stats = opt.overfit[symbol]
        assert 0 <= stats["deflated_sharpe"]["dsr"] <= 1
        assert 0 <= stats["pbo"]["pbo"] <= 1 and stats["pbo"]["n_splits"] == 12870
        assert stats["n_trials"] == opt.summary["n_combinations"]


def test_run_is_recorded(opt) -> None:  # type: ignore[no-untyped-def]
    path = Path(opt.path)
    for name in (
        "results.parquet",
        "top.csv",
        "holdout.csv",
        "equity.csv",
        "trades.csv",
        "overfit.json",
        "summary.json",
    ):
        assert (path / name).is_file(), name
    summary = json.loads((path / "summary.json").read_text())
    assert summary["run_id"] == path.name == opt.run_id
    assert len(summary["config_hash"]) == 64 and len(summary["data_hash"]) == 64
    assert "git_sha" in summary and summary["versions"]["vectorbt"]
    assert summary["overfit"]["SPY"]["pbo"]["pbo"] == opt.overfit["SPY"]["pbo"]["pbo"]
    stored = pd.read_parquet(path / "results.parquet")
    pd.testing.assert_frame_equal(stored, opt.results.reset_index(drop=True))


def test_same_data_and_config_give_the_same_bytes(tmp_path: Path) -> None:
    runs = [
        quantlab.optimize(
            "ema_cross", "SPY", "fast=5:30:5,slow=40:120:20", holdout=0.25, reports=tmp_path / str(i), report=False
        )
        for i in range(2)
    ]
    a, b = Path(runs[0].path), Path(runs[1].path)
    for name in ("results.parquet", "top.csv", "holdout.csv", "equity.csv", "trades.csv", "overfit.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    sa, sb = (json.loads((p / "summary.json").read_text()) for p in (a, b))
    for volatile in ("run_id", "created_at", "timings", "evaluations_per_second"):
        sa.pop(volatile), sb.pop(volatile)
    assert sa == sb


def test_tpe_is_seeded_and_resumes(tmp_path: Path) -> None:
    common = dict(method="tpe", seed=3, save=False, reports=tmp_path)
    first = quantlab.optimize(
        "sma_cross",
        "SPY",
        "fast=5:60,slow=20:200",
        trials=12,
        storage=f"sqlite:///{tmp_path / 'a.db'}",
        study="s",
        **common,
    )
    second = quantlab.optimize(
        "sma_cross",
        "SPY",
        "fast=5:60,slow=20:200",
        trials=12,
        storage=f"sqlite:///{tmp_path / 'b.db'}",
        study="s",
        **common,
    )
    assert first.summary["study"]["objective"] == second.summary["study"]["objective"]
    assert first.summary["n_combinations"] == 12
    resumed = quantlab.optimize(
        "sma_cross",
        "SPY",
        "fast=5:60,slow=20:200",
        trials=20,
        storage=f"sqlite:///{tmp_path / 'a.db'}",
        study="s",
        **common,
    )
    assert resumed.summary["study"]["resumed_from"] == 12
    assert resumed.summary["n_combinations"] == 20
    assert resumed.summary["study"]["objective"][:12] == first.summary["study"]["objective"]


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="unknown metric"):
        quantlab.optimize("sma_cross", "SPY", GRID, metric="sharp", save=False)
    with pytest.raises(ParameterError, match="no combination passes"):
        quantlab.optimize("sma_cross", "SPY", GRID, constraints=["sharpe > 50"], save=False)
    with pytest.raises(DataError, match="too few bars"):
        quantlab.optimize("sma_cross", "SPY", "fast=100:150:10,slow=300:400:50", start="2022-01-01", save=False)
    with pytest.raises(ParameterError, match="holdout"):
        quantlab.optimize("sma_cross", "SPY", GRID, holdout=1.2, save=False)
    index = pd.date_range("2020-01-01", periods=300, tz="UTC")
    bars = pd.DataFrame({"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}, index=index)
    bars.iloc[150, 3] = np.nan
    with pytest.raises(DataError, match="'close' of X has 1 NaN"):
        quantlab.optimize("sma_cross", "X", GRID, data={"X": bars}, save=False)


def test_tpe_study_is_not_resumed_on_other_data(tmp_path: Path) -> None:
    from quantlab import data as market
    from quantlab.errors import ConfigError

    spy = market.load("SPY")
    common = dict(method="tpe", seed=3, save=False, trials=5, storage=f"sqlite:///{tmp_path / 's.db'}")
    quantlab.optimize("sma_cross", "SPY", "fast=5:60,slow=20:200", data={"SPY": spy}, study="mine", **common)
    with pytest.raises(ConfigError, match="was run on other data"):
        quantlab.optimize(
            "sma_cross", "SPY", "fast=5:60,slow=20:200", data={"SPY": spy.iloc[:3000]}, study="mine", **common
        )
    fresh = quantlab.optimize("sma_cross", "SPY", "fast=5:60,slow=20:200", data={"SPY": spy.iloc[:3000]}, **common)
    assert fresh.summary["study"]["resumed_from"] == 0  # default name includes the data hash


def test_tpe_on_a_list_grid_samples_only_listed_values(tmp_path: Path) -> None:
    result = quantlab.optimize(
        "sma_cross",
        "SPY",
        "fast=5|10|50,slow=100|200",
        method="tpe",
        trials=6,
        seed=1,
        storage=f"sqlite:///{tmp_path / 'c.db'}",
        save=False,
    )
    assert set(result.results["fast"]) <= {5.0, 10.0, 50.0} and set(result.results["slow"]) <= {100.0, 200.0}
