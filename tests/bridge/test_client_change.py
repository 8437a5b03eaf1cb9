"""Issue 9, fault 1: a restart under another client id must never void (and so re-send) the
previous client's working orders, and must record their fills.

IB lists a client's orders to that client only (``reqOpenOrders``); the fake gateway models
this (``tests/fakegw/visibility.py``), so these tests fail for a bridge that reconciles with
its own client's orders only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pandas as pd

from tests.fakegw import FakeGateway, FillPolicy

from ._harness import BridgeHarness, daily

H = Callable[..., BridgeHarness]
SYMBOLS = ("SPY", "QQQ", "IWM")


def _three(harness: H, gw: FakeGateway, spy_daily: pd.DataFrame) -> BridgeHarness:
    """A runner (client 7) on three symbols with the same bars: bar 59 says BUY for each."""
    for sym in SYMBOLS[1:]:
        gw.seed_bars(sym, daily(spy_daily.iloc[:60]))
    h = harness(seed=60, strategy={"symbols": SYMBOLS})
    h.clock.set(h.due(59) + pd.Timedelta(seconds=1))
    o = float(spy_daily["open"].iloc[60])
    for sym in SYMBOLS:
        gw.push_bar(sym, {"time": h._stamp(60), "open": o, "high": o, "low": o, "close": o})
    return h


def _restart(h: BridgeHarness, gw: FakeGateway, client_id: int, **changes: object) -> BridgeHarness:
    cfg = dataclasses.replace(h.cfg, gateway=dataclasses.replace(h.cfg.gateway, client_id=client_id), **changes)
    h2 = BridgeHarness(gw, h.frame, h.ledger.path, 60, cfg=cfg, reseed=False)
    h2.clock.set(h.clock.now() + pd.Timedelta(seconds=30))
    return h2


def test_restart_as_another_client_adopts_working_orders_and_never_doubles(harness: H, gw: FakeGateway,
                                                                            spy_daily: pd.DataFrame) -> None:
    gw.script(FillPolicy.rest(), once=False)
    h = _three(harness, gw, spy_daily)
    h.runner.start()
    assert h.until(lambda: len(h.orders()) == 3 and all(o["status"] == "working" for o in h.orders()))
    sent = {o.order_ref: o.quantity for o in gw.orders_received()}
    assert len(sent) == 3
    h.runner.close()  # the runner is gone; its three BUYs keep working at the gateway (client 7)

    h2 = _restart(h, gw, 27)  # e.g. after IB error 326 on client 7
    h2.runner.start()
    assert not h2.until(lambda: len(gw.orders_received()) > 3, timeout=1.5)  # nothing re-sent (was: 6 live BUYs)
    assert {o.order_ref: o.quantity for o in gw.orders_received()} == sent
    rows = {r["order_ref"]: r for r in h2.orders()}
    assert {r["status"] for r in rows.values()} == {"working"}  # adopted, not voided
    assert not h2.ledger.risk_state().halted
    assert any(a["kind"] == "order_adopted" for a in h2.notifier.sent)

    # the adopted orders fill; client 27 gets no live events for client 7's orders: the periodic check finds them
    for ref in sent:
        gw.fill_order(ref, price=float(spy_daily["open"].iloc[60]))
    h2.runner._reconcile("periodic")
    rows = {r["order_ref"]: r for r in h2.orders()}
    assert {r["status"] for r in rows.values()} == {"filled"}
    fills = h2.ledger.fills()
    assert sorted(f["order_ref"] for f in fills) == sorted(sent) and all(f["commission"] > 0 for f in fills)
    for sym in SYMBOLS:
        assert gw.position(sym)[0] == h2.ledger.expected_positions()[sym] == next(q for r, q in sent.items() if f":{sym}:" in r)
    assert not h2.ledger.risk_state().halted
    h2.close()
