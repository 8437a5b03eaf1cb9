"""Issue 9, fault 8: an order written into a dead socket is never recorded ``sent``.

ib_async notices a server-side drop only when its loop runs: until then ``isConnected()``
is True and ``placeOrder`` writes into the dead socket without error. The bridge checks the
socket itself (poll for hang-up) around the write; such an order stays ``intent`` with a
``send_failed`` event and is resolved at the reconnect (the broker never got it: void, and
the bar is decided again).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.fakegw import FakeGateway

from ._harness import BridgeHarness

H = Callable[..., BridgeHarness]


def test_order_into_a_dead_socket_is_not_recorded_sent(
    harness: H, gw: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness(seed=60)
    real = h.broker.place
    first: list[str] = []

    def drop_then_place(req: Any) -> Any:
        if not first:
            first.append(req.order_ref)
            gw.drop_connections()
            time.sleep(0.1)  # the FIN has arrived; ib_async's loop has not run, isConnected() is still True
            assert h.broker.ib.isConnected()
        return real(req)

    monkeypatch.setattr(h.broker, "place", drop_then_place)
    h.start()
    [ref] = first
    events = h.ledger.rows("SELECT kind, detail FROM order_events WHERE order_ref = ?", (ref,))
    assert "sent" not in [e["kind"] for e in events]
    assert h.ledger.order(ref)["status"] == "intent" and h.ledger.order(ref)["sent_at"] is None
    assert any(e["kind"] == "send_failed" and "reconnect" in e["detail"] for e in events)
    assert h.runner.state == "disconnected"
    # the reconnect proves it never arrived: void, decided again, exactly one order at the broker
    assert h.until(lambda: h.runner.state == "ready" and len(h.orders()) == 2 and h.settled(), timeout=10)
    assert h.ledger.order(ref)["status"] == "void"
    [received] = gw.orders_received()
    assert received.order_ref != ref and h.orders()[1]["status"] == "filled"


def test_an_unconfirmed_order_the_broker_has_is_adopted_at_reconnect(
    harness: H, gw: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The socket looked dead right after the write, but the order did arrive: adopted, never re-sent."""
    h = harness(seed=60)
    checks = iter([False, True])  # alive before the write, "dead" after it
    monkeypatch.setattr(h.broker, "_socket_dead", lambda: next(checks, False))
    h.start()
    [row] = h.orders()
    ref = row["order_ref"]
    events = h.ledger.rows("SELECT kind, detail FROM order_events WHERE order_ref = ?", (ref,))
    assert [e["kind"] for e in events] == ["created", "send_failed"] and "may not have arrived" in events[1]["detail"]
    assert h.until(
        lambda: h.runner.state == "ready" and h.ledger.order(ref)["status"] == "filled" and h.settled(), timeout=10
    )
    assert [o.order_ref for o in gw.orders_received()] == [ref] and len(h.orders()) == 1
