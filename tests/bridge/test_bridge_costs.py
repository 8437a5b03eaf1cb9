"""The bridge pays the sweep's costs: SEC fee and FINRA TAF on sells, per-symbol spreads.

Issue 12 item 3: the new costs are in the sweep, the replay and the bridge's expected-fill
estimate. The sim broker and the decision path use the engine's cost kernels with the
symbol's own cost vector (``SimConfig.to_array(symbol)``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.brokers.protocol import OrderRequest
from bridge.brokers.sim import SimBroker
from bridge.clock import ManualClock
from bridge.ledger.store import Ledger
from bridge.orders import expected_fill, size
from bridge.runtime.context import Context
from quantlab.engine.settings import Costs, SimConfig, Sizing
from quantlab.kernels.layout import C_SEC_FEE, C_SLIPPAGE

from ._harness import CALENDAR, bridge_config

SEC = 27.8e-6
TAF = 0.000166
COSTS = Costs(
    slippage_bps=1.0, half_spread_bps=2.0, spread_bps={"QQQ": 10.0}, sec_fee_rate=SEC, taf_per_share=TAF, taf_max=8.30
)


def _broker(price: float = 100.0) -> SimBroker:
    b = SimBroker(
        SimConfig(1_000_000.0, COSTS, Sizing("fraction", 0.5)),
        ManualClock("2021-02-16 15:00"),
        cash=1_000_000.0,
        symbols=["SPY", "QQQ"],
    )
    b.connect()
    for sym in ("SPY", "QQQ"):
        b.set_price(sym, price)
    return b


def _ib(qty: float, px: float) -> float:
    return min(max(qty * 0.005, 1.0), 0.01 * qty * px)


def test_a_sell_pays_commission_sec_fee_and_taf() -> None:
    b = _broker()
    b.place(OrderRequest("buy1", "SPY", "BUY", 1000))
    b.place(OrderRequest("sell1", "SPY", "SELL", 1000))
    buy, sell = b.executions()
    assert buy.price == pytest.approx(100.0 * (1 + 3e-4), rel=1e-12)
    assert buy.commission == pytest.approx(_ib(1000, buy.price), rel=1e-12)  # buys pay no regulatory fee
    assert sell.price == pytest.approx(100.0 * (1 - 3e-4), rel=1e-12)
    regulatory = 1000 * sell.price * SEC + 1000 * TAF
    assert sell.commission == pytest.approx(_ib(1000, sell.price) + regulatory, rel=1e-12)
    assert b.cash == pytest.approx(
        1_000_000.0 - 1000 * buy.price - buy.commission + 1000 * sell.price - sell.commission, rel=1e-12
    )


def test_the_taf_cap_applies_per_order() -> None:
    b = _broker()
    b.place(OrderRequest("buy1", "SPY", "BUY", 100_000))
    b.place(OrderRequest("sell1", "SPY", "SELL", 100_000))
    sell = b.executions()[1]
    assert sell.commission == pytest.approx(_ib(100_000, sell.price) + 100_000 * sell.price * SEC + 8.30, rel=1e-12)


def test_a_per_symbol_spread_applies_to_its_symbol_only() -> None:
    b = _broker()
    b.place(OrderRequest("q", "QQQ", "BUY", 10))
    b.place(OrderRequest("s", "SPY", "BUY", 10))
    qqq, spy = b.executions()
    assert qqq.price == pytest.approx(100.0 * (1 + 1e-4 + 5e-4), rel=1e-12)  # slippage + half of 10 bps
    assert spy.price == pytest.approx(100.0 * (1 + 1e-4 + 2e-4), rel=1e-12)  # slippage + default half-spread


def test_the_expected_fill_estimate_includes_spread_and_fees() -> None:
    sim = SimConfig(1_000_000.0, COSTS, Sizing("fraction", 0.5))
    px, fee = expected_fill("SELL", 500, 50.0, sim.to_array("QQQ"))
    assert px == pytest.approx(50.0 * (1 - 6e-4), rel=1e-12)
    assert fee == pytest.approx(_ib(500, px) + 500 * px * SEC + 500 * TAF, rel=1e-12)
    px_spy, _ = expected_fill("BUY", 500, 50.0, sim.to_array("SPY"))
    assert px_spy == pytest.approx(50.0 * (1 + 3e-4), rel=1e-12)


def test_sizing_with_the_symbols_cost_vector_cuts_the_wider_spread() -> None:
    """Cash that affords 100 SPY at SPY's costs affords only 99 QQQ at QQQ's wider spread."""
    sim = SimConfig(10_005.0, COSTS, Sizing("all", 1.0))
    cash, price = 10_005.0, 100.0  # 100 SPY: 100 * 100.03 + 1 = 10004; 100 QQQ: 100 * 100.06 + 1 = 10007
    spy = size(1.0, cash, price, 0.0, 0.0, cash, price, sim.to_array("SPY"))
    qqq = size(1.0, cash, price, 0.0, 0.0, cash, price, sim.to_array("QQQ"))
    assert (spy.desired, spy.delta, qqq.delta) == (100.0, 100.0, 99.0)


def test_the_runner_context_holds_each_symbols_cost_vector(tmp_path: Path) -> None:
    """The decision path sizes with ``ctx.cost_vectors[symbol]`` (was one symbol-less vector)."""
    cfg = bridge_config(
        None,
        tmp_path / "ledger.db",
        strategy={"symbols": ("SPY", "QQQ")},
        costs={"slippage_bps": 1.0, "half_spread_bps": 2.0, "spread_bps": {"QQQ": 10.0}, "sec_fee_rate": SEC},
    )
    broker = SimBroker(cfg.sim_config(), ManualClock("2021-02-16 15:00"), symbols=["SPY", "QQQ"])
    ledger = Ledger(cfg.ledger.path)
    try:
        ctx = Context(cfg, broker, ledger, clock=ManualClock("2021-02-16 15:00"), calendar=CALENDAR)
        assert ctx.cost_vectors["QQQ"][C_SLIPPAGE] == pytest.approx(6e-4, rel=1e-12)
        assert ctx.cost_vectors["SPY"][C_SLIPPAGE] == pytest.approx(3e-4, rel=1e-12)
        assert ctx.cost_vectors["QQQ"][C_SEC_FEE] == SEC
    finally:
        ledger.close()
