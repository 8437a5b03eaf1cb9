"""Figure builders and equity metrics on small hand-made inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlab.reports import charts, overfit_charts, search_charts, wf_charts
from quantlab.reports.metrics import equity_metrics


def _equity() -> pd.DataFrame:
    index = pd.to_datetime(["2020-01-30", "2020-01-31", "2020-02-28", "2020-03-31", "2021-01-29"], utc=True)
    return pd.DataFrame({"A": [100.0, 110.0, 99.0, 108.9, 130.68]}, index=index)


def test_monthly_returns_compound_month_ends() -> None:
    table = charts.monthly_returns(_equity()["A"])
    assert list(table.columns[:3]) == ["Jan", "Feb", "Mar"]
    assert table.loc[2020, "Jan"] == pytest.approx(0.10)  # 100 -> 110 within January
    assert table.loc[2020, "Feb"] == pytest.approx(-0.10)
    assert table.loc[2020, "Mar"] == pytest.approx(0.10)
    assert table.loc[2021, "Jan"] == pytest.approx(0.20)
    assert np.isnan(table.loc[2020, "Apr"])


def test_drawdown_is_distance_below_the_running_peak() -> None:
    dd = charts.drawdown(_equity()["A"])
    assert dd.tolist() == pytest.approx([0.0, 0.0, -0.1, -0.01, 0.0])


def test_equity_metrics_by_hand() -> None:
    values = pd.Series([101.0, 99.99, 102.0, 104.04])
    m = equity_metrics(values, per_year=4.0, init_cash=100.0)
    rets = np.array([0.01, -0.01, 102 / 99.99 - 1, 0.02])
    assert m["total_return"] == pytest.approx(0.0404)
    assert m["cagr"] == pytest.approx(0.0404)  # four bars at four bars a year: one year
    assert m["sharpe"] == pytest.approx(rets.mean() / rets.std(ddof=1) * 2.0)
    assert m["volatility"] == pytest.approx(rets.std(ddof=1) * 2.0)
    assert m["sortino"] == pytest.approx(rets.mean() / np.sqrt(np.mean(np.minimum(rets, 0) ** 2)) * 2.0)
    assert m["max_drawdown"] == pytest.approx(99.99 / 101.0 - 1)
    assert m["calmar"] == pytest.approx(m["cagr"] / abs(m["max_drawdown"]))


def test_equity_metrics_of_a_flat_curve() -> None:
    m = equity_metrics(pd.Series([100.0, 100.0, 100.0]), init_cash=100.0)
    assert m["total_return"] == 0.0 and m["volatility"] == 0.0 and np.isnan(m["sharpe"]) and np.isnan(m["sortino"])


def _grid_results() -> pd.DataFrame:
    rows = []
    for symbol in ("SPY", "QQQ"):
        for a in (1.0, 2.0, 3.0):
            for b in (10.0, 20.0):
                for c in (0.5, 1.0):
                    rows.append(
                        {"symbol": symbol, "a": a, "b": b, "c": c, "sharpe": a + b / 10 + c + (symbol == "QQQ")}
                    )
    return pd.DataFrame(rows)


def test_param_heatmap_slices_at_the_chosen_values() -> None:
    results = _grid_results()
    fig = search_charts.param_heatmap(results, ["a", "b", "c"], {"a": 3.0, "b": 20.0, "c": 1.0}, "sharpe")
    assert fig.layout.title.text.startswith("Parameter heatmap: sharpe")
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    assert len(heatmaps) == 3  # (a,b) (a,c) (b,c)
    ab = heatmaps[0]  # c held at 1.0; mean over symbols adds 0.5
    z = np.asarray(ab.z, dtype=float)
    assert z.shape == (2, 3)
    assert z[1, 2] == pytest.approx(3.0 + 2.0 + 1.0 + 0.5)
    chosen = [t for t in fig.data if t.name == "chosen"]
    assert len(chosen) == 3 and list(chosen[0].x) == [3.0] and list(chosen[0].y) == [20.0]


def test_param_heatmap_of_scattered_trials_is_a_scatter() -> None:
    rng = np.random.default_rng(1)
    results = pd.DataFrame(
        {"symbol": "SPY", "a": rng.uniform(0, 1, 30), "b": rng.uniform(0, 1, 30), "sharpe": rng.normal(size=30)}
    )
    fig = search_charts.param_heatmap(results, ["a", "b"], {"a": 0.5, "b": 0.5}, "sharpe")
    assert [t.type for t in fig.data] == ["scatter", "scatter"]


def test_param_heatmap_with_one_or_no_searched_parameter() -> None:
    results = _grid_results()
    one = results[(results["b"] == 10.0) & (results["c"] == 1.0)]
    fig = search_charts.param_heatmap(one, ["a", "b", "c"], {"a": 1.0, "b": 10.0, "c": 1.0}, "sharpe")
    assert fig.layout.title.text.startswith("Parameter heatmap: sharpe by a")
    assert search_charts.param_heatmap(one[one["a"] == 1.0], ["a", "b", "c"], {}, "sharpe") is None


def test_param_importances_favour_the_parameter_that_matters() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0, 1, 60), rng.uniform(0, 1, 60)
    results = pd.DataFrame({"symbol": "SPY", "a": a, "b": b, "sharpe": 5 * a + 0.01 * b})
    fig = search_charts.param_importances(results, ["a", "b"], "sharpe")
    values = dict(zip(fig.data[0].y, fig.data[0].x, strict=True))
    assert values["a"] > 0.9 > values["b"]


def test_optuna_history_tracks_the_best_so_far() -> None:
    fig = search_charts.optuna_history({"trial_numbers": [0, 1, 2, 4], "objective": [0.1, None, 0.3, 0.2]}, "sharpe")
    best = np.asarray(fig.data[1].y, dtype=float)
    assert best.tolist() == pytest.approx([0.1, 0.1, 0.3, 0.3])


def test_pbo_histogram_is_a_distribution() -> None:
    overfit = {"SPY": {"pbo": {"pbo": 0.25, "logits": [-1.0, 0.5, 1.0, 2.0]}}}
    fig = overfit_charts.pbo_logits(overfit)
    assert sum(fig.data[0].y) == pytest.approx(1.0)
    assert fig.data[0].name == "SPY (PBO 0.25)"
    assert overfit_charts.pbo_logits({"SPY": {"pbo": {"error": "too short"}}}) is None


def _folds() -> pd.DataFrame:
    starts = pd.to_datetime(["2010-01-01", "2011-01-01", "2012-01-01"], utc=True)
    rows = []
    for k, s in enumerate(starts):
        for symbol in ("SPY", "QQQ"):
            rows.append(
                {
                    "fold": k,
                    "symbol": symbol,
                    "train_start": s - pd.DateOffset(years=2),
                    "train_end": s,
                    "test_start": s,
                    "test_end": s + pd.DateOffset(years=1),
                    "fast": 10.0 * (k + 1),
                    "is_sharpe": 1.0,
                    "oos_sharpe": 0.5 - k,
                    "oos_trades": 3,
                }
            )
    return pd.DataFrame(rows)


def test_walkforward_charts() -> None:
    folds = _folds()
    index = pd.date_range("2010-01-01", "2012-12-31", freq="B", tz="UTC")
    equity = pd.DataFrame(
        {"SPY": np.linspace(100, 120, len(index)), "QQQ": np.linspace(100, 90, len(index))}, index=index
    )
    fig = wf_charts.folds_chart(folds, equity)
    timeline = [t for t in fig.data if t.name in ("train", "test")]
    assert len(timeline) == 2 and list(timeline[1].y) == [0, 0, None, 1, 1, None, 2, 2, None]
    bars = wf_charts.fold_metrics_chart(folds, "sharpe", {"SPY": 0.5})
    assert [t.name for t in bars.data] == [
        "SPY in-sample",
        "SPY out-of-sample (efficiency 0.50)",
        "QQQ in-sample",
        "QQQ out-of-sample",
    ]
    drift = wf_charts.drift_chart(folds[folds["symbol"] == "SPY"].drop(columns="symbol"), ["fast"])
    assert list(drift.data[0].y) == [10.0, 20.0, 30.0]
    assert wf_charts.fold_metric(folds, "calmar") == "sharpe"
