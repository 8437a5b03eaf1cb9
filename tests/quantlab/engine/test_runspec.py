"""One run description (RunSpec, SearchSpec) behind backtest, optimize and walk-forward."""

from __future__ import annotations

import inspect
from pathlib import Path

import pandas as pd
import pytest

import quantlab
from quantlab.backtester import backtest_run
from quantlab.engine.settings import Costs, SimConfig, make_sim_config
from quantlab.optimizer.api import optimize_run
from quantlab.optimizer.folds import WalkForwardWindows
from quantlab.optimizer.summary import optimize_config, optimize_summary, walkforward_summary
from quantlab.optimizer.walkforward import walkforward_run
from quantlab.runspec import RunSpec, SearchSpec, split_options

GRID = "fast=5:40:5,slow=50:150:25"


def test_options_split_into_run_search_and_the_rest() -> None:
    run, search, rest = split_options(
        "optimize",
        "sma_cross",
        "SPY",
        {"start": "2010-01-01", "cash": 5_000.0, "metric": "sortino", "constraints": ["max_drawdown > -0.3"], "top": 3},
        search=True,
        grid=GRID,
        rest=("top",),
    )
    assert run == RunSpec("sma_cross", "SPY", start="2010-01-01", sim=make_sim_config(5_000.0))
    assert search == SearchSpec(grid=GRID, metric="sortino", constraints=("max_drawdown > -0.3",))
    assert rest == {"top": 3}


def test_sim_wins_over_cash_costs_and_sizing_as_before() -> None:
    sim = SimConfig(init_cash=1_000.0, costs=Costs(model="percent", pct_fee=0.001))
    run, _, _ = split_options("backtest", "sma_cross", "SPY", {"sim": sim, "cash": 9.0})
    assert run.sim is sim


@pytest.mark.parametrize(
    ("caller", "options", "search", "without"),
    [
        ("backtest", {"metric": "sharpe"}, False, ()),  # a search option where there is no search
        ("optimize", {"cahs": 1.0}, True, ()),
        ("walkforward", {"study": "mine"}, True, ("study", "storage")),
    ],
)
def test_an_unknown_option_is_a_type_error_naming_it(
    caller: str, options: dict[str, object], search: bool, without: tuple[str, ...]
) -> None:
    name = next(iter(options))
    with pytest.raises(TypeError, match=rf"{caller}\(\) got an unexpected keyword argument '{name}'"):
        split_options(caller, "sma_cross", "SPY", options, search=search, without=without)


def test_the_public_functions_take_one_description_not_27_parameters() -> None:
    for func in (quantlab.optimize, quantlab.walkforward, quantlab.backtest):
        assert len(inspect.signature(func).parameters) <= 5, func
    for func in (optimize_run, walkforward_run, backtest_run):  # run, search and what is the command's own
        assert len(inspect.signature(func).parameters) <= 6, func


def test_summary_builders_are_keyword_only() -> None:
    for func in (optimize_config, optimize_summary, walkforward_summary):
        kinds = {p.kind for p in inspect.signature(func).parameters.values()}
        assert kinds == {inspect.Parameter.KEYWORD_ONLY}, func


def test_keyword_api_and_runspec_give_the_same_optimisation(daily: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    data = {"SPY": daily["SPY"].iloc[-2500:]}
    by_keywords = quantlab.optimize(
        "sma_cross",
        "SPY",
        GRID,
        data=data,
        holdout=0.3,
        top=3,
        cash=50_000.0,
        constraints=["max_drawdown > -0.6"],
        reports=tmp_path,
        report=False,
    )
    run = RunSpec("sma_cross", "SPY", data=data, sim=make_sim_config(50_000.0), reports=tmp_path, report=False)
    by_spec = optimize_run(run, SearchSpec(grid=GRID, constraints=("max_drawdown > -0.6",)), top=3, holdout=0.3)
    assert by_spec.summary["config"] == by_keywords.summary["config"]
    assert by_spec.summary["config_hash"] == by_keywords.summary["config_hash"]
    assert by_spec.best == by_keywords.best
    pd.testing.assert_frame_equal(by_spec.ranking, by_keywords.ranking)


def test_keyword_api_and_runspec_give_the_same_walkforward(daily: dict[str, pd.DataFrame]) -> None:
    data = {"SPY": daily["SPY"].iloc[-2000:]}
    by_keywords = quantlab.walkforward("sma_cross", "SPY", GRID, data=data, train="2y", test="1y", save=False)
    by_spec = walkforward_run(
        RunSpec("sma_cross", "SPY", data=data, save=False),
        SearchSpec(grid=GRID),
        WalkForwardWindows(train="2y", test="1y"),
    )
    assert by_spec.summary["config"] == by_keywords.summary["config"]
    pd.testing.assert_frame_equal(by_spec.folds, by_keywords.folds)


def test_keyword_api_and_runspec_give_the_same_backtest(daily: dict[str, pd.DataFrame]) -> None:
    data = {"SPY": daily["SPY"].iloc[-1500:]}
    by_keywords = quantlab.backtest("sma_cross", "SPY", "fast=10,slow=60", data=data, save=False)
    by_spec = backtest_run(RunSpec("sma_cross", "SPY", data=data, save=False), "fast=10,slow=60")
    assert by_spec.summary["config_hash"] == by_keywords.summary["config_hash"]
    pd.testing.assert_frame_equal(by_spec.metrics, by_keywords.metrics)


def _caller_of_short_sample_warning(call) -> str:  # type: ignore[no-untyped-def]
    from quantlab.engine.intervals import ShortSampleWarning

    with pytest.warns(ShortSampleWarning) as caught:
        call()
    return {Path(w.filename).name for w in caught if issubclass(w.category, ShortSampleWarning)}.pop()


def test_short_sample_warnings_point_at_the_callers_line_in_both_forms(daily: dict[str, pd.DataFrame]) -> None:
    short = {"SPY": daily["SPY"].iloc[-200:]}
    run = RunSpec("sma_cross", "SPY", data=short, save=False)
    here = Path(__file__).name
    calls = [
        lambda: quantlab.backtest("sma_cross", "SPY", "fast=5,slow=20", data=short, save=False),
        lambda: backtest_run(run, "fast=5,slow=20"),
        lambda: quantlab.optimize("sma_cross", "SPY", "fast=5:15:5,slow=20:40:10", data=short, save=False, n_blocks=4),
        lambda: optimize_run(run, SearchSpec(grid="fast=5:15:5,slow=20:40:10"), n_blocks=4),
    ]
    for call in calls:
        assert _caller_of_short_sample_warning(call) == here
