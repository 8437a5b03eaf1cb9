"""Issue 10, research bug 7: recovery time and average win / loss per trade, in the sweep
(numba), equal to vectorbt's own drawdown and position records, usable in ranking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import quantlab
from quantlab.engine.intervals import get_interval
from quantlab.engine.registry import get_strategy
from quantlab.engine.settings import SimConfig
from quantlab.engine.signals import evaluate_arrays, price_arrays
from quantlab.engine.sweep import run_sweep
from quantlab.kernels.layout import METRIC_NAMES
from quantlab.replay import portfolio, simulate, vbt_metrics

DAILY = get_interval("1d")
NEW = ("max_drawdown_duration", "max_recovery_time", "avg_win", "avg_loss")


def test_new_metrics_equal_vectorbts_accessors(daily: dict[str, pd.DataFrame]) -> None:
    spec = get_strategy("bollinger_reversion")
    prices = price_arrays(daily["JPM"], "JPM")
    params = np.array([[w, 1.5] for w in (10, 20, 40)], dtype=np.float64)
    records = [
        simulate(evaluate_arrays(spec, prices, {"window": w, "width": b}), prices, SimConfig(), DAILY)
        for w, b in params
    ]
    pf = portfolio(records, prices, SimConfig(), DAILY, 0, ["a", "b", "c"])
    ours = vbt_metrics(pf, DAILY)
    assert set(NEW) <= set(METRIC_NAMES)
    dd = pf.drawdowns
    np.testing.assert_array_equal(ours["max_drawdown_duration"], dd.duration.max().to_numpy())  # in bars
    np.testing.assert_array_equal(ours["max_recovery_time"], dd.recovery_duration.max().to_numpy())
    closed = pf.positions.closed
    np.testing.assert_allclose(ours["avg_win"], closed.winning.pnl.mean().to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours["avg_loss"], closed.losing.pnl.mean().to_numpy(), rtol=1e-12)
    swept = run_sweep(spec, prices, params, SimConfig(), DAILY).metrics
    for name in NEW:
        j = METRIC_NAMES.index(name)
        np.testing.assert_allclose(swept[:, j], ours[name].to_numpy(), rtol=1e-9)


def test_recovery_time_by_hand() -> None:
    """Buy 10 shares at 100 on bar 1 and hold: value 10,000 then 10,000 - 1,000 + 10 x price.

    Drawdowns: bars 2-4 under water (3 bars; valley bar 3, recovered bar 5: 2 bars to recover),
    bar 6 (1 bar; 1 to recover), bars 8-9 still open at the end (2 bars; valley bar 9: 0 so far).
    """
    from quantlab.engine.settings import Costs, Sizing

    price = np.array([100.0, 100, 90, 80, 85, 100, 99, 101, 98, 97])
    index = pd.date_range("2020-01-01", periods=len(price), tz="UTC")
    frame = pd.DataFrame({"open": price, "high": price, "low": price, "close": price, "volume": 1.0}, index=index)
    prices = price_arrays(frame, "X")
    sim = SimConfig(10_000.0, Costs(model="percent", pct_fee=0.0, slippage_bps=0.0), Sizing("cash", 1_000.0))
    record = simulate(np.ones(len(price)), prices, sim, DAILY, 0)
    np.testing.assert_allclose(record.value, 9_000 + 10 * price)
    assert record.metrics["max_drawdown_duration"] == 3
    assert record.metrics["max_recovery_time"] == 2
    theirs = vbt_metrics(portfolio(record, prices, sim, DAILY), DAILY)
    assert theirs.loc[0, "max_drawdown_duration"] == 3 and theirs.loc[0, "max_recovery_time"] == 2


def test_new_metrics_rank_and_constrain() -> None:
    result = quantlab.optimize(
        "sma_cross",
        "SPY",
        "fast=5:30:5,slow=40:120:20",
        metric="max_drawdown_duration",
        constraints=["avg_win > -avg_loss"],
        start="2010-01-01",
        save=False,
    )
    passing = result.ranking[result.ranking["passes"]]
    assert passing["max_drawdown_duration"].is_monotonic_increasing  # lower is better
    assert (passing["avg_win"] > -passing["avg_loss"]).all()
    with pytest.raises(quantlab.errors.ParameterError, match="did you mean"):
        quantlab.optimize("sma_cross", "SPY", "fast=5:30:5,slow=40:120:20", metric="max_recovery", save=False)
