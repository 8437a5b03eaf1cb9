"""Connection faults: server drops, reconnect recovery, 1100/1101/1102, stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock

from ._helpers import until
from .policy import FillPolicy
from .server import FakeGateway


def test_server_drop_raises_in_blocking_call_and_fires_disconnected(fake_gateway: FakeGateway, ib: IB) -> None:
    disconnects: list[bool] = []
    ib.disconnectedEvent += lambda: disconnects.append(True)
    assert fake_gateway.drop_connections() == 1
    with pytest.raises(ConnectionError, match="Socket disconnect"):
        ib.sleep(1.0)
    assert disconnects == [True]
    assert not ib.isConnected()
    assert fake_gateway.connected_clients() == []


def test_request_in_flight_fails_with_connection_error(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.seed_bars("SPY", _days())
    # ib_async treats 321 as a warning, so this request would wait for its timeout...
    timer = threading.Timer(0.1, fake_gateway.drop_connections)
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(ConnectionError):
        ib.reqHistoricalData(Stock("SPY", "SMART", "USD"), "", "1 D", "7 mins", "TRADES", True, timeout=5)
    timer.join()
    assert time.monotonic() - t0 < 2.0  # ...but the drop ends it at once


@pytest.mark.parametrize("fake_gateway", [157, 178], indirect=True)
def test_reconnect_recovers_open_completed_orders_and_executions(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    gw.set_price("SPY", 400.0)
    [c] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    done = ib.placeOrder(c, MarketOrder("BUY", 100, orderRef="s|filled-before"))
    resting = ib.placeOrder(c, LimitOrder("BUY", 50, 350.0, orderRef="s|resting"))
    away = ib.placeOrder(c, LimitOrder("BUY", 20, 390.0, orderRef="s|fills-while-away"))
    assert until(ib, lambda: done.isDone() and resting.orderStatus.status == away.orderStatus.status == "Submitted")
    perm = {t.order.orderRef: t.order.permId for t in (done, resting, away)}
    assert len(set(perm.values())) == 3 and 0 not in perm.values()

    gw.drop_connections()
    with pytest.raises(ConnectionError):
        ib.sleep(0.5)
    gw.fill_order_while_disconnected("s|fills-while-away", price=389.5)
    gw.fill_order_while_disconnected("s|resting", qty=10, price=349.0)

    ib.connect("127.0.0.1", gw.port, clientId=1, timeout=2)

    [open_trade] = ib.openTrades()
    assert (open_trade.order.orderRef, open_trade.order.orderId, open_trade.order.permId) == (
        "s|resting",
        resting.order.orderId,
        perm["s|resting"],
    )
    assert (open_trade.orderStatus.status, open_trade.orderStatus.filled, open_trade.orderStatus.remaining) == (
        "Submitted",
        10.0,
        40.0,
    )
    completed = {t.order.orderRef: t for t in ib.trades() if t.isDone()}
    assert set(completed) == {"s|filled-before", "s|fills-while-away"}
    for ref, t in completed.items():
        assert t.orderStatus.status == "Filled" and t.order.permId == perm[ref]
        assert t.order.orderId == 0  # completedOrder carries no orderId/clientId: match on permId/orderRef

    fills = {f.execution.orderRef: f for f in ib.fills()}
    assert set(fills) == {"s|filled-before", "s|fills-while-away", "s|resting"}
    assert fills["s|fills-while-away"].execution.price == 389.5
    assert {ref: f.commissionReport.commission for ref, f in fills.items()} == {
        "s|filled-before": 1.0,
        "s|fills-while-away": 1.0,
        "s|resting": 1.0,
    }
    assert completed["s|fills-while-away"].fills == [fills["s|fills-while-away"]]
    assert open_trade.fills == [fills["s|resting"]]
    assert [p.position for p in ib.positions()] == [130.0]
    [replay] = [m for m in gw.received(msg_id=7)][-1:]
    assert replay.client_id == 1
    assert len(ib.reqExecutions()) == 3


def test_policy_fill_lands_while_client_is_away(fake_gateway: FakeGateway, ib_factory: Callable[..., IB]) -> None:
    fake_gateway.set_price("SPY", 400.0)
    fake_gateway.script(FillPolicy.auto(delay=0.15), order_ref="late")
    ib = ib_factory(fake_gateway, client_id=4)
    [c] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    ib.placeOrder(c, MarketOrder("SELL", 30, orderRef="late"))
    assert until(ib, lambda: bool(fake_gateway.orders("late")))
    ib.disconnect()
    time.sleep(0.3)
    assert fake_gateway.orders("late")[0].status == "Filled"
    ib.connect("127.0.0.1", fake_gateway.port, clientId=4, timeout=2)
    [fill] = ib.fills()
    assert (fill.execution.side, fill.execution.shares, fill.execution.orderRef) == ("SLD", 30.0, "late")
    assert fill.commissionReport.commission == 1.0


def test_client_disconnect_frees_client_id_at_once(fake_gateway: FakeGateway, ib_factory: Callable[..., IB]) -> None:
    ib = ib_factory(fake_gateway, client_id=9)
    ib.disconnect()
    ib.connect("127.0.0.1", fake_gateway.port, clientId=9, timeout=2)
    assert ib.isConnected() and fake_gateway.connected_clients() == [9]


def test_1100_then_1102_keeps_session_usable(fake_gateway: FakeGateway, ib: IB) -> None:
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
    fake_gateway.set_price("SPY", 400.0)
    assert fake_gateway.connectivity_lost() == 1
    assert until(ib, lambda: 1100 in codes)
    assert ib.isConnected()
    fake_gateway.connectivity_restored(data_lost=False)
    assert until(ib, lambda: 1102 in codes)
    # ib_async answers 1102 by requesting the account summary; the fake replies
    assert until(ib, lambda: bool(fake_gateway.received(msg_id=62)) and bool(ib.wrapper.acctSummary))
    summary = {v.tag: v.value for v in ib.accountSummary()}
    assert float(summary["NetLiquidation"]) == 1_000_000.0
    [c] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    trade = ib.placeOrder(c, MarketOrder("BUY", 1))
    assert until(ib, lambda: trade.orderStatus.status == "Filled")
    fake_gateway.connectivity_restored(data_lost=True)
    assert until(ib, lambda: 1101 in codes) and ib.isConnected()


def test_stopped_gateway_disconnects_and_refuses(
    fake_gateway_factory: Callable[..., FakeGateway], ib_factory: Callable[..., IB]
) -> None:
    gw = fake_gateway_factory()
    ib = ib_factory(gw)
    gw.stop()
    with pytest.raises(ConnectionError):
        ib.sleep(0.5)
    with pytest.raises(ConnectionRefusedError):
        IB().connect("127.0.0.1", gw.port, clientId=2, timeout=1)


def _days():  # noqa: ANN202 - small frame helper
    import pandas as pd

    idx = pd.bdate_range("2024-01-02", periods=5)
    return pd.DataFrame({"open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 10.0}, index=idx)
