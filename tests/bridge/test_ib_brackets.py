"""IBBroker places brackets as IB documents them and modifies their children (issue 12 item 5),
over a real socket against the fake gateway (tests/fakegw models transmit, parentId, OCA,
triggers, modify, per-client visibility and restarts)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import pytest

from bridge.brokers.ib import IBBroker
from bridge.brokers.protocol import OrderRequest, OrderState
from bridge.config import GatewayConfig
from bridge.errors import BrokerError, OrderUnconfirmed
from bridge.protection import child_request, children
from tests.fakegw import FakeGateway, FillPolicy
from tests.fakegw.test_resting_orders import bar, seed

RULES = {"sl_stop": 0.02, "tp_stop": 0.04, "sl_trail": 0.03}


def connect(gw: FakeGateway, client_id: int = 3) -> IBBroker:
    b = IBBroker(GatewayConfig(port=gw.port, client_id=client_id, connect_timeout=2.0, request_timeout=5.0))
    b.connect()
    return b


def wait(b: IBBroker, predicate: Callable[[], object], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        b.poll(0.02)
    return True


def bracket(
    ref: str = "ql:t:SPY:e", qty: float = 100, rules: dict[str, float] = RULES, entry: float = 450.0
) -> tuple[OrderRequest, list[OrderRequest]]:
    parent = OrderRequest(ref, "SPY", "BUY", qty)
    rows = children({"order_ref": ref, "symbol": "SPY", "side": "BUY", "quantity": qty, "tif": "GTC"}, rules, entry)
    return parent, [child_request(r) for r in rows]


def state(b: IBBroker, ref: str) -> OrderState | None:
    return next((o for o in b.open_orders() + b.completed_orders() if o.order_ref == ref), None)


@pytest.fixture
def gw(fake_gateway_factory: Callable[..., FakeGateway]) -> FakeGateway:
    g = fake_gateway_factory(cash=1_000_000.0)
    seed(g)  # flat bars at 450; the price is 450
    return g


@pytest.fixture
def ib(gw: FakeGateway) -> Iterator[IBBroker]:
    b = connect(gw)
    yield b
    b.disconnect()


def test_bracket_holds_the_parent_until_the_last_child_transmits(gw: FakeGateway, ib: IBBroker) -> None:
    parent, kids = bracket()
    states = ib.place_bracket(parent, kids)
    assert [s.order_ref for s in states] == [parent.order_ref] + [k.order_ref for k in kids]
    assert wait(ib, lambda: len(gw.orders_received()) == 4)
    got = gw.orders_received()
    assert [r.order_ref for r in got] == [parent.order_ref, "ql:t:SPY:e:sl", "ql:t:SPY:e:tp", "ql:t:SPY:e:tr"]
    assert [r.transmit for r in got] == [False, False, False, True]  # only the last child releases the chain
    assert [r.parent_id for r in got[1:]] == [got[0].order_id] * 3 and got[0].parent_id == 0
    assert [(r.order_type, r.action, r.tif) for r in got[1:]] == [("STP", "SELL", "GTC")] * 1 + [
        ("LMT", "SELL", "GTC"),
        ("STP", "SELL", "GTC"),  # the trailing role: a STP the runner moves (TRAIL_MODEL, bridge/trailing.py)
    ]
    assert (got[1].aux_price, got[2].lmt_price) == (441.0, 468.0)  # 2 % below, 4 % above 450, cents away
    assert wait(ib, lambda: (s := state(ib, parent.order_ref)) is not None and s.status == "filled")
    views = {v.order_ref: v for v in gw.orders()}
    assert {views[k.order_ref].oca_group for k in kids} == {"ql:t:SPY:e:oca"}
    assert [views[k.order_ref].status for k in kids] == ["PreSubmitted", "Submitted", "PreSubmitted"]
    # open_orders carries what the reconcile needs to recognise each child
    sl, tp, tr = (state(ib, k.order_ref) for k in kids)
    assert sl is not None and tp is not None and tr is not None
    assert {sl.parent_ref, tp.parent_ref, tr.parent_ref} == {parent.order_ref}
    assert (sl.aux_price, tp.limit_price, tr.aux_price, sl.oca_group) == (441.0, 468.0, 436.5, "ql:t:SPY:e:oca")
    assert gw.position("SPY")[0] == 100.0


def test_a_stop_through_the_market_fills_and_cancels_its_siblings(gw: FakeGateway, ib: IBBroker) -> None:
    parent, kids = bracket(rules={"sl_stop": 0.02, "tp_stop": 0.04})
    ib.place_bracket(parent, kids)
    assert wait(ib, lambda: (s := state(ib, kids[1].order_ref)) is not None and s.status == "working")
    gw.push_bar("SPY", bar(5, 438.0, 439.0, 430.0, 431.0))  # gaps below 441: the stop fills at the open
    assert wait(ib, lambda: all((s := state(ib, k.order_ref)) is not None and s.done for k in kids))
    sl, tp = (state(ib, k.order_ref) for k in kids)
    assert sl is not None and tp is not None
    assert (sl.status, sl.avg_fill_price, tp.status) == ("filled", 438.0, "cancelled")
    assert gw.position("SPY")[0] == 0.0


def test_oca_type_2_a_partial_target_fill_shrinks_the_stop_so_the_rest_stays_protected(
    gw: FakeGateway, ib: IBBroker
) -> None:
    parent, kids = bracket(rules={"sl_stop": 0.02, "tp_stop": 0.04})
    gw.script(FillPolicy.auto(pieces=4, partial=1), order_ref=kids[1].order_ref)
    ib.place_bracket(parent, kids)
    assert wait(ib, lambda: (s := state(ib, kids[1].order_ref)) is not None and s.status == "working")
    gw.push_bar("SPY", bar(5, 450.0, 469.0, 449.0, 468.5))  # reaches the target: 25 of 100 fill
    assert wait(ib, lambda: gw.position("SPY")[0] == 75.0)
    [stop] = gw.orders(kids[0].order_ref)
    assert (stop.status, stop.quantity) == ("PreSubmitted", 75.0)  # ocaType 1 would have cancelled it
    gw.push_bar("SPY", bar(6, 445.0, 446.0, 430.0, 431.0))
    assert wait(ib, lambda: gw.position("SPY")[0] == 0.0)  # the stop closes exactly what was left


def test_modify_resends_the_same_order_id_with_the_new_level(gw: FakeGateway, ib: IBBroker) -> None:
    parent, kids = bracket(rules={"sl_stop": 0.02, "tp_stop": 0.04})
    ib.place_bracket(parent, kids)
    assert wait(ib, lambda: (s := state(ib, kids[1].order_ref)) is not None and s.status == "working")
    assert ib.modify(kids[0].order_ref, level=445.5) and ib.modify(kids[1].order_ref, level=470.25)
    assert wait(ib, lambda: len(gw.orders_received(kids[0].order_ref)) == 2)
    sent = gw.orders_received(kids[0].order_ref)
    assert [r.is_modify for r in sent] == [False, True] and sent[0].order_id == sent[1].order_id
    assert sent[1].parent_id == sent[0].parent_id and sent[1].transmit
    assert wait(ib, lambda: gw.orders(kids[0].order_ref)[0].aux_price == 445.5)
    assert wait(ib, lambda: gw.orders(kids[1].order_ref)[0].lmt_price == 470.25)  # its own message, maybe later
    assert wait(ib, lambda: (s := state(ib, kids[0].order_ref)) is not None and s.aux_price == 445.5)
    gw.push_bar("SPY", bar(5, 450.0, 451.0, 445.0, 446.0))  # reaches the new stop, not the old 441
    assert wait(ib, lambda: gw.position("SPY")[0] == 0.0)
    assert gw.executions(kids[0].order_ref)[0].price == 445.5


def test_modify_after_a_reconnect_finds_the_order_by_its_ref(gw: FakeGateway, ib: IBBroker) -> None:
    parent, kids = bracket(rules={"sl_stop": 0.02})
    ib.place_bracket(parent, kids)
    assert wait(ib, lambda: (s := state(ib, kids[0].order_ref)) is not None and s.status == "working")
    gw.drop_connections()
    wait(ib, lambda: not ib.is_connected(), timeout=1.0)
    ib.connect()  # Trade objects from before are dead; the gateway re-lists the open stop
    assert ib.modify(kids[0].order_ref, level=447.0)
    assert wait(ib, lambda: gw.orders(kids[0].order_ref)[0].aux_price == 447.0)
    assert [r.is_modify for r in gw.orders_received(kids[0].order_ref)] == [False, True]


def test_modify_is_refused_for_another_clients_order_and_for_an_order_not_open(
    gw: FakeGateway, ib: IBBroker, caplog: pytest.LogCaptureFixture
) -> None:
    parent, kids = bracket(rules={"sl_stop": 0.02})
    ib.place_bracket(parent, kids)
    assert wait(ib, lambda: (s := state(ib, kids[0].order_ref)) is not None and s.status == "working")
    other = connect(gw, client_id=4)
    try:
        other.sync()
        with caplog.at_level(logging.WARNING, logger="bridge.ib"):
            assert not other.modify(kids[0].order_ref, level=447.0)
            assert not ib.modify(parent.order_ref, level=1.0)  # the filled entry
            assert not ib.modify("ql:nope", level=1.0)
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert "placed by client id 3, not this one (4)" in text and "IB lets only the placing client" in text
        assert f"modify of {parent.order_ref} refused: not open at the broker" in text
        assert [r.is_modify for r in gw.orders_received(kids[0].order_ref)] == [False]  # nothing was sent
        assert gw.orders(kids[0].order_ref)[0].aux_price == 441.0
    finally:
        other.disconnect()


def test_a_gateway_restart_mid_bracket_transmits_nothing(gw: FakeGateway, ib: IBBroker) -> None:
    """The parent and the first child are held (transmit=False) when the gateway goes away:
    held orders die with it, so no entry ever works without its children."""
    parent, kids = bracket(rules={"sl_stop": 0.02, "tp_stop": 0.04})
    real = ib.ib.placeOrder
    calls: list[str] = []

    def place_then_restart(contract: object, order: object) -> object:
        trade = real(contract, order)
        calls.append(order.orderRef)  # type: ignore[attr-defined]
        if len(calls) == 2:
            assert wait(ib, lambda: len(gw.orders()) == 2)
            gw.restart()
            # the scenario: the gateway is gone before the next write (its hang-up can lag under load)
            deadline = time.monotonic() + 5.0
            while not ib._socket_dead() and time.monotonic() < deadline:
                time.sleep(0.01)
        return trade

    ib.ib.placeOrder = place_then_restart  # type: ignore[method-assign]
    with pytest.raises(OrderUnconfirmed, match="after 2 of 3 orders"):
        ib.place_bracket(parent, kids)
    assert calls == [parent.order_ref, kids[0].order_ref]  # the transmitting child was never written
    assert gw.orders() == [] and gw.executions() == [] and gw.position("SPY")[0] == 0.0


def test_a_child_of_another_parent_or_without_its_price_is_refused_before_anything_is_sent(
    gw: FakeGateway, ib: IBBroker
) -> None:
    parent, kids = bracket(rules={"sl_stop": 0.02})
    stray = OrderRequest("ql:x:sl", "SPY", "SELL", 100, "STP", tif="GTC", aux_price=441.0, parent_ref="ql:x")
    with pytest.raises(BrokerError, match="must name its parent's orderRef"):
        ib.place_bracket(parent, [stray])
    bare = OrderRequest(kids[0].order_ref, "SPY", "SELL", 100, "STP", tif="GTC", parent_ref=parent.order_ref)
    with pytest.raises(BrokerError, match="needs a positive aux_price"):
        ib.place_bracket(parent, [bare])
    assert gw.orders_received() == []


def test_a_lone_protective_order_joins_its_oca_group_without_a_parent_id(gw: FakeGateway, ib: IBBroker) -> None:
    """``Broker.place`` with a child request (a re-attached role for a filled entry): no parentId
    (the entry's id may belong to an earlier gateway session), same OCA group, GTC stop."""
    ib.place(OrderRequest("ql:t:SPY:e0", "SPY", "BUY", 100))
    assert wait(ib, lambda: gw.position("SPY")[0] == 100.0)
    _, kids = bracket(ref="ql:t:SPY:e0", rules={"sl_stop": 0.02})
    state = ib.place(kids[0])
    assert state.parent_ref == "ql:t:SPY:e0" and state.aux_price == 441.0
    assert wait(ib, lambda: [v.status for v in gw.orders(kids[0].order_ref)] == ["PreSubmitted"])
    [view] = gw.orders(kids[0].order_ref)
    assert (view.parent_id, view.oca_group, view.order_type, view.aux_price) == (0, "ql:t:SPY:e0:oca", "STP", 441.0)
    gw.push_bar("SPY", bar(5, 450.0, 450.0, 440.0, 441.0))
    assert wait(ib, lambda: gw.position("SPY")[0] == 0.0)
