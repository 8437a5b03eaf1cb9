"""One contract, two brokers: every case runs on SimBroker and on IBBroker over the fake gateway.

The IB side is the real ib_async client over a real socket on 127.0.0.1 (tests/fakegw).
A real paper gateway would run the same cases with ``-m live`` (not in CI).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pandas as pd
import pytest

from bridge.brokers.ib import IBBroker
from bridge.brokers.protocol import (
    Bar,
    BarEvent,
    Broker,
    ConnectionEvent,
    Event,
    FillEvent,
    OrderEvent,
    OrderRequest,
)
from bridge.brokers.sim import SimBroker
from bridge.clock import ManualClock
from bridge.config import GatewayConfig
from bridge.errors import UnknownSymbol
from quantlab.engine.intervals import get_interval
from quantlab.engine.settings import Costs, SimConfig, Sizing
from tests.fakegw import FakeGateway, FillPolicy

from ._harness import daily

DAY = get_interval("1d")


@dataclass
class Harness:
    """A broker plus the knobs of the market behind it."""

    broker: Broker
    set_price: Callable[[str, float], None]
    script: Callable[[str, str, float], None]  # (order_ref, "reject"|"rest"|"partial", qty)
    fill: Callable[[str, float | None, float | None], None]
    drop: Callable[[], None]
    push_bar: Callable[[str, pd.Timestamp, float], None]
    events: list[Event] = field(default_factory=list)

    def wait(self, predicate: Callable[[], object], timeout: float = 3.0) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            self.events += self.broker.poll(0.02)
        return True

    def statuses(self, ref: str) -> list[str]:
        return [e.order.status for e in self.events if isinstance(e, OrderEvent) and e.order.order_ref == ref]

    def fills(self, ref: str) -> list[FillEvent]:
        return [e for e in self.events if isinstance(e, FillEvent) and e.fill.order_ref == ref]


@pytest.fixture(params=["sim", "ib"])
def h(
    request: pytest.FixtureRequest, fake_gateway_factory: Callable[..., FakeGateway], spy_daily: pd.DataFrame
) -> Iterator[Harness]:
    history = spy_daily.iloc[:30]
    if request.param == "sim":
        clock = ManualClock("2021-02-16 15:00")
        sim = SimConfig(100_000.0, Costs(slippage_bps=0.0), Sizing("fraction", 0.1))
        b = SimBroker(sim, clock, cash=100_000.0, symbols=["SPY", "QQQ"])
        b.load_history("SPY", history)

        def script(ref: str, mode: str, qty: float) -> None:
            b.script(ref, mode, qty=qty, reason="not allowed")

        harness = Harness(
            b,
            b.set_price,
            script,
            lambda ref, q, p: b.fill_order(ref, q, p) and None,
            b.drop,
            lambda s, t, px: b.push_bar(s, Bar(t, px, px, px, px, 0.0)),
        )
        b.connect()
        yield harness
        return
    gw = fake_gateway_factory(cash=100_000.0)
    gw.seed_bars("SPY", daily(history))
    policies = {
        "reject": lambda q: FillPolicy.reject("not allowed"),
        "rest": lambda q: FillPolicy.rest(),
        "partial": lambda q: FillPolicy.fill(pieces=int(100 // q), partial=1),
    }
    b = IBBroker(GatewayConfig(port=gw.port, client_id=3, connect_timeout=2.0, request_timeout=5.0))

    def push(s: str, t: pd.Timestamp, px: float) -> None:
        gw.push_bar(s, {"time": t.tz_localize(None), "open": px, "high": px, "low": px, "close": px})

    harness = Harness(
        b,
        gw.set_price,
        lambda ref, mode, qty: gw.script(policies[mode](qty), order_ref=ref),
        lambda ref, q, p: gw.fill_order(ref, qty=q, price=p) and None,
        lambda: gw.drop_connections() and None,
        push,
    )
    b.connect()
    yield harness
    b.disconnect()


def test_connect_reports_account_cash_and_equity(h: Harness) -> None:
    b = h.broker
    assert b.is_connected() and b.account_id() in b.managed_accounts()
    acct = b.account()
    assert (acct.cash, acct.net_liquidation) == (100_000.0, 100_000.0)
    assert b.positions() == {} and b.open_orders() == []


def test_unknown_symbol_is_error_200(h: Harness) -> None:
    with pytest.raises(UnknownSymbol, match="ZZZZ"):
        h.broker.qualify(["ZZZZ"])


def test_history_then_bar_updates_complete_the_previous_bar(h: Harness, spy_daily: pd.DataFrame) -> None:
    frame = h.broker.subscribe_bars("SPY", DAY, 30)
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"] and len(frame) == 30
    assert frame.index[-1] == spy_daily.index[29] and frame.index.tz is not None
    nxt = spy_daily.index[30]
    h.push_bar("SPY", nxt, 400.0)
    assert h.wait(lambda: any(isinstance(e, BarEvent) and not e.complete and e.bar.time == nxt for e in h.events))
    complete = [e for e in h.events if isinstance(e, BarEvent) and e.complete]
    assert [e.bar.time for e in complete] == [spy_daily.index[29]]
    assert complete[0].bar.close == pytest.approx(float(spy_daily["close"].iloc[29]))


def test_market_order_fills_with_ib_commission(h: Harness) -> None:
    h.set_price("SPY", 400.0)
    state = h.broker.place(OrderRequest("ql:t:mkt", "SPY", "BUY", 100))
    assert state.order_ref == "ql:t:mkt" and state.status in ("pending", "working", "filled")
    assert h.wait(lambda: "filled" in h.statuses("ql:t:mkt") and h.fills("ql:t:mkt"))
    [f] = h.fills("ql:t:mkt")
    assert (f.fill.side, f.fill.quantity, f.fill.price, f.fill.commission) == ("BUY", 100.0, 400.0, 1.0)
    assert h.wait(lambda: "SPY" in h.broker.positions() and h.broker.account().cash < 100_000.0)
    assert h.broker.positions()["SPY"].quantity == 100.0
    assert h.broker.account().cash == pytest.approx(100_000.0 - 40_000.0 - 1.0)
    assert [x.exec_id for x in h.broker.executions()] == [f.fill.exec_id]
    [done] = [o for o in h.broker.completed_orders() if o.order_ref == "ql:t:mkt"]
    assert (done.status, done.filled, done.avg_fill_price) == ("filled", 100.0, 400.0)


def test_limit_order_rests_then_cancels(h: Harness) -> None:
    h.set_price("SPY", 400.0)
    h.broker.place(OrderRequest("ql:t:lmt", "SPY", "BUY", 10, "LMT", 350.0))
    assert h.wait(lambda: [(o.order_ref, o.status) for o in h.broker.open_orders()] == [("ql:t:lmt", "working")])
    [o] = h.broker.open_orders()
    assert (o.status, o.order_type, o.limit_price) == ("working", "LMT", 350.0)
    assert h.broker.cancel("ql:t:lmt")
    assert h.wait(lambda: "cancelled" in h.statuses("ql:t:lmt"))
    assert h.broker.open_orders() == [] and not h.broker.cancel("ql:t:unknown")


def test_rejection_is_reported_as_rejected_with_the_code(h: Harness) -> None:
    h.set_price("SPY", 400.0)
    h.script("ql:t:rej", "reject", 0)
    h.broker.place(OrderRequest("ql:t:rej", "SPY", "BUY", 10))
    assert h.wait(lambda: "rejected" in h.statuses("ql:t:rej"))
    [rej] = [e.order for e in h.events if isinstance(e, OrderEvent) and e.order.status == "rejected"]
    assert rej.error_code == 201 and "not allowed" in rej.message and rej.filled == 0


def test_partial_fill_then_cancel_keeps_the_filled_part(h: Harness) -> None:
    h.set_price("SPY", 400.0)
    h.script("ql:t:part", "partial", 25)
    h.broker.place(OrderRequest("ql:t:part", "SPY", "BUY", 100))
    assert h.wait(lambda: h.fills("ql:t:part"))
    [o] = h.broker.open_orders()
    assert (o.status, o.filled) == ("working", 25.0)
    h.broker.cancel("ql:t:part")
    assert h.wait(lambda: "cancelled" in h.statuses("ql:t:part"))
    last = [e.order for e in h.events if isinstance(e, OrderEvent) and e.order.order_ref == "ql:t:part"][-1]
    assert (last.status, last.filled) == ("cancelled", 25.0) and h.broker.positions()["SPY"].quantity == 25.0


def test_disconnect_is_an_event_and_fills_while_away_are_recovered(h: Harness) -> None:
    h.set_price("SPY", 400.0)
    h.script("ql:t:away", "rest", 0)
    h.broker.place(OrderRequest("ql:t:away", "SPY", "BUY", 20))
    assert h.wait(lambda: [o.status for o in h.broker.open_orders()] == ["working"])  # acknowledged by the gateway
    h.drop()
    assert h.wait(lambda: any(isinstance(e, ConnectionEvent) and e.kind == "disconnected" for e in h.events))
    assert not h.broker.is_connected()
    h.fill("ql:t:away", None, 399.0)
    h.broker.connect()
    h.broker.sync()
    [f] = [x for x in h.broker.executions() if x.order_ref == "ql:t:away"]
    assert (f.quantity, f.price, f.commission) == (20.0, 399.0, 1.0)
    [done] = [o for o in h.broker.completed_orders() if o.order_ref == "ql:t:away"]
    assert done.status == "filled" and h.broker.positions()["SPY"].quantity == 20.0


def test_cancel_all_cancels_every_open_order(h: Harness) -> None:
    h.set_price("SPY", 400.0)
    for ref in ("ql:t:a", "ql:t:b"):
        h.broker.place(OrderRequest(ref, "SPY", "BUY", 5, "LMT", 300.0))
    assert h.wait(lambda: [o.status for o in h.broker.open_orders()] == ["working", "working"])
    h.broker.cancel_all()
    assert h.wait(lambda: not h.broker.open_orders() and "cancelled" in h.statuses("ql:t:b"))


def test_bracket_children_carry_their_parent_level_and_oca_group_and_modify_moves_them(h: Harness) -> None:
    from bridge.protection import child_request, children

    h.set_price("SPY", 400.0)
    parent = OrderRequest("ql:t:brk", "SPY", "BUY", 10)
    rows = children({**vars(parent), "tif": "GTC"}, {"sl_stop": 0.05, "tp_stop": 0.1}, 400.0)
    states = h.broker.place_bracket(parent, [child_request(r) for r in rows])
    assert [s.order_ref for s in states] == ["ql:t:brk", "ql:t:brk:sl", "ql:t:brk:tp"]
    assert h.wait(lambda: "filled" in h.statuses("ql:t:brk") and len(h.broker.open_orders()) == 2)
    sl, tp = sorted(h.broker.open_orders(), key=lambda o: o.order_ref)
    assert (sl.parent_ref, sl.aux_price, sl.oca_group, sl.order_type) == ("ql:t:brk", 380.0, "ql:t:brk:oca", "STP")
    assert (tp.parent_ref, tp.limit_price, tp.oca_group, tp.order_type) == ("ql:t:brk", 440.0, "ql:t:brk:oca", "LMT")
    assert h.broker.modify("ql:t:brk:sl", level=385.5)
    assert h.wait(lambda: [o.aux_price for o in h.broker.open_orders() if o.order_ref == "ql:t:brk:sl"] == [385.5])
    assert not h.broker.modify("ql:t:brk", level=1.0) and not h.broker.modify("ql:t:unknown", level=1.0)


@pytest.mark.live
@pytest.mark.skipif(
    not os.environ.get("BRIDGE_LIVE_PAPER_PORT"), reason="set BRIDGE_LIVE_PAPER_PORT to a real paper gateway's API port"
)
def test_real_paper_gateway_smoke() -> None:
    """Read-only checks against a real IB paper gateway (``-m live``; never in CI): connect,
    paper account, qualify, history. Sends no orders."""
    b = IBBroker(GatewayConfig(port=int(os.environ["BRIDGE_LIVE_PAPER_PORT"]), client_id=97, connect_timeout=5.0))
    b.connect()
    try:
        assert b.account_id().startswith("D")
        b.qualify(["SPY"])
        with pytest.raises(UnknownSymbol):
            b.qualify(["ZZZZZZZZ"])
        frame = b.subscribe_bars("SPY", DAY, 30)
        assert len(frame) >= 20 and frame.index.is_monotonic_increasing
        assert b.account().net_liquidation > 0
    finally:
        b.disconnect()
