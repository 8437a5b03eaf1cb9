"""Orders through the real ib_async client: fills, commissions, partials, cancels, rejects."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from ib_async import IB, Contract, LimitOrder, MarketOrder, Stock, StopOrder

from ._helpers import until
from .conftest import VERSIONS
from .policy import FillPolicy
from .server import FakeGateway
from .state import CommissionSchedule

START_CASH = 1_000_000.0


def spy(ib: IB) -> Contract:
    [c] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    return c


def account_value(ib: IB, tag: str) -> float:
    return next(float(v.value) for v in ib.accountValues() if v.tag == tag and v.currency == "USD" and not v.modelCode)


def test_commission_schedule_is_ib_fixed_pricing() -> None:
    fixed = CommissionSchedule()
    assert fixed.order_total(100, 45_000) == 1.0  # $1 minimum
    assert fixed.order_total(1_000, 450_000) == 5.0  # $0.005/share
    assert fixed.order_total(100, 50) == 0.5  # capped at 1% of trade value
    assert fixed.order_total(301, 135_450) == 1.505


@pytest.mark.parametrize("fake_gateway", VERSIONS, indirect=True)
def test_market_order_fills_with_commission_and_updates_account(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.set_price("SPY", 450.0)
    seen: list[tuple[str, float]] = []
    trade = ib.placeOrder(spy(ib), MarketOrder("BUY", 300, orderRef="mkt-1"))
    trade.fillEvent += lambda t, f: seen.append(("fill", f.commissionReport.commission))
    trade.filledEvent += lambda t: seen.append(("filled", sum(f.commissionReport.commission for f in t.fills)))
    trade.commissionReportEvent += lambda t, f, r: seen.append(("commission", r.commission))
    assert until(ib, lambda: len(seen) == 3)

    assert trade.orderStatus.status == "Filled" and trade.orderStatus.avgFillPrice == 450.0
    [fill] = trade.fills
    assert (fill.execution.shares, fill.execution.price, fill.execution.side) == (300.0, 450.0, "BOT")
    assert fill.execution.orderRef == "mkt-1" and fill.execution.permId == trade.order.permId > 0
    assert fill.commissionReport.commission == 1.5  # 300 x $0.005
    # filledEvent fires on the Filled orderStatus, before the commission report arrives
    assert seen == [("fill", 0.0), ("filled", 0.0), ("commission", 1.5)]
    assert [e.status for e in trade.log][:2] == ["PendingSubmit", "Submitted"]

    assert until(ib, lambda: bool(ib.positions()) and account_value(ib, "TotalCashValue") < START_CASH)
    [pos] = ib.positions()
    assert (pos.position, pos.avgCost) == (300.0, pytest.approx(450.005))  # avgCost includes commission
    assert account_value(ib, "TotalCashValue") == pytest.approx(START_CASH - 135_000 - 1.5)
    assert account_value(ib, "NetLiquidation") == pytest.approx(START_CASH - 1.5)
    assert fake_gateway.position("SPY") == (300.0, pytest.approx(450.005))


def test_round_trip_realizes_pnl_net_of_commission(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.set_price("SPY", 100.0)
    c = spy(ib)
    buy = ib.placeOrder(c, MarketOrder("BUY", 100))
    assert until(ib, lambda: buy.isDone() and len(buy.fills) == 1)
    fake_gateway.set_price("SPY", 110.0)
    assert until(ib, lambda: ib.portfolio() and ib.portfolio()[0].marketPrice == 110.0)
    assert ib.portfolio()[0].unrealizedPNL == pytest.approx((110 - 100.01) * 100)
    sell = ib.placeOrder(c, MarketOrder("SELL", 100))
    assert until(ib, lambda: bool(sell.fills) and sell.fills[0].commissionReport.commission > 0)
    assert sell.fills[0].commissionReport.realizedPNL == pytest.approx((110 - 100.01) * 100 - 1.0)
    assert until(ib, lambda: not ib.positions())
    assert account_value(ib, "TotalCashValue") == pytest.approx(START_CASH - 10_001 + 10_999)
    assert account_value(ib, "RealizedPnL") == pytest.approx(998.0)


def test_partial_fills_carry_per_order_minimum(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.set_price("SPY", 450.0)
    fake_gateway.script(FillPolicy.auto(pieces=3), order_ref="split")
    filled: list[float] = []
    trade = ib.placeOrder(spy(ib), MarketOrder("BUY", 300, orderRef="split"))
    trade.statusEvent += lambda t: filled.append(t.orderStatus.filled)
    assert until(ib, lambda: len(trade.fills) == 3 and trade.fills[-1].commissionReport.commission > 0)
    assert [f.execution.shares for f in trade.fills] == [100.0, 100.0, 100.0]
    assert [f.execution.cumQty for f in trade.fills] == [100.0, 200.0, 300.0]
    assert [f.commissionReport.commission for f in trade.fills] == [1.0, 0.0, 0.5]
    assert [e.status for e in trade.log if e.message == ""][-3:] == ["Submitted", "Submitted", "Filled"]
    assert filled[-3:] == [100.0, 200.0, 300.0]


def test_partial_fill_then_cancel_keeps_filled_quantity(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.set_price("SPY", 450.0)
    fake_gateway.script(FillPolicy.auto(pieces=4, partial=1), order_ref="part")
    trade = ib.placeOrder(spy(ib), MarketOrder("BUY", 400, orderRef="part"))
    assert until(ib, lambda: trade.orderStatus.filled == 100.0)
    assert trade.orderStatus.status == "Submitted" and trade.orderStatus.remaining == 300.0
    ib.cancelOrder(trade.order)
    assert until(ib, lambda: trade.orderStatus.status == "Cancelled")
    assert trade.orderStatus.filled == 100.0 and fake_gateway.position("SPY")[0] == 100.0


def test_limit_order_rests_then_cancel(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.set_price("SPY", 450.0)
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    trade = ib.placeOrder(spy(ib), LimitOrder("BUY", 100, 440.0, orderRef="rest"))
    assert until(ib, lambda: trade.orderStatus.status == "Submitted")
    ib.sleep(0.05)
    assert not trade.fills and fake_gateway.orders("rest")[0].status == "Submitted"
    ib.cancelOrder(trade.order)
    assert trade.orderStatus.status == "PendingCancel"  # set locally at once
    assert until(ib, lambda: trade.orderStatus.status == "Cancelled")
    assert until(ib, lambda: 202 in errors)
    assert fake_gateway.orders("rest")[0].status == "Cancelled" and not fake_gateway.executions()


def test_resting_limit_fills_at_limit_when_price_moves_through(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.set_price("SPY", 450.0)
    trade = ib.placeOrder(spy(ib), LimitOrder("BUY", 100, 440.0))
    assert until(ib, lambda: trade.orderStatus.status == "Submitted")
    fake_gateway.set_price("SPY", 441.0)
    ib.sleep(0.05)
    assert not trade.fills
    fake_gateway.set_price("SPY", 439.5)
    assert until(ib, lambda: trade.orderStatus.status == "Filled")
    assert trade.fills[0].execution.price == 440.0


def test_marketable_limit_fills_at_reference_price(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.set_price("SPY", 450.0)
    trade = ib.placeOrder(spy(ib), LimitOrder("SELL", 10, 449.0))
    assert until(ib, lambda: trade.isDone())
    assert trade.orderStatus.avgFillPrice == 450.0 and fake_gateway.position("SPY")[0] == -10.0


def test_rejection_201_cancels_trade_with_message_in_log(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.set_price("SPY", 450.0)
    fake_gateway.script(FillPolicy.reject("Insufficient margin"), order_ref="bad")
    trade = ib.placeOrder(spy(ib), MarketOrder("BUY", 100, orderRef="bad"))
    assert until(ib, lambda: trade.orderStatus.status == "Cancelled")
    last = trade.log[-1]
    assert last.errorCode == 201 and "Order rejected - reason:Insufficient margin" in last.message
    assert not trade.fills and fake_gateway.position("SPY") == (0.0, 0.0)


def test_unknown_contract_order_gets_200_and_is_cancelled(ib: IB) -> None:
    trade = ib.placeOrder(Stock("NOPE", "SMART", "USD"), MarketOrder("BUY", 1))
    assert until(ib, lambda: trade.orderStatus.status == "Cancelled")
    assert trade.log[-1].errorCode == 200


def test_order_ref_round_trips_and_each_order_is_recorded_once(
    fake_gateway: FakeGateway, ib: IB, ib_factory: Callable[..., IB]
) -> None:
    fake_gateway.set_price("SPY", 450.0)
    fake_gateway.script(FillPolicy.rest(), order_ref="strat-A|2024-03-04|1")
    observer = ib_factory(fake_gateway, client_id=2)
    before = time.time()
    trade = ib.placeOrder(spy(ib), LimitOrder("BUY", 5, 400.0, orderRef="strat-A|2024-03-04|1", tif="GTC"))
    assert until(ib, lambda: trade.orderStatus.status == "Submitted")
    after = time.time()

    [rec] = fake_gateway.orders_received("strat-A|2024-03-04|1")
    assert (rec.client_id, rec.order_id, rec.action, rec.quantity, rec.order_type, rec.lmt_price, rec.tif) == (
        1,
        trade.order.orderId,
        "BUY",
        5.0,
        "LMT",
        400.0,
        "GTC",
    )
    assert before <= rec.at <= after and not rec.is_modify
    # another client sees the order as the gateway describes it, orderRef included
    [other] = observer.reqAllOpenOrders()
    assert (other.order.orderRef, other.order.permId, other.order.clientId) == (
        "strat-A|2024-03-04|1",
        trade.order.permId,
        1,
    )
    fill = fake_gateway.fill_order("strat-A|2024-03-04|1", price=399.0)
    assert fill.order_ref == "strat-A|2024-03-04|1"
    assert until(ib, lambda: bool(trade.fills))
    assert trade.fills[0].execution.orderRef == "strat-A|2024-03-04|1"
    # positions are per account: the observer client hears about the fill too
    assert until(observer, lambda: bool(observer.positions()))
    assert len(fake_gateway.orders_received("strat-A|2024-03-04|1")) == 1


def test_delayed_fill(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.set_price("SPY", 450.0)
    fake_gateway.script(FillPolicy.auto(delay=0.2), symbol="SPY")
    t0 = time.monotonic()
    trade = ib.placeOrder(spy(ib), MarketOrder("BUY", 10))
    assert until(ib, lambda: trade.orderStatus.status == "Submitted")
    assert not trade.fills
    assert until(ib, lambda: trade.orderStatus.status == "Filled")
    assert time.monotonic() - t0 >= 0.2


def test_modify_limit_into_market_fills(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.set_price("SPY", 450.0)
    order = LimitOrder("BUY", 10, 440.0, orderRef="mod")
    trade = ib.placeOrder(spy(ib), order)
    assert until(ib, lambda: trade.orderStatus.status == "Submitted")
    order.lmtPrice = 451.0
    ib.placeOrder(trade.contract, order)
    assert until(ib, lambda: trade.orderStatus.status == "Filled")
    assert trade.fills[0].execution.price == 450.0
    assert [r.is_modify for r in fake_gateway.orders_received("mod")] == [False, True]
    assert [r.lmt_price for r in fake_gateway.orders_received("mod")] == [440.0, 451.0]


def test_bracket_parent_fills_stop_fires_take_profit_cancelled(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.set_price("SPY", 450.0)
    c = spy(ib)
    parent, take, stop = ib.bracketOrder("BUY", 100, 451.0, 460.0, 445.0)
    trades = [ib.placeOrder(c, o) for o in (parent, take, stop)]
    assert until(ib, lambda: trades[0].orderStatus.status == "Filled")
    # the take-profit works at the exchange; the stop is simulated by IB: held until elected
    assert until(ib, lambda: [t.orderStatus.status for t in trades[1:]] == ["Submitted", "PreSubmitted"])
    fake_gateway.set_price("SPY", 444.0)
    assert until(ib, lambda: trades[2].orderStatus.status == "Filled" and trades[1].orderStatus.status == "Cancelled")
    assert trades[2].fills[0].execution.price == 444.0
    assert fake_gateway.position("SPY")[0] == 0.0


def test_stop_order_waits_for_trigger(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.set_price("SPY", 450.0)
    trade = ib.placeOrder(spy(ib), StopOrder("BUY", 10, 455.0))
    assert until(ib, lambda: trade.orderStatus.status == "PreSubmitted")  # simulated: held until elected
    fake_gateway.set_price("SPY", 456.0)
    assert until(ib, lambda: trade.isDone())
    assert trade.fills[0].execution.price == 456.0


def test_global_cancel_and_rest_policy_with_manual_fills(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.set_price("SPY", 450.0)
    fake_gateway.set_default_policy(FillPolicy.rest())
    c = spy(ib)
    a = ib.placeOrder(c, MarketOrder("BUY", 100, orderRef="a"))
    b = ib.placeOrder(c, LimitOrder("SELL", 5, 500.0, orderRef="b"))
    assert until(ib, lambda: a.orderStatus.status == b.orderStatus.status == "Submitted")
    fake_gateway.fill_order("a", qty=40, price=449.0)
    assert until(ib, lambda: a.orderStatus.filled == 40.0)
    ib.reqGlobalCancel()
    assert until(ib, lambda: a.orderStatus.status == b.orderStatus.status == "Cancelled")
    assert a.fills[0].execution.price == 449.0 and fake_gateway.position("SPY")[0] == 40.0


def test_what_if_order_reports_margin_and_is_not_tracked(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.set_price("SPY", 450.0)
    state = ib.whatIfOrder(spy(ib), MarketOrder("BUY", 100))
    assert float(state.initMarginChange) == 22_500.0 and state.commission == 1.0
    assert fake_gateway.orders() == [] and fake_gateway.orders_received()[0].what_if


def test_pnl_subscription_follows_fills_and_prices(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.set_price("SPY", 100.0)
    pnl = ib.reqPnL("DU1234567")
    assert until(ib, lambda: pnl.unrealizedPnL == 0.0)
    trade = ib.placeOrder(spy(ib), MarketOrder("BUY", 100))
    assert until(ib, lambda: trade.isDone())
    fake_gateway.set_price("SPY", 101.0)
    assert until(ib, lambda: pnl.unrealizedPnL == pytest.approx(99.0))  # (101 - 100.01) x 100
    assert pnl.dailyPnL == pytest.approx(99.0) and pnl.realizedPnL == 0.0
