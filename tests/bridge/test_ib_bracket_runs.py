"""Paper runs with exit rules against the fake gateway (issue 12 item 5, the IB side): the entry
goes out as a bracket, its children move to levels from the fill, the protection keeps working
while the bridge is away, the reconnect adopts what happened without re-sending anything, and a
strategy exit cancels the children first."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from tests.fakegw import FakeGateway

from ._harness import BridgeHarness

H = Callable[..., BridgeHarness]


def cents(price: float, *, down: bool) -> float:
    return (math.floor(price * 100 + 1e-9) if down else math.ceil(price * 100 - 1e-9)) / 100


def ledger(h: BridgeHarness) -> dict[str, dict[str, Any]]:
    return {o["order_ref"]: o for o in h.orders()}


def entries(h: BridgeHarness) -> list[dict[str, Any]]:
    return [o for o in h.orders() if o["role"] is None]


def kids(h: BridgeHarness, parent: str) -> dict[str, dict[str, Any]]:
    return {o["role"]: o for o in h.ledger.children(parent)}


def calm(h: BridgeHarness) -> bool:
    """No strategy order open and every fill recorded (the children stay open: they protect)."""
    unrecorded = h.ledger.rows(
        "SELECT 1 FROM orders o WHERE o.filled - COALESCE((SELECT SUM(f.quantity) FROM fills f"
        " WHERE f.order_ref = o.order_ref), 0) > 1e-9"
    )
    return not [o for o in h.ledger.open_orders() if o["role"] is None] and not unrecorded


def advance(h: BridgeHarness, i: int) -> None:
    h.open_bar(i)
    assert h.until(lambda: h.decided(i - 1) and calm(h)), f"no decision on bar {i - 1}"
    h.close_bar(i)


def test_paper_entry_is_a_bracket_relevelled_from_the_fill_and_survives_the_bridge_being_away(
    harness: H, gw: FakeGateway
) -> None:
    h = harness(seed=60, strategy={"params": "fast=20,slow=50,sl_stop=0.05,tp_stop=0.1"})
    h.start()
    assert h.until(lambda: bool(entries(h)) and entries(h)[0]["status"] == "filled" and calm(h))
    [entry] = entries(h)
    ref = entry["order_ref"]
    fill = float(entry["avg_fill_price"])
    assert fill == float(h.frame["open"].iloc[60])
    stop, target = cents(fill * 0.95, down=True), cents(fill * 1.10, down=False)
    assert h.until(
        lambda: kids(h, ref)["stop"]["aux_price"] == stop and kids(h, ref)["take_profit"]["limit_price"] == target
    )
    sl, tp = kids(h, ref)["stop"], kids(h, ref)["take_profit"]
    assert (sl["order_ref"], tp["order_ref"]) == (f"{ref}:sl", f"{ref}:tp")
    assert sl["status"] == tp["status"] == "working"
    # IB's bracket: the parent held (transmit False), children on its id, the last one transmits
    placed = [r for r in gw.orders_received() if not r.is_modify]
    assert [(r.order_ref, r.transmit) for r in placed] == [
        (ref, False),
        (sl["order_ref"], False),
        (tp["order_ref"], True),
    ]
    assert [r.parent_id for r in placed] == [0, placed[0].order_id, placed[0].order_id]
    # levels measured from the expected fill, the open the entry trades at (not the decision close:
    # GAP_AT_ENTRY in test_gateway_parity.py); the fill is that open here, so relevel moved nothing
    assert placed[1].aux_price == stop != cents(float(h.frame["close"].iloc[59]) * 0.95, down=True)
    assert not [r for r in gw.orders_received() if r.is_modify]
    views = {v.order_ref: v for v in gw.orders()}
    assert (views[sl["order_ref"]].aux_price, views[tp["order_ref"]].lmt_price) == (stop, target)
    assert views[sl["order_ref"]].oca_group == views[tp["order_ref"]].oca_group == f"{ref}:oca"
    qty = gw.position("SPY")[0]
    assert qty == entry["quantity"] > 0

    # the bridge goes away and cannot come back; the price falls through the stop meanwhile
    gw.pause_accepting()
    gw.drop_connections()
    assert h.until(lambda: h.runner.state == "disconnected", timeout=3)
    o = float(h.frame["open"].iloc[60])
    gw.push_bar(
        "SPY",
        {"time": h.frame.index[60].tz_localize(None), "open": o, "high": o, "low": stop - 2.0, "close": stop - 1.0},
    )
    assert gw.position("SPY")[0] == 0.0  # the gateway filled the stop: protection held at the broker
    assert [v.status for v in gw.orders(sl["order_ref"])] == ["Filled"]
    assert [v.status for v in gw.orders(tp["order_ref"])] == ["Cancelled"]
    assert gw.executions(sl["order_ref"])[0].price == stop

    gw.resume_accepting()
    assert h.until(lambda: h.runner.state == "ready" and ledger(h)[sl["order_ref"]]["status"] == "filled", timeout=8)
    assert h.until(lambda: ledger(h)[tp["order_ref"]]["status"] == "cancelled")
    fills = {f["order_ref"]: f for f in h.ledger.fills()}
    assert fills[sl["order_ref"]]["price"] == stop and fills[sl["order_ref"]]["quantity"] == qty
    assert h.ledger.expected_positions().get("SPY", 0.0) == 0.0 == gw.position("SPY")[0]  # ledger == broker
    assert h.ledger.risk_state().halted is False
    assert "mismatch" not in [e["kind"] for e in h.ledger.risk_events()]
    # the target is unchanged (1): no second entry and no second child, ever
    for i in range(61, 64):
        advance(h, i)
    assert [r.order_ref for r in gw.orders_received() if not r.is_modify] == [ref, sl["order_ref"], tp["order_ref"]]


def test_a_strategy_exit_cancels_the_children_at_ib_before_it_is_sent(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=180, strategy={"params": "fast=20,slow=50,sl_stop=0.2,tp_stop=0.3"})
    h.start()
    assert h.until(lambda: bool(entries(h)) and entries(h)[0]["status"] == "filled" and calm(h))
    ref = entries(h)[0]["order_ref"]
    for i in range(181, 189):
        advance(h, i)
    buy, sell = entries(h)
    assert (buy["side"], sell["side"], sell["status"]) == ("BUY", "SELL", "filled")
    assert not h.ledger.children(sell["order_ref"])  # an exit carries no children
    assert {k["status"] for k in h.ledger.children(ref)} == {"cancelled"}
    assert {v.status for v in gw.orders() if v.order_ref.startswith(f"{ref}:")} == {"Cancelled"}
    assert gw.position("SPY")[0] == 0.0
    sell_sent = gw.orders_received(sell["order_ref"])[0].at
    cancels = [m.at for m in gw.received(msg_id=4)]  # cancelOrder
    assert len(cancels) == 2 and max(cancels) < sell_sent  # the children were cancelled first
    assert pd.Timestamp(sell["bar_time"]) == h.frame.index[187]
