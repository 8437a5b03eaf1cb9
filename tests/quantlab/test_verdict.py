"""The overfitting verdict: every threshold on both sides, the sentence, the summaries."""

from __future__ import annotations

import pytest

from quantlab.runs import verdict as v


@pytest.mark.parametrize(
    ("kwargs", "grade"),
    [
        ({"pbo": 0.5}, "red"),  # PBO_RED is inclusive: a median winner counts as overfit
        ({"pbo": 0.4999}, "amber"),
        ({"pbo": 0.2001}, "amber"),
        ({"pbo": 0.2}, "green"),
        ({"dsr": 0.4999}, "red"),
        ({"dsr": 0.5}, "amber"),
        ({"dsr": 0.9499}, "amber"),
        ({"dsr": 0.95}, "green"),
        ({"holdout_percentile": 0.4999}, "red"),
        ({"holdout_percentile": 0.5}, "amber"),
        ({"holdout_percentile": 0.7499}, "amber"),
        ({"holdout_percentile": 0.75}, "green"),
        ({"efficiency": 0.0}, "red"),
        ({"efficiency": 0.0001}, "amber"),
        ({"efficiency": 0.4999}, "amber"),
        ({"efficiency": 0.5}, "green"),
        ({"degradation_slope": 0.0}, "amber"),
        ({"degradation_slope": -3.0}, "amber"),  # never red on its own
        ({"degradation_slope": 0.01}, "green"),
    ],
)
def test_each_threshold(kwargs: dict[str, float], grade: str) -> None:
    assert v.overfit_verdict(**kwargs).grade == grade


def test_the_worst_grade_wins_and_the_sentence_lists_it_first() -> None:
    verdict = v.overfit_verdict(pbo=0.53, dsr=0.70)
    assert verdict.label == "likely overfit"
    assert verdict.sentence == "likely overfit: PBO 0.53, DSR 0.70"
    ok = v.overfit_verdict(pbo=0.1, dsr=0.99, holdout_percentile=0.9, degradation_slope=0.4)
    assert ok.sentence == "no sign of overfitting: PBO 0.10, DSR 0.99, holdout percentile 90%, degradation slope 0.40"
    mixed = v.overfit_verdict(pbo=0.1, dsr=0.8)
    assert mixed.sentence == "inconclusive: DSR 0.80, PBO 0.10"


def test_missing_and_non_finite_statistics_are_left_out() -> None:
    verdict = v.overfit_verdict(pbo=None, dsr=float("nan"), holdout_percentile="n/a")
    assert verdict.grade is None and verdict.label == "not assessed"
    assert verdict.sentence.startswith("not assessed:")
    assert v.overfit_verdict(pbo=None, dsr=0.97).sentence == "no sign of overfitting: DSR 0.97"


def test_worst_over_symbols() -> None:
    a, b = v.overfit_verdict(dsr=0.99), v.overfit_verdict(pbo=0.7)
    assert v.worst([a, b]) is b
    assert v.worst([]).label == "not assessed"


def test_verdicts_from_summaries() -> None:
    summary = {
        "kind": "optimize",
        "overfit": {"SPY": {"deflated_sharpe": {"dsr": 0.70}, "pbo": {"pbo": 0.53, "degradation_slope": -0.2}}},
        "holdout": [{"symbol": "SPY", "holdout_percentile": 0.8}],
    }
    got = v.run_verdicts(summary)["SPY"]
    assert got.sentence == "likely overfit: PBO 0.53, DSR 0.70, degradation slope -0.20, holdout percentile 80%"
    wf = {
        "kind": "walkforward",
        "walkforward": {
            "overfit": {"SPY": {"pbo": 0.25, "mean_is_dsr": 0.96}},
            "efficiency": {"SPY": {"efficiency": -0.4}},
        },
    }
    assert v.run_verdicts(wf)["SPY"].sentence == "likely overfit: WF efficiency -0.40, PBO 0.25, DSR 0.96"
    assert v.run_verdicts({"kind": "backtest"}) == {}
