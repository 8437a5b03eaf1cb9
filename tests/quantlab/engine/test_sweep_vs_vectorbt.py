"""The sweep's metrics equal vectorbt's Portfolio for the same orders (rtol 1e-9).

For random samples of every strategy's parameters on real data, under both cost models
and every sizing mode: the parallel sweep (generated module, streaming metrics) gives
the same numbers as vectorbt's independent accounting of the recorded orders.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlab.engine.intervals import get_interval
from quantlab.engine.registry import get_strategy, list_strategies
from quantlab.engine.settings import Costs, SimConfig, Sizing
from quantlab.engine.signals import evaluate_arrays, price_arrays
from quantlab.engine.sweep import run_sweep
from quantlab.kernels.layout import METRIC_NAMES
from quantlab.replay import portfolio, simulate, vbt_metrics

DAILY = get_interval("1d")
SIMS = {
    "ib_all_whole": SimConfig(),
    "pct_fraction_frac": SimConfig(
        50_000,
        Costs(model="percent", pct_fee=0.001, fixed_fee=0.5, slippage_bps=5),
        Sizing("fraction", 0.6, whole_shares=False),
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
            row.append(
                float(rng.integers(p.low, hi + 1))
                if p.kind == "int"
                else float(np.round(rng.uniform(p.low, p.high), 4))
            )
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
                np.testing.assert_allclose(
                    records[i].metrics["final_value"], ours[i, METRIC_NAMES.index("final_value")], rtol=1e-12
                )
            assert (ours[:, METRIC_NAMES.index("n_orders")] > 0).any(), f"{name} {sim_name} {symbol}: no trades sampled"
            checked += len(params)
    assert checked == 3 * len(SIMS) * 4


def _from_orders(record, prices, sim, start=0):  # type: ignore[no-untyped-def]
    """vectorbt's own order simulator fed with our orders (cash checks, partial fills on)."""
    import vectorbt as vbt

    end = start + len(record.index)
    return vbt.Portfolio.from_orders(
        pd.Series(prices.close[start:end], index=record.index),
        size=record.size,
        size_type="amount",
        direction="both",
        price=prices.open[start:end],
        fixed_fees=record.fee,
        slippage=sim.costs.slippage_bps / 1e4,
        init_cash=float(sim.init_cash),
        freq="1D",
    )


@pytest.mark.parametrize("name", ["sma_cross", "rsi_reversion", "tsmom_vol"])
def test_vectorbt_simulator_executes_every_order_unchanged(name: str, daily: dict[str, pd.DataFrame]) -> None:
    """Running vectorbt's from_orders simulator on our orders reproduces them exactly:
    it never had to shrink or reject one (every order was affordable as sized), and its
    records equal the ones quantlab hands to vectorbt directly."""
    spec = get_strategy(name)
    prices = price_arrays(daily["QQQ"], "QQQ")
    for sim in SIMS.values():
        target = evaluate_arrays(spec, prices, spec.defaults())
        record = simulate(target, prices, sim, DAILY, 200)
        simulated = _from_orders(record, prices, sim, 200)
        direct = portfolio(record, prices, sim, DAILY, 200)
        a, b = simulated.orders.records, direct.orders.records
        assert len(a) == len(b) == int((~np.isnan(record.size)).sum()) > 0
        for field in ("idx", "side", "size", "price", "fees"):
            np.testing.assert_array_equal(a[field], b[field], err_msg=field)
        np.testing.assert_allclose(simulated.value().to_numpy(), record.value, rtol=1e-12)
        np.testing.assert_allclose(direct.value().to_numpy(), record.value, rtol=1e-12)


def test_shared_cash_group_matches_vectorbt_simulator() -> None:
    """The shared-cash backtest's records equal vectorbt's cash-sharing from_orders run
    with the same call sequence (sells before buys)."""
    import vectorbt as vbt

    import quantlab
    from quantlab.engine.settings import Sizing

    sim = SimConfig(sizing=Sizing("fraction", 0.45), costs=Costs(slippage_bps=2))
    result = quantlab.backtest("ema_cross", "SPY,QQQ,IWM", "fast=8,slow=30", sim=sim, shared_cash=True, save=False)
    direct = result.portfolio
    records = direct.orders.records
    index = direct.wrapper.index
    close = pd.DataFrame({s: result.inputs.frames[s]["close"].reindex(index) for s in result.inputs.symbols})
    opens = np.column_stack([result.inputs.frames[s]["open"].reindex(index).to_numpy() for s in result.inputs.symbols])
    size = np.full(close.shape, np.nan)
    fees = np.zeros(close.shape)
    signed = np.where(records["side"] == 0, records["size"], -records["size"])
    size[records["idx"], records["col"]] = signed
    fees[records["idx"], records["col"]] = records["fees"]
    simulated = vbt.Portfolio.from_orders(
        close,
        size=size,
        size_type="amount",
        direction="both",
        price=opens,
        fixed_fees=fees,
        slippage=2e-4,
        init_cash=sim.init_cash,
        cash_sharing=True,
        group_by=True,
        call_seq=direct.call_seq,
        freq="1D",
    )
    assert len(simulated.orders.records) == len(records)
    np.testing.assert_allclose(simulated.value().to_numpy(), direct.value().to_numpy(), rtol=1e-12)
    assert float(simulated.cash().min()) >= 0.0


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


def test_trade_metrics_equal_vectorbts_own_reductions(daily: dict[str, pd.DataFrame]) -> None:
    """vbt_metrics reduces vectorbt's records with numpy; vectorbt's accessors agree."""
    spec = get_strategy("bollinger_reversion")
    prices = price_arrays(daily["JPM"], "JPM")
    records = [
        simulate(evaluate_arrays(spec, prices, {"window": w, "width": 1.5}), prices, SimConfig(), DAILY)
        for w in (10, 20, 40)
    ]
    pf = portfolio(records, prices, SimConfig(), DAILY)
    ours = vbt_metrics(pf, DAILY)
    closed = pf.positions.closed
    np.testing.assert_allclose(ours["win_rate"], closed.win_rate().to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours["profit_factor"], closed.profit_factor().to_numpy(), rtol=1e-12)
    np.testing.assert_array_equal(ours["n_trades"], pf.positions.count().to_numpy())
    np.testing.assert_allclose(ours["fees"], pf.orders.fees.sum().to_numpy(), rtol=1e-12)
    np.testing.assert_array_equal(ours["n_orders"], pf.orders.count().to_numpy())
