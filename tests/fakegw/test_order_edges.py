"""Edge cases of resting orders, brackets and modify, through the real ib_async client."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from ib_async import IB, LimitOrder, Order, StopLimitOrder, StopOrder

from ._helpers import until
from .conftest import VERSIONS
from .policy import FillPolicy
from .server import FakeGateway
from .test_resting_orders import bar, long_position, seed, spy


def errors_of(ib: IB) -> list[tuple[int, int, str]]:
    seen: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: seen.append((req_id, code, msg))
    return seen


def test_partial_child_fill_reduces_its_bracket_sibling(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    gw.script(FillPolicy.auto(pieces=2, partial=1), order_type="LMT", action="SELL")
    trades = [ib.placeOrder(spy(ib), o) for o in ib.bracketOrder("BUY", 100, 450.0, 455.0, 440.0)]
    assert until(ib, lambda: trades[0].isDone() and trades[1].orderStatus.status == "Submitted")
    gw.push_bar("SPY", bar(5, 450.0, 456.0, 449.0, 455.5))
    assert until(ib, lambda: trades[1].orderStatus.filled == 50.0 and trades[2].order.totalQuantity == 50.0)
    assert gw.position("SPY")[0] == 50.0  # the stop covers exactly what is left
    gw.push_bar("SPY", bar(6, 445.0, 446.0, 438.0, 439.0))
    assert until(ib, lambda: trades[2].isDone())
    assert (trades[2].fills[0].execution.shares, trades[2].fills[0].execution.price) == (50.0, 440.0)
    assert until(ib, lambda: trades[1].orderStatus.status == "Cancelled")
    assert gw.position("SPY")[0] == 0.0


def test_children_wait_for_the_parents_complete_fill(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    gw.script(FillPolicy.auto(pieces=2, partial=1), order_type="LMT", action="BUY")
    trades = [ib.placeOrder(spy(ib), o) for o in ib.bracketOrder("BUY", 100, 451.0, 470.0, 445.0)]
    assert until(ib, lambda: trades[0].orderStatus.filled == 50.0)
    gw.push_bar("SPY", bar(5, 450.0, 450.0, 430.0, 431.0))  # through the stop: it is not active yet
    ib.sleep(0.05)
    assert [t.orderStatus.status for t in trades[1:]] == ["PreSubmitted", "PreSubmitted"]
    assert gw.position("SPY")[0] == 50.0  # unprotected while the entry is partly filled
    gw.fill_order(client_id=1, order_id=trades[0].order.orderId, price=431.0)
    # the stop becomes active at the market (431, below it) and is elected at once
    assert until(ib, lambda: trades[2].isDone() and trades[1].isDone())
    assert trades[2].fills[0].execution.price == 431.0 and gw.position("SPY")[0] == 0.0


def test_cancelling_one_child_leaves_the_other_working(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    trades = [ib.placeOrder(spy(ib), o) for o in ib.bracketOrder("BUY", 100, 450.0, 470.0, 440.0)]
    assert until(ib, lambda: trades[0].isDone() and trades[1].orderStatus.status == "Submitted")
    ib.cancelOrder(trades[1].order)
    assert until(ib, lambda: trades[1].orderStatus.status == "Cancelled")
    assert trades[2].orderStatus.status == "PreSubmitted"
    gw.push_bar("SPY", bar(5, 450.0, 450.0, 435.0, 436.0))
    assert until(ib, lambda: trades[2].isDone())
    assert trades[2].fills[0].execution.price == 440.0


def test_stop_limit_becomes_a_limit_at_the_trigger(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    c = long_position(ib, gw)
    trade = ib.placeOrder(c, StopLimitOrder("SELL", 100, 443.0, 445.0))
    assert until(ib, lambda: trade.orderStatus.status == "PreSubmitted")
    gw.push_bar("SPY", bar(5, 440.0, 441.0, 438.0, 439.0))  # gaps through stop and limit: elected, not filled
    assert until(ib, lambda: trade.orderStatus.status == "Submitted")
    assert not trade.fills
    gw.push_bar("SPY", bar(6, 439.0, 444.0, 439.0, 442.0))  # back up through 443: fills at the limit
    assert until(ib, lambda: trade.isDone())
    assert trade.fills[0].execution.price == 443.0


def test_new_orders_without_their_price_are_rejected_with_201(fake_gateway: FakeGateway, ib: IB) -> None:
    seed(fake_gateway)
    errors = errors_of(ib)
    c = spy(ib)
    no_stop = ib.placeOrder(c, Order(action="SELL", totalQuantity=10, orderType="STP"))
    no_trail = ib.placeOrder(c, Order(action="SELL", totalQuantity=10, orderType="TRAIL"))
    assert until(ib, lambda: no_stop.orderStatus.status == no_trail.orderStatus.status == "Cancelled")
    texts = {req_id: msg for req_id, code, msg in errors if code == 201}
    assert "STP order needs a stop price (auxPrice)" in texts[no_stop.order.orderId]
    assert "trailing amount (auxPrice) or trailingPercent" in texts[no_trail.order.orderId]
    assert not fake_gateway.executions()


def test_invalid_modify_gets_321_and_the_order_keeps_working(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    errors = errors_of(ib)
    c = long_position(ib, gw)
    order = StopOrder("SELL", 100, 445.0, orderRef="keep")
    trade = ib.placeOrder(c, order)
    assert until(ib, lambda: trade.orderStatus.status == "PreSubmitted")
    order.orderType = "TRAIL"
    order.auxPrice = 0.0
    ib.placeOrder(c, order)
    assert until(ib, lambda: any(code == 321 for _, code, _ in errors))
    assert trade.orderStatus.status == "ValidationError"  # ib_async's view; the order still works
    [view] = gw.orders("keep")
    assert (view.order_type, view.aux_price, view.status) == ("STP", 445.0, "PreSubmitted")
    gw.push_bar("SPY", bar(5, 450.0, 450.0, 440.0, 441.0))
    assert until(ib, lambda: trade.isDone())
    assert trade.fills[0].execution.price == 445.0


def test_child_of_an_unknown_or_cancelled_parent_is_rejected(fake_gateway: FakeGateway, ib: IB) -> None:
    seed(fake_gateway)
    errors = errors_of(ib)
    c = spy(ib)
    orphan = ib.placeOrder(c, StopOrder("SELL", 10, 440.0, parentId=999))
    parent = ib.placeOrder(c, LimitOrder("BUY", 10, 400.0))
    assert until(ib, lambda: orphan.isDone() and parent.orderStatus.status == "Submitted")
    ib.cancelOrder(parent.order)
    assert until(ib, lambda: parent.orderStatus.status == "Cancelled")
    late = ib.placeOrder(c, StopOrder("SELL", 10, 390.0, parentId=parent.order.orderId))
    assert until(ib, lambda: late.orderStatus.status == "Cancelled")
    texts = {req_id: msg for req_id, code, msg in errors if code == 201}
    assert "parent order 999 is not found" in texts[orphan.order.orderId]
    assert f"parent order {parent.order.orderId} is Cancelled" in texts[late.order.orderId]


def test_held_orders_are_lost_in_a_restart(fake_gateway: FakeGateway, ib_factory: Callable[..., IB]) -> None:
    gw = fake_gateway
    seed(gw)
    a = ib_factory(gw, client_id=1)
    parent, take, stop = a.bracketOrder("BUY", 100, 440.0, 470.0, 430.0)
    c = spy(a)
    a.placeOrder(c, parent)
    a.placeOrder(c, take)
    assert until(a, lambda: len(gw.orders()) == 2)
    gw.restart()
    with pytest.raises(ConnectionError):
        a.sleep(0.5)
    assert gw.orders() == []  # transmit=0 orders never reached IB
    a.connect("127.0.0.1", gw.port, clientId=1, timeout=2)
    errors = errors_of(a)
    late = a.placeOrder(c, stop)  # the transmitting child finds no parent
    assert until(a, lambda: late.orderStatus.status == "Cancelled")
    assert any(code == 201 and "is not found" in msg for _, code, msg in errors)


def test_modify_a_trailing_amount_re_trails_from_the_best_price(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    c = long_position(ib, gw)
    order = Order(action="SELL", totalQuantity=100, orderType="TRAIL", auxPrice=5.0, orderRef="tr")
    trade = ib.placeOrder(c, order)
    assert until(ib, lambda: trade.orderStatus.status == "PreSubmitted")
    gw.walk_path("SPY", [450.0, 460.0, 459.0])
    assert gw.orders("tr")[0].trail_stop == 455.0
    order.auxPrice = 2.0
    ib.placeOrder(c, order)
    assert until(ib, lambda: gw.orders("tr")[0].trail_stop == 458.0)  # 2 below the best price so far (460)
    gw.walk_path("SPY", [456.0], gap=False)
    assert until(ib, lambda: trade.isDone())
    assert trade.fills[0].execution.price == 458.0


@pytest.mark.parametrize("fake_gateway", VERSIONS, indirect=True)
def test_reconnecting_client_gets_its_working_children_with_parent_and_oca_fields(
    fake_gateway: FakeGateway, ib_factory: Callable[..., IB]
) -> None:
    gw = fake_gateway
    seed(gw)
    a = ib_factory(gw, client_id=1)
    parent, take, stop = a.bracketOrder("BUY", 100, 450.0, 470.0, 440.0)
    take.ocaGroup = stop.ocaGroup = "brk-1"
    take.ocaType = stop.ocaType = 3
    stop.orderRef = "brk-1|stop"
    trades = [a.placeOrder(spy(a), o) for o in (parent, take, stop)]
    assert until(a, lambda: trades[0].isDone() and trades[1].orderStatus.status == "Submitted")
    gw.drop_connections(client_id=1)
    with pytest.raises(ConnectionError):
        a.sleep(0.5)
    a.connect("127.0.0.1", gw.port, clientId=1, timeout=2)
    got = {t.order.permId: t for t in a.openTrades()}
    assert set(got) == {take.permId, stop.permId}
    for t in got.values():
        assert (t.order.parentId, t.order.ocaGroup, t.order.ocaType) == (parent.orderId, "brk-1", 3)
    assert got[stop.permId].orderStatus.status == "PreSubmitted" and got[stop.permId].order.auxPrice == 440.0
    assert got[stop.permId].order.orderRef == "brk-1|stop"


@pytest.mark.parametrize("fake_gateway", VERSIONS, indirect=True)
def test_trail_stop_price_decodes_at_every_version(fake_gateway: FakeGateway, ib_factory: Callable[..., IB]) -> None:
    gw = fake_gateway
    seed(gw)
    a = ib_factory(gw, client_id=1)
    c = long_position(a, gw)
    order = Order(action="SELL", totalQuantity=100, orderType="TRAIL", trailingPercent=1.0, orderRef="v-trail")
    a.placeOrder(c, order)
    assert until(a, lambda: bool(gw.orders("v-trail")) and gw.orders("v-trail")[0].status == "PreSubmitted")
    gw.walk_path("SPY", [450.0, 460.0], gap=False)
    observer = ib_factory(gw, client_id=2)  # ib_async keeps its own order objects: a fresh client decodes the fields
    [listed] = observer.reqAllOpenOrders()
    assert (listed.order.orderType, listed.order.trailingPercent) == ("TRAIL", 1.0)
    assert listed.order.trailStopPrice == pytest.approx(455.4)  # 1 % below the high 460


def test_global_cancel_cancels_working_children_and_nothing_fills_later(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    trades = [ib.placeOrder(spy(ib), o) for o in ib.bracketOrder("BUY", 100, 450.0, 470.0, 440.0)]
    assert until(ib, lambda: trades[0].isDone() and trades[1].orderStatus.status == "Submitted")
    ib.reqGlobalCancel()
    assert until(ib, lambda: trades[1].orderStatus.status == trades[2].orderStatus.status == "Cancelled")
    gw.push_bar("SPY", bar(5, 450.0, 480.0, 430.0, 431.0))
    ib.sleep(0.05)
    assert len(gw.executions()) == 1 and gw.position("SPY")[0] == 100.0


def test_day_orders_expire_at_the_session_end_gtc_protection_stays(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    errors = errors_of(ib)
    c = long_position(ib, gw)
    day = ib.placeOrder(c, StopOrder("SELL", 100, 440.0, orderRef="day"))  # tif empty: IB's DAY
    gtc = ib.placeOrder(c, StopOrder("SELL", 100, 440.0, orderRef="gtc", tif="GTC"))
    assert until(ib, lambda: day.orderStatus.status == gtc.orderStatus.status == "PreSubmitted")
    assert [v.order_ref for v in gw.expire_day_orders()] == ["day"]
    assert until(ib, lambda: day.orderStatus.status == "Cancelled")
    assert until(ib, lambda: (day.order.orderId, 202) in [(r, code) for r, code, _ in errors])
    gw.push_bar("SPY", bar(5, 445.0, 445.0, 430.0, 431.0))
    assert until(ib, lambda: gtc.isDone())
    assert gtc.fills[0].execution.price == 440.0 and not day.fills


def test_oca_reduce_follows_each_execution_of_the_same_member(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    c = long_position(ib, gw)
    gw.script(FillPolicy.auto(pieces=4, partial=2), order_ref="tp2")
    take, stop = (
        ib.placeOrder(c, o)
        for o in ib.oneCancelsAll(
            [LimitOrder("SELL", 100, 455.0, orderRef="tp2"), StopOrder("SELL", 200, 440.0, orderRef="sl2")], "exit-3", 3
        )
    )
    assert until(ib, lambda: stop.orderStatus.status == "PreSubmitted")
    gw.walk_path("SPY", [450.0, 456.0])
    assert until(ib, lambda: take.orderStatus.filled == 50.0)
    assert gw.orders("sl2")[0].quantity == 100.0  # 200 reduced in proportion: by 2 x 25 x (200 / 100)
