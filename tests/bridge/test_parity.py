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


def test_orders_equal_the_vectorbt_backtest_against_the_fake_gateway(
    harness: Callable[..., BridgeHarness], gw: FakeGateway, spy_daily: pd.DataFrame
) -> None:
    frame = spy_daily.iloc[START:END]
    h = harness(
        seed=30, frame=frame, strategy={"params": PARAMS}
    )  # exactly the lookback: first finite target on bar 29
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
    cfg = load_config(
        env={},
        overrides={
            "strategy": {"name": "sma_cross", "symbols": ("SPY",), "params": "fast=20,slow=50"},
            "costs": {"slippage_bps": 5.0},
            "ledger": {"path": str(tmp_path / "r.sqlite")},
        },
    )
    frame = spy_daily.iloc[:400]
    result = run_replay(cfg, data={"SPY": frame}, check=True)
    assert result.parity is not None and result.parity["equal"], result.parity
    theirs = backtest_orders(frame, cfg.sim_config(100_000.0), "fast=20,slow=50")
    assert len(result.orders) == len(theirs) and list(result.orders["filled"]) == list(theirs["Size"])
    assert result.metrics["orders_sent"] == len(theirs)


def test_one_minute_bars_across_sessions_equal_the_backtest(
    harness: Callable[..., BridgeHarness], gw: FakeGateway
) -> None:
    """Intraday: bundled 1-minute SPY bars over two sessions (the last bar of a session
    completes at the next session's open, exactly when the backtest trades it)."""
    from quantlab import data

    frame = data.load("SPY", interval="1m")[["open", "high", "low", "close", "volume"]].iloc[
        300:480
    ]  # Feb 11 close -> Feb 12
    params = "fast=5,slow=15"
    h = harness(
        seed=15,
        frame=frame,
        strategy={"params": params, "bar": "1m"},
        risk={"max_orders_per_minute": 10, "max_orders_per_day": 1000},
    )
    h.start()
    assert h.until(lambda: h.decided(14) and h.settled())
    h.close_bar(15)
    for i in range(16, len(frame)):
        h.advance(i)
    assert not [d for d in h.ledger.decisions() if d["verdict"] in ("refused", "reject", "error")]
    ours = h.orders()
    bt = quantlab.backtest(
        "sma_cross", ["SPY"], params, interval="1m", sim=h.cfg.sim_config(100_000.0), data={"SPY": frame}, save=False
    )
    theirs = bt.portfolio.orders.records_readable
    assert len(ours) == len(theirs) >= 6
    for o, (_, t) in zip(ours, theirs.iterrows(), strict=True):
        assert (o["side"], o["filled"], o["status"]) == (t["Side"].upper(), t["Size"], "filled")
        assert o["avg_fill_price"] == pytest.approx(t["Price"], rel=1e-12)
    overnight = frame.index[frame.index.to_series().diff() > pd.Timedelta(hours=1)]
    assert len(overnight) == 1  # the run crossed a session boundary


def test_the_replay_check_uses_the_engine_simulator_which_equals_the_vectorbt_backtest(spy_daily: pd.DataFrame) -> None:
    """``--check`` compares with the engine's simulator (no research wrapper in the bridge):
    on the same bars its orders are vectorbt's, and a replay that differs is reported."""
    from bridge import parity
    from quantlab.engine.intervals import get_interval
    from quantlab.engine.params import resolve_params
    from quantlab.engine.registry import get_strategy

    frame = spy_daily.iloc[:400]
    sim = load_config(env={}, overrides={"costs": {"slippage_bps": 5.0}}).sim_config(100_000.0)
    spec, interval = get_strategy("sma_cross"), get_interval("1d")
    params = resolve_params(spec, PARAMS, interval)
    ours = parity.simulated_orders(spec, params, frame, "SPY", sim, interval)
    theirs = backtest_orders(frame, sim)
    assert len(ours) == len(theirs) >= 4
    assert list(ours["time"]) == list(theirs["Timestamp"])
    assert list(ours["size"]) == [
        s if side == "Buy" else -s for s, side in zip(theirs["Size"], theirs["Side"], strict=True)
    ]
    assert ours["price"].to_numpy() == pytest.approx(theirs["Price"].to_numpy(), rel=1e-12)
    assert ours["fees"].to_numpy() == pytest.approx(theirs["Fees"].to_numpy(), abs=1e-9)
    filled = pd.DataFrame(
        {
            "status": "filled",
            "side": ["BUY" if s > 0 else "SELL" for s in ours["size"]],
            "filled": ours["size"].abs(),
            "avg_fill_price": ours["price"],
            "commission": ours["fees"],
        }
    )
    assert parity.compare(spec, params, {"SPY": frame}, sim, interval, filled)["equal"]
    filled.loc[1, "filled"] += 1  # one share off on the second order
    report = parity.compare(spec, params, {"SPY": frame}, sim, interval, filled)
    assert not report["equal"] and len(report["first_differences"]) == 1
