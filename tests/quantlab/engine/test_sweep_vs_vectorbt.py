"""The sweep's metrics equal vectorbt's Portfolio for the same orders (rtol 1e-9).

For random samples of every strategy's parameters on real data, under both cost models
and every sizing mode: the parallel sweep (generated module, streaming metrics) gives
the same numbers as vectorbt's independent accounting of the recorded orders.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlab.config import Costs, SimConfig, Sizing
from quantlab.intervals import get_interval
from quantlab.kernels.layout import METRIC_NAMES
from quantlab.registry import get_strategy, list_strategies
from quantlab.replay import portfolio, simulate, vbt_metrics
from quantlab.signals import evaluate_arrays, price_arrays
from quantlab.sweep import run_sweep

DAILY = get_interval("1d")
SIMS = {
    "ib_all_whole": SimConfig(),
    "pct_fraction_frac": SimConfig(
        50_000, Costs(model="percent", pct_fee=0.001, fixed_fee=0.5, slippage_bps=5), Sizing("fraction", 0.6, whole_shares=False)
    ),
    "ib_cash": SimConfig(20_000, Costs(slippage_bps=2), Sizing("cash", 7_500)),
    "ib_voltarget": SimConfig(100_000, Costs(), Sizing("vol_target", 0.12, vol_window=30)),
}


def sample_params(spec, rng: np.random.Generator, k: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    rows = []
    while len(rows) < k:
        row = []
        for p in spec.params:
            hi = min(p.high, 160)
            row.append(float(rng.integers(p.low, hi + 1)) if p.kind == "int" else float(np.round(rng.uniform(p.low, p.high), 4)))
        if spec.constraint_mask({p.name: np.array([v]) for p, v in zip(spec.params, row, strict=True)})[0]:
            rows.append(row)
    return np.array(rows)


@pytest.mark.parametrize("name", [s.name for s in list_strategies()])
def test_sweep_metrics_equal_vectorbt(name: str, daily: dict[str, pd.DataFrame]) -> None:
    spec = get_strategy(name)
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    checked = 0
    for symbol in ("SPY", "AAPL", "XOM"):
        prices = price_arrays(daily[symbol], symbol)
        params = sample_params(spec, rng, 4)
        for sim_name, sim in SIMS.items():
            start = int(rng.integers(0, 1500))
            out = run_sweep(spec, prices, params, sim, DAILY, start=start)
            records = []
            for row in params:
                target = evaluate_arrays(spec, prices, dict(zip(spec.param_names, row, strict=True)))
                records.append(simulate(target, prices, sim, DAILY, start))
            pf = portfolio(records, prices, sim, DAILY, start, [str(i) for i in range(len(records))])
            theirs = vbt_metrics(pf, DAILY).to_numpy()
            ours = out.metrics
            for i in range(len(params)):
                for j, metric in enumerate(METRIC_NAMES):
                    a, b = ours[i, j], theirs[i, j]
                    assert (np.isnan(a) and np.isnan(b)) or np.isclose(a, b, rtol=1e-9, atol=1e-12), (
                        f"{name} {sim_name} {symbol} params={params[i]} start={start}: {metric} sweep={a!r} vectorbt={b!r}"
                    )
                # the recorded (replay) path and the streaming sweep agree exactly as well
                np.testing.assert_allclose(records[i].metrics["final_value"], ours[i, METRIC_NAMES.index("final_value")], rtol=1e-12)
            assert (ours[:, METRIC_NAMES.index("n_orders")] > 0).any(), f"{name} {sim_name} {symbol}: no trades sampled"
            checked += len(params)
    assert checked == 3 * len(SIMS) * 4


def test_vectorbt_executes_every_recorded_order_unchanged(daily: dict[str, pd.DataFrame]) -> None:
    """vectorbt never had to shrink or reject one of our orders (all affordable as sized)."""
    spec = get_strategy("sma_cross")
    prices = price_arrays(daily["QQQ"], "QQQ")
    for sim in SIMS.values():
        target = evaluate_arrays(spec, prices, {"fast": 10, "slow": 30})
        record = simulate(target, prices, sim, DAILY)
        pf = portfolio(record, prices, sim, DAILY)
        orders = pf.orders.records
        ours = record.size[~np.isnan(record.size)]
        assert len(orders) == len(ours)
        signed = np.where(orders["side"] == 0, orders["size"], -orders["size"])
        np.testing.assert_array_equal(signed, ours)
        np.testing.assert_allclose(pf.value().to_numpy(), record.value, rtol=1e-12)


def test_signed_targets_with_shorting_match_vectorbt(daily: dict[str, pd.DataFrame]) -> None:
    """Long/short targets (position flips in one order) account identically."""
    prices = price_arrays(daily["SPY"], "SPY")
    rng = np.random.default_rng(3)
    target = np.repeat(rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0], size=len(prices) // 20 + 1), 20)[: len(prices)]
    sim = SimConfig(costs=Costs(slippage_bps=3), sizing=Sizing("fraction", 0.8, allow_short=True))
    record = simulate(target, prices, sim, DAILY)
    pf = portfolio(record, prices, sim, DAILY)
    theirs = vbt_metrics(pf, DAILY).iloc[0]
    for metric in METRIC_NAMES:
        assert np.isclose(record.metrics[metric], theirs[metric], rtol=1e-9, atol=1e-12, equal_nan=True), metric
    assert (record.size[~np.isnan(record.size)] < 0).any()
