"""Parity: the bridge's orders equal the vectorbt backtest's trades, bar for bar.

Months of bundled SPY daily bars go through the live pipeline against the fake gateway
(real ib_async client): each bar first opens (completing the previous one; the fake fills
market orders at that open), then closes. The backtest runs the same kernel with the same
SimConfig (10% fraction sizing, whole shares, IB fixed commission, no slippage) on the same
bars. Sizes, fill prices, fees and fill bars must be equal. The same holds for the replay
(SimBroker) with slippage.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

import quantlab
from bridge.config import load_config
from bridge.replay import run_replay
from tests.fakegw import FakeGateway

from ._harness import BridgeHarness

START, END = 0, 300  # 2021-01-04 .. 2022-03-10 (14 months)
PARAMS = "fast=10,slow=30"  # ten orders on these bars


def backtest_orders(frame: pd.DataFrame, sim: quantlab.SimConfig, params: str = PARAMS) -> pd.DataFrame:
    bt = quantlab.backtest("sma_cross", ["SPY"], params, sim=sim, data={"SPY": frame}, save=False)
    return bt.portfolio.orders.records_readable


def test_orders_equal_the_vectorbt_backtest_against_the_fake_gateway(harness: Callable[..., BridgeHarness], gw: FakeGateway,
                                                                     spy_daily: pd.DataFrame) -> None:
    frame = spy_daily.iloc[START:END]
    h = harness(seed=30, frame=frame, strategy={"params": PARAMS})  # exactly the lookback: first finite target on bar 29
    h.start()
    assert h.until(lambda: h.decided(29) and h.settled())
    h.close_bar(30)
    for i in range(31, len(frame)):
        h.advance(i)
    ours = [o for o in h.orders() if o["status"] == "filled"]
    assert len(ours) == len(h.orders())  # nothing rejected, nothing left open
    theirs = backtest_orders(frame, h.cfg.sim_config(100_000.0))
    assert len(ours) == len(theirs) == 10
    nxt = {frame.index[i].isoformat(): frame.index[i + 1] for i in range(len(frame) - 1)}
    for o, (_, t) in zip(ours, theirs.iterrows(), strict=True):
        assert nxt[o["bar_time"]] == t["Timestamp"]  # decided at bar i's close, filled at bar i+1's open
        assert (o["side"], o["filled"]) == (t["Side"].upper(), t["Size"])
        assert o["avg_fill_price"] == pytest.approx(t["Price"], rel=1e-12)
        assert o["commission"] == pytest.approx(t["Fees"], abs=1e-6)
    assert [o.order_ref for o in gw.orders_received()] == [o["order_ref"] for o in ours]  # one placeOrder per order


def test_replay_with_slippage_equals_the_backtest(spy_daily: pd.DataFrame, tmp_path) -> None:  # noqa: ANN001
    cfg = load_config(env={}, overrides={"strategy": {"name": "sma_cross", "symbols": ("SPY",), "params": "fast=20,slow=50"},
                                         "costs": {"slippage_bps": 5.0}, "ledger": {"path": str(tmp_path / "r.sqlite")}})
    frame = spy_daily.iloc[:400]
    result = run_replay(cfg, data={"SPY": frame}, check=True)
    assert result.parity is not None and result.parity["equal"], result.parity
    theirs = backtest_orders(frame, cfg.sim_config(100_000.0), "fast=20,slow=50")
    assert len(result.orders) == len(theirs) and list(result.orders["filled"]) == list(theirs["Size"])
    assert result.metrics["orders_sent"] == len(theirs)
