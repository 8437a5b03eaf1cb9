"""Order visibility per client id, as IB documents it: what each request returns to whom.

The bridge's reconciliation depends on these rules (issue 9, fault 1): a fake that shows
every client's orders to ``reqOpenOrders`` lets a bridge pass its tests for the wrong reason.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from ib_async import IB, ExecutionFilter, LimitOrder, MarketOrder, Stock

from ._helpers import until
from .server import FakeGateway


def _spy(ib: IB) -> Stock:
    [c] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    return c


def _refs(trades: list) -> set[str]:  # noqa: ANN001 - ib_async Trade lists
    return {t.order.orderRef for t in trades}


def test_open_orders_are_per_client_and_all_open_orders_are_everyones(
    fake_gateway: FakeGateway, ib_factory: Callable[..., IB]
) -> None:
    gw = fake_gateway
    gw.set_price("SPY", 400.0)
    a, b = ib_factory(gw, client_id=1), ib_factory(gw, client_id=2)
    a.placeOrder(_spy(a), LimitOrder("BUY", 10, 350.0, orderRef="a|rest"))
    b.placeOrder(_spy(b), LimitOrder("BUY", 5, 340.0, orderRef="b|rest"))
    assert until(a, lambda: len(gw.orders()) == 2)
    gw.place_manual_order("SPY", "SELL", 3, order_type="LMT", lmt_price=450.0, order_ref="tws|rest")

    assert _refs(b.reqOpenOrders()) == {"b|rest"}  # only its own
    assert _refs(a.reqOpenOrders()) == {"a|rest"}
    assert _refs(b.reqAllOpenOrders()) == {"a|rest", "b|rest", "tws|rest"}
    foreign = next(t for t in b.openTrades() if t.order.orderRef == "a|rest")
    assert foreign.order.clientId == 1 and foreign.orderStatus.status == "Submitted"

    # only the owner can cancel: a cancel from client 2 names an order id of client 2's own
    # (here its own order with the same id, or 10147 if it has none); client 1's order keeps working
    errors: list[int] = []
    b.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    b.cancelOrder(foreign.order)
    assert until(b, lambda: errors)
    assert gw.orders("a|rest")[0].status == "Submitted"
    same_id = [o for o in gw.orders() if o.client_id == 2 and o.order_id == foreign.order.orderId]
    assert (errors[0], [o.status for o in same_id]) in ((10147, []), (202, ["Cancelled"]))
    # ...but a global cancel cancels every client's orders
    b.reqGlobalCancel()
    assert until(b, lambda: all(o.status == "Cancelled" for o in gw.orders()))


def test_fills_stream_to_the_owner_only_but_req_executions_lists_every_client(
    fake_gateway: FakeGateway, ib_factory: Callable[..., IB]
) -> None:
    gw = fake_gateway
    gw.set_price("SPY", 400.0)
    a, b = ib_factory(gw, client_id=1), ib_factory(gw, client_id=2)
    live_b: list[str] = []
    b.execDetailsEvent += lambda trade, fill: live_b.append(fill.execution.orderRef)
    trade = a.placeOrder(_spy(a), MarketOrder("BUY", 10, orderRef="a|mkt"))
    assert until(a, lambda: trade.isDone() and len(a.fills()) == 1)
    b.sleep(0.2)
    assert live_b == [] and b.fills() == []  # no live execDetails for another client's order

    [fill] = b.reqExecutions()  # empty filter (clientId 0): every client's executions of the day
    assert (fill.execution.orderRef, fill.execution.clientId, fill.commissionReport.commission) == ("a|mkt", 1, 1.0)
    assert [f.execution.orderRef for f in b.reqExecutions(ExecutionFilter(clientId=1))] == ["a|mkt"]
    assert b.reqExecutions(ExecutionFilter(clientId=2)) == []

    # completed orders are listed for every client (no orderId/clientId: match by permId/orderRef)
    [done] = [t for t in b.reqCompletedOrders(False) if t.order.orderRef == "a|mkt"]
    assert done.order.permId == trade.order.permId and done.orderStatus.status == "Filled"


def test_completed_orders_api_only_leaves_out_manual_orders(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.set_price("SPY", 400.0)
    fake_gateway.place_manual_order("SPY", "BUY", 4, order_ref="tws|mkt")
    t = ib.placeOrder(_spy(ib), MarketOrder("BUY", 2, orderRef="api|mkt"))
    assert until(ib, lambda: t.isDone())
    assert _refs(ib.reqCompletedOrders(False)) >= {"tws|mkt", "api|mkt"}
    assert "tws|mkt" not in _refs(ib.reqCompletedOrders(True))


def test_client_zero_binds_manual_orders_and_gets_their_updates(
    fake_gateway: FakeGateway, ib_factory: Callable[..., IB]
) -> None:
    gw = fake_gateway
    gw.set_price("SPY", 400.0)
    gw.place_manual_order("SPY", "BUY", 7, order_type="LMT", lmt_price=390.0, order_ref="tws|before")
    other = ib_factory(gw, client_id=3)
    assert "tws|before" not in _refs(other.reqOpenOrders())

    zero = ib_factory(gw, client_id=0)  # ib_async sends reqAutoOpenOrders(True) and reqOpenOrders: binds it
    [bound] = [t for t in zero.openTrades() if t.order.orderRef == "tws|before"]
    assert bound.order.orderId < 0 and gw.orders("tws|before")[0].client_id == 0
    assert [m.fields[2] for m in gw.received(msg_id=15, client_id=0)] == ["1"]

    after = gw.place_manual_order("SPY", "SELL", 2, order_type="LMT", lmt_price=410.0, order_ref="tws|after")
    assert after.client_id == 0 and after.order_id < 0  # auto-bound as it was created
    assert until(zero, lambda: "tws|after" in _refs(zero.openTrades()))
    gw.fill_order("tws|before", price=390.0)
    assert until(zero, lambda: bound.orderStatus.status == "Filled")  # client 0 gets the bound order's updates

    errors: list[int] = []
    other.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    other.reqAutoOpenOrders(True)  # only client 0 may bind
    assert until(other, lambda: 321 in errors)


def test_restart_restarts_order_ids_keeps_orders_and_perm_ids_stay_unique(
    fake_gateway: FakeGateway, ib_factory: Callable[..., IB]
) -> None:
    gw = fake_gateway
    gw.set_price("SPY", 400.0)
    a = ib_factory(gw, client_id=1)
    done = a.placeOrder(_spy(a), MarketOrder("BUY", 1, orderRef="pre|done"))
    resting = a.placeOrder(_spy(a), LimitOrder("BUY", 1, 300.0, orderRef="pre|rest"))
    assert until(a, lambda: done.isDone() and resting.orderStatus.status == "Submitted")
    last_id = resting.order.orderId

    gw.restart(next_order_id=1)
    with pytest.raises(ConnectionError):
        a.sleep(0.5)
    b = ib_factory(gw, client_id=2)
    post = b.placeOrder(_spy(b), MarketOrder("BUY", 1, orderRef="post|b"))
    assert until(b, lambda: post.isDone())
    assert post.order.orderId <= last_id  # the id sequence started again (without a restart it is > last_id)
    assert gw.orders("post|b")[0].status == "Filled"
    assert gw.orders("pre|rest")[0].status == "Submitted"  # orders survive a gateway restart
    perms = [o.perm_id for o in gw.orders()]
    assert len(perms) == len(set(perms)) == 3 and 0 not in perms

    # the old client reconnects; reusing the id of its completed order gets 103
    a.connect("127.0.0.1", gw.port, clientId=1, timeout=2)
    assert _refs(a.openTrades()) == {"pre|rest"}  # ib_async moved its ids past the open order's (2)
    errors: list[int] = []
    a.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    clash = MarketOrder("BUY", 1, orderRef="clash", orderId=done.order.orderId)
    a.placeOrder(_spy(a), clash)
    assert until(a, lambda: 103 in errors)
    assert gw.orders("clash") == [] and gw.orders("pre|done")[0].filled == 1
