"""The fake's error model follows IB's documented behaviour (tws-protocol-notes.md section 8),
taking the harsher case where the notes are silent: history errors and silence, data-farm
outages, 10182, rejections of entries and exits, partial fills across a drop."""

from __future__ import annotations

import time

import pytest
from ib_async import IB, LimitOrder, MarketOrder, RequestError, Stock

from ._helpers import until
from .policy import FillPolicy
from .server import FakeGateway
from .test_data import daily_frame

SPY = Stock("SPY", "SMART", "USD")


def _hist(ib: IB, timeout: float = 0.4, keep: bool = False) -> object:
    return ib.reqHistoricalData(SPY, "", "30 D", "1 day", "TRADES", True, keepUpToDate=keep, timeout=timeout)


def test_history_162_for_the_next_n_requests_only(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.seed_bars("SPY", daily_frame())
    fake_gateway.fail_history("SPY", 162, times=2)
    for _ in range(2):
        with pytest.raises(RequestError) as info:
            _hist(ib)
        assert info.value.code == 162
    assert len(_hist(ib)) > 0  # type: ignore[arg-type]


def test_history_without_any_answer_times_out_empty(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.seed_bars("SPY", daily_frame())
    fake_gateway.fail_history("SPY", 0)
    t0 = time.monotonic()
    assert list(_hist(ib, timeout=0.3)) == []  # type: ignore[call-overload]
    assert time.monotonic() - t0 >= 0.3
    assert len(fake_gateway.received(msg_id=20)) == 1  # the gateway got it and said nothing


def test_history_321_is_a_warning_to_ib_async_so_the_request_times_out(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.seed_bars("SPY", daily_frame())
    fake_gateway.fail_history("SPY", 321)
    t0 = time.monotonic()
    assert list(_hist(ib, timeout=0.3)) == []  # type: ignore[call-overload]
    assert time.monotonic() - t0 >= 0.3


def test_hmds_farm_outage_silences_history_and_kills_live_bars(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.seed_bars("SPY", daily_frame())
    bars = _hist(ib, timeout=2, keep=True)
    seen: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, contract: seen.append(code)
    fake_gateway.data_farm_down("hmds")
    assert until(ib, lambda: 2105 in seen and 10182 in seen)
    assert ib.isConnected()  # a farm outage is not a disconnect
    n = len(bars)  # type: ignore[arg-type]
    fake_gateway.push_bar("SPY", {"time": "2024-03-26", "open": 1, "high": 2, "low": 0.5, "close": 1.5, "volume": 1})
    ib.sleep(0.1)
    assert len(bars) == n  # type: ignore[arg-type]  # the dead subscription never updates again
    assert list(_hist(ib, timeout=0.3)) == []  # type: ignore[call-overload]
    fake_gateway.data_farm_up("hmds")
    assert until(ib, lambda: 2106 in seen)
    assert len(_hist(ib)) > 0  # type: ignore[arg-type]


def test_market_farm_messages_are_informational(fake_gateway: FakeGateway, ib: IB) -> None:
    seen: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: seen.append((req_id, code))
    fake_gateway.data_farm_down("market")
    fake_gateway.data_farm_up("market")
    fake_gateway.inject_error(2158)
    assert until(ib, lambda: len(seen) == 3)
    assert seen == [(-1, 2103), (-1, 2104), (-1, 2158)] and ib.isConnected()


def test_10182_on_a_live_subscription_ends_it(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.seed_bars("SPY", daily_frame())
    bars = _hist(ib, timeout=2, keep=True)
    [sub] = fake_gateway.received(msg_id=20)
    fake_gateway.inject_error(10182, req_id=int(sub.fields[1]))
    ib.sleep(0.05)
    n = len(bars)  # type: ignore[arg-type]
    fake_gateway.push_bar("SPY", {"time": "2024-03-26", "open": 1, "high": 2, "low": 0.5, "close": 1.5, "volume": 1})
    ib.sleep(0.1)
    assert len(bars) == n  # type: ignore[arg-type]


@pytest.mark.parametrize("action", ["BUY", "SELL"])
def test_rejection_201_of_entries_and_exits(fake_gateway: FakeGateway, ib: IB, action: str) -> None:
    """IB: error 201 with reqId = orderId, no openOrder, no permId; the position is untouched."""
    fake_gateway.set_price("SPY", 400.0)
    fake_gateway.set_position("SPY", 50.0, 390.0)
    fake_gateway.script(FillPolicy.reject("Order size exceeds limit"), action=action)
    [c] = ib.qualifyContracts(SPY)
    trade = ib.placeOrder(c, MarketOrder(action, 50, orderRef=f"x-{action}"))
    assert until(ib, lambda: trade.orderStatus.status == "Cancelled")
    assert (
        trade.log[-1].errorCode == 201 and "Order rejected - reason:Order size exceeds limit" in trade.log[-1].message
    )
    assert trade.order.permId == 0 and not trade.fills and ib.openTrades() == []
    assert fake_gateway.position("SPY")[0] == 50.0
    ok = ib.placeOrder(c, MarketOrder(action, 50, orderRef=f"y-{action}"))  # scripts are once: the next one fills
    assert until(ib, lambda: ok.orderStatus.status == "Filled")


def test_partial_fill_stays_working_across_a_drop(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.set_price("SPY", 400.0)
    fake_gateway.script(FillPolicy.auto(pieces=4, partial=1), order_ref="part")
    [c] = ib.qualifyContracts(SPY)
    trade = ib.placeOrder(c, LimitOrder("BUY", 40, 401.0, orderRef="part"))
    assert until(ib, lambda: trade.orderStatus.filled == 10.0)
    fake_gateway.drop_connections()
    with pytest.raises(ConnectionError):
        ib.sleep(0.3)
    fake_gateway.fill_order_while_disconnected("part", qty=10, price=400.5)  # a fill while the client is away
    ib.connect("127.0.0.1", fake_gateway.port, clientId=1, timeout=2)
    [open_trade] = ib.openTrades()
    assert (open_trade.order.orderRef, open_trade.orderStatus.status, open_trade.orderStatus.filled) == (
        "part",
        "Submitted",
        20.0,
    )
    assert sorted(f.execution.shares for f in ib.fills()) == [10.0, 10.0]
    assert fake_gateway.position("SPY")[0] == 20.0


def test_a_silenced_request_is_recorded_but_never_answered(fake_gateway: FakeGateway, ib: IB) -> None:
    before = len(fake_gateway.received(msg_id=7))  # connect() asks once
    fake_gateway.silence(7, times=1)  # reqExecutions
    ib.RequestTimeout = 0.3
    with pytest.raises(TimeoutError):
        ib.reqExecutions()
    assert len(fake_gateway.received(msg_id=7)) == before + 1 and ib.isConnected()
    assert ib.reqExecutions() == []  # answered again
