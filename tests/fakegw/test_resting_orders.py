"""Stop, trailing and limit orders triggered by the fake's price path, brackets and OCA groups,
through the real ib_async client."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
from ib_async import IB, Contract, LimitOrder, MarketOrder, Order, Stock, StopOrder, Trade

from ._helpers import until
from .server import FakeGateway

DAYS = pd.bdate_range("2024-01-02", periods=30)


def spy(ib: IB) -> Contract:
    [c] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    return c


def seed(gw: FakeGateway, close: float = 450.0, n: int = 5) -> None:
    """``n`` flat daily bars at ``close``; the price is ``close``."""
    frame = pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "volume": 1e6}, index=DAYS[:n])
    gw.seed_bars("SPY", frame)


def bar(i: int, o: float, h: float, low: float, c: float) -> dict[str, object]:
    return {"time": DAYS[i], "open": o, "high": h, "low": low, "close": c}


def statuses(trade: Trade) -> list[str]:
    """Distinct consecutive statuses in the trade log."""
    out: list[str] = []
    for e in trade.log:
        if not out or out[-1] != e.status:
            out.append(e.status)
    return out


def trail(
    action: str,
    qty: float,
    *,
    amount: float | None = None,
    percent: float | None = None,
    stop: float | None = None,
    **kw: object,
) -> Order:
    order = Order(action=action, totalQuantity=qty, orderType="TRAIL", **kw)  # type: ignore[arg-type]
    if amount is not None:
        order.auxPrice = amount
    if percent is not None:
        order.trailingPercent = percent
    if stop is not None:
        order.trailStopPrice = stop
    return order


def long_position(ib: IB, gw: FakeGateway, qty: float = 100) -> Contract:
    c = spy(ib)
    entry = ib.placeOrder(c, MarketOrder("BUY", qty))
    assert until(ib, lambda: entry.isDone())
    return c


# --- each order type triggered by the intrabar path ----------------------------------------
def test_sell_stop_touched_intrabar_fills_at_the_stop_with_status_and_commission(
    fake_gateway: FakeGateway, ib: IB
) -> None:
    gw = fake_gateway
    seed(gw)
    c = long_position(ib, gw)
    stop = ib.placeOrder(c, StopOrder("SELL", 100, 445.0, orderRef="stop"))
    assert until(ib, lambda: stop.orderStatus.status == "PreSubmitted")
    gw.push_bar("SPY", bar(5, 450.0, 452.0, 446.0, 451.0))  # low 446: not reached
    ib.sleep(0.05)
    assert stop.orderStatus.status == "PreSubmitted" and not stop.fills
    gw.push_bar("SPY", bar(6, 451.0, 453.0, 440.0, 452.0))  # up bar: O-L-H-C, the low crosses 445
    assert until(ib, lambda: stop.isDone() and bool(stop.fills) and stop.fills[0].commissionReport.commission > 0)
    assert statuses(stop) == ["PendingSubmit", "PreSubmitted", "Submitted", "Filled"]
    [fill] = stop.fills
    assert (fill.execution.price, fill.execution.shares, fill.execution.side) == (445.0, 100.0, "SLD")
    assert fill.commissionReport.commission == 1.0 and fill.execution.permId == stop.order.permId
    assert gw.position("SPY")[0] == 0.0 and gw.price("SPY") == 452.0


def test_sell_stop_gapped_through_fills_at_the_open(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    c = long_position(ib, gw)
    stop = ib.placeOrder(c, StopOrder("SELL", 100, 445.0))
    assert until(ib, lambda: stop.orderStatus.status == "PreSubmitted")
    gw.push_bar("SPY", bar(5, 438.0, 441.0, 436.0, 440.0))
    assert until(ib, lambda: stop.isDone())
    assert stop.fills[0].execution.price == 438.0  # the first price beyond the stop, not the stop


def test_buy_stop_gapped_up_fills_at_the_open(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    stop = ib.placeOrder(spy(ib), StopOrder("BUY", 10, 455.0))
    assert until(ib, lambda: stop.orderStatus.status == "PreSubmitted")
    gw.push_bar("SPY", bar(5, 458.0, 460.0, 457.0, 459.0))
    assert until(ib, lambda: stop.isDone())
    assert stop.fills[0].execution.price == 458.0 and gw.position("SPY")[0] == 10.0


def test_resting_buy_limit_fills_at_the_limit_or_a_better_open(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    c = spy(ib)
    at_limit = ib.placeOrder(c, LimitOrder("BUY", 10, 445.0, orderRef="a"))
    below = ib.placeOrder(c, LimitOrder("BUY", 10, 441.0, orderRef="b"))
    assert until(ib, lambda: at_limit.orderStatus.status == below.orderStatus.status == "Submitted")
    gw.push_bar("SPY", bar(5, 450.0, 451.0, 444.0, 449.0))  # down bar: O-H-L-C, low 444 crosses 445 only
    assert until(ib, lambda: at_limit.isDone())
    assert at_limit.fills[0].execution.price == 445.0 and not below.fills
    gw.push_bar("SPY", bar(6, 439.0, 446.0, 438.0, 445.0))  # gaps down through 441
    assert until(ib, lambda: below.isDone())
    assert below.fills[0].execution.price == 439.0


def test_trailing_stop_ratchets_on_the_high_and_fills_at_its_level(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    c = long_position(ib, gw)
    t = ib.placeOrder(c, trail("SELL", 100, amount=5.0, orderRef="trail"))
    assert until(ib, lambda: t.orderStatus.status == "PreSubmitted")
    assert gw.orders("trail")[0].trail_stop == 445.0  # 5 below the price when it became active
    gw.push_bar("SPY", bar(5, 450.0, 460.0, 449.0, 458.0))  # up bar: 450 -> 449 -> 460 -> 458
    ib.sleep(0.05)
    assert not t.fills and gw.orders("trail")[0].trail_stop == 455.0  # ratcheted from the high
    gw.push_bar("SPY", bar(6, 457.0, 461.0, 450.0, 451.0))  # down bar: 457 -> 461 -> 450
    assert until(ib, lambda: t.isDone())
    assert t.fills[0].execution.price == 456.0  # the high 461 moved the stop to 456 before the fall
    assert statuses(t)[-2:] == ["Submitted", "Filled"]
    # a reconnecting client is told the stop the order ended at
    [done] = [o for o in ib.reqCompletedOrders(apiOnly=True) if o.order.permId == t.order.permId]
    assert done.order.trailStopPrice == 456.0


def test_trailing_percent_with_a_starting_stop_price(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw, close=100.0)
    c = long_position(ib, gw)
    t = ib.placeOrder(c, trail("SELL", 100, percent=2.0, stop=97.0, orderRef="pct"))
    assert until(ib, lambda: t.orderStatus.status == "PreSubmitted")
    assert gw.orders("pct")[0].trail_stop == 98.0  # 2 % below 100 is above the starting 97
    gw.walk_path("SPY", [100.0, 110.0, 108.0])
    ib.sleep(0.05)
    assert not t.fills and gw.orders("pct")[0].trail_stop == pytest.approx(107.8)
    gw.walk_path("SPY", [106.0], gap=False)
    assert until(ib, lambda: t.isDone())
    assert t.fills[0].execution.price == pytest.approx(107.8)


def test_explicit_ticks_decide_which_level_the_bar_reaches_first(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    c = long_position(ib, gw)
    take, stop = (
        ib.placeOrder(c, o)
        for o in ib.oneCancelsAll([LimitOrder("SELL", 100, 455.0), StopOrder("SELL", 100, 445.0)], "oca-ticks", 1)
    )
    assert until(ib, lambda: stop.orderStatus.status == "PreSubmitted")
    # an up bar would go low first (stop); these ticks reach the high first
    gw.push_bar("SPY", bar(5, 450.0, 456.0, 444.0, 452.0), ticks=[450.0, 456.0, 444.0, 452.0])
    assert until(ib, lambda: take.isDone() and stop.isDone())
    assert take.fills[0].execution.price == 455.0 and stop.orderStatus.status == "Cancelled"
    with pytest.raises(ValueError, match="must start at the open"):
        gw.push_bar("SPY", bar(6, 450.0, 456.0, 444.0, 452.0), ticks=[451.0, 452.0])


def test_revision_of_an_older_bar_does_not_walk_its_path(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    c = long_position(ib, gw)
    stop = ib.placeOrder(c, StopOrder("SELL", 100, 445.0))
    assert until(ib, lambda: stop.orderStatus.status == "PreSubmitted")
    gw.push_bar("SPY", bar(2, 450.0, 450.0, 400.0, 450.0))  # a corrected old bar: history, not trading now
    ib.sleep(0.05)
    assert not stop.fills and stop.orderStatus.status == "PreSubmitted"


def test_forming_bar_update_walks_only_its_new_low(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    c = long_position(ib, gw)
    gw.push_bar("SPY", bar(5, 450.0, 451.0, 446.0, 450.0))
    limit = ib.placeOrder(c, LimitOrder("BUY", 10, 447.0))  # the bar traded 446 before this order existed
    stop = ib.placeOrder(c, StopOrder("SELL", 100, 444.0))
    assert until(ib, lambda: limit.orderStatus.status == "Submitted" and stop.orderStatus.status == "PreSubmitted")
    gw.push_bar("SPY", bar(5, 450.0, 451.0, 446.0, 448.0))  # same range, new close
    ib.sleep(0.05)
    assert not limit.fills
    gw.push_bar("SPY", bar(5, 450.0, 451.0, 443.0, 448.0))  # new low 443
    assert until(ib, lambda: limit.isDone() and stop.isDone())
    assert (limit.fills[0].execution.price, stop.fills[0].execution.price) == (447.0, 444.0)


# --- brackets ------------------------------------------------------------------------------------
def test_bracket_lifecycle_in_one_bar_parent_fill_activates_children_target_cancels_stop(
    fake_gateway: FakeGateway, ib: IB
) -> None:
    gw = fake_gateway
    seed(gw)
    c = spy(ib)
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append((req_id, code))
    parent, take, stop = ib.bracketOrder("BUY", 100, 449.0, 460.0, 440.0)
    trades = [ib.placeOrder(c, o) for o in (parent, take, stop)]
    assert until(ib, lambda: [t.orderStatus.status for t in trades] == ["Submitted", "PreSubmitted", "PreSubmitted"])
    assert [r.transmit for r in gw.orders_received()] == [False, False, True]
    # up bar 450 -> 448 -> 461 -> 455: the entry fills at 449 on the way down, the children
    # become active there and the rest of the path reaches the target
    gw.push_bar("SPY", bar(5, 450.0, 461.0, 448.0, 455.0))
    assert until(ib, lambda: all(t.isDone() for t in trades))
    assert [t.orderStatus.status for t in trades] == ["Filled", "Filled", "Cancelled"]
    assert trades[0].fills[0].execution.price == 449.0 and trades[1].fills[0].execution.price == 460.0
    assert statuses(trades[1]) == ["PendingSubmit", "PreSubmitted", "Submitted", "Filled"]
    assert statuses(trades[2])[-2:] == ["PreSubmitted", "Cancelled"]
    assert until(ib, lambda: (stop.orderId, 202) in errors)  # the OCA cancel, as for a cancelOrder
    assert gw.position("SPY")[0] == 0.0 and not gw.executions()[-1].shares == 0


def test_bracket_stop_fills_on_a_later_gap_and_cancels_the_target(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    trades = [ib.placeOrder(spy(ib), o) for o in ib.bracketOrder("BUY", 100, 450.0, 470.0, 440.0)]
    # active once the parent filled: the target works, the stop is held by IB until elected
    assert until(ib, lambda: trades[0].isDone() and trades[1].orderStatus.status == "Submitted")
    assert trades[2].orderStatus.status == "PreSubmitted"
    gw.push_bar("SPY", bar(5, 430.0, 432.0, 425.0, 431.0))
    assert until(ib, lambda: trades[1].isDone() and trades[2].isDone())
    assert trades[2].fills[0].execution.price == 430.0 and trades[1].orderStatus.status == "Cancelled"


def test_cancelling_the_parent_cancels_its_unfilled_children(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append((req_id, code))
    trades = [ib.placeOrder(spy(ib), o) for o in ib.bracketOrder("BUY", 100, 400.0, 470.0, 390.0)]
    assert until(ib, lambda: trades[2].orderStatus.status == "PreSubmitted")
    ib.cancelOrder(trades[0].order)
    assert until(ib, lambda: all(t.orderStatus.status == "Cancelled" for t in trades))
    assert until(ib, lambda: {(t.order.orderId, 202) for t in trades} <= set(errors))
    assert [o.status for o in gw.orders()] == ["Cancelled"] * 3
    gw.push_bar("SPY", bar(5, 450.0, 450.0, 380.0, 385.0))  # nothing left to trigger
    ib.sleep(0.05)
    assert not gw.executions()


def test_held_children_are_not_visible_until_transmitted(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    parent, take, stop = ib.bracketOrder("BUY", 100, 400.0, 470.0, 390.0)
    c = spy(ib)
    ib.placeOrder(c, parent)
    ib.placeOrder(c, take)
    ib.sleep(0.1)
    assert ib.reqOpenOrders() == [] and [o.status for o in gw.orders()] == ["PendingSubmit"] * 2
    ib.placeOrder(c, stop)
    assert until(ib, lambda: len(ib.reqOpenOrders()) == 3)


# --- OCA groups ------------------------------------------------------------------------------------
def test_oca_type_1_one_fill_cancels_the_others(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    c = long_position(ib, gw)
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append((req_id, code))
    orders = ib.oneCancelsAll(
        [LimitOrder("SELL", 100, 460.0), StopOrder("SELL", 100, 440.0), LimitOrder("SELL", 100, 470.0)], "exit-1", 1
    )
    trades = [ib.placeOrder(c, o) for o in orders]
    assert until(ib, lambda: [t.orderStatus.status for t in trades] == ["Submitted", "PreSubmitted", "Submitted"])
    assert {o.oca_group for o in gw.orders()} >= {"exit-1"}
    gw.push_bar("SPY", bar(5, 450.0, 450.0, 435.0, 436.0))
    assert until(ib, lambda: all(t.isDone() for t in trades))
    assert [t.orderStatus.status for t in trades] == ["Cancelled", "Filled", "Cancelled"]
    assert {(trades[0].order.orderId, 202), (trades[2].order.orderId, 202)} <= set(errors)
    assert gw.position("SPY")[0] == 0.0


def test_oca_type_2_partial_fill_reduces_the_others(fake_gateway: FakeGateway, ib: IB) -> None:
    from .policy import FillPolicy

    gw = fake_gateway
    seed(gw)
    c = long_position(ib, gw)
    gw.script(FillPolicy.auto(pieces=4, partial=1), order_ref="tp")
    take, stop = (
        ib.placeOrder(c, o)
        for o in ib.oneCancelsAll(
            [LimitOrder("SELL", 100, 455.0, orderRef="tp"), StopOrder("SELL", 100, 440.0, orderRef="sl")], "exit-2", 2
        )
    )
    assert until(ib, lambda: stop.orderStatus.status == "PreSubmitted")
    gw.push_bar("SPY", bar(5, 450.0, 456.0, 449.0, 455.5))
    assert until(ib, lambda: take.orderStatus.filled == 25.0 and stop.order.totalQuantity == 75.0)
    assert stop.orderStatus.status == "PreSubmitted" and gw.orders("sl")[0].quantity == 75.0
    gw.fill_order("tp")  # the rest of the target
    assert until(ib, lambda: stop.orderStatus.status == "Cancelled")
    assert gw.position("SPY")[0] == 0.0


# --- modify -------------------------------------------------------------------------------------------
def test_modify_a_resting_stop_price_and_quantity(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    c = long_position(ib, gw)
    order = StopOrder("SELL", 100, 440.0, orderRef="mod-stop")
    trade = ib.placeOrder(c, order)
    assert until(ib, lambda: trade.orderStatus.status == "PreSubmitted")
    order.auxPrice, order.totalQuantity = 447.0, 60
    ib.placeOrder(c, order)
    assert until(ib, lambda: trade.orderStatus.remaining == 60.0)
    assert gw.orders("mod-stop")[0].aux_price == 447.0 and trade.orderStatus.status == "PreSubmitted"
    assert [r.is_modify for r in gw.orders_received("mod-stop")] == [False, True]
    assert gw.orders("mod-stop")[0].perm_id == trade.order.permId  # same order, same permId
    gw.push_bar("SPY", bar(5, 450.0, 451.0, 446.0, 449.0))  # 446 reaches the new stop, not the old one
    assert until(ib, lambda: trade.isDone())
    assert (trade.fills[0].execution.price, trade.fills[0].execution.shares) == (447.0, 60.0)


def test_modify_through_the_market_fills_at_once(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    c = long_position(ib, gw)
    order = StopOrder("SELL", 100, 440.0)
    trade = ib.placeOrder(c, order)
    assert until(ib, lambda: trade.orderStatus.status == "PreSubmitted")
    order.auxPrice = 455.0  # a sell stop above the market is elected at once
    ib.placeOrder(c, order)
    assert until(ib, lambda: trade.isDone())
    assert trade.fills[0].execution.price == 450.0


def test_modify_a_filled_order_gets_104_and_changes_nothing(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append((req_id, code, msg))
    order = LimitOrder("BUY", 10, 451.0, orderRef="done")
    trade = ib.placeOrder(spy(ib), order)
    assert until(ib, lambda: trade.isDone())
    order.lmtPrice = 440.0
    with pytest.raises(AssertionError):  # ib_async sends the modify, then asserts the trade is not done
        ib.placeOrder(trade.contract, order)
    assert until(ib, lambda: any(code == 104 for _, code, _ in errors))
    assert (order.orderId, 104, "Can't modify a filled order.") in errors
    assert gw.orders("done")[0].lmt_price == 451.0 and len(gw.executions("done")) == 1


def test_modify_a_child_before_the_parent_fills_keeps_it_attached(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    c = spy(ib)
    parent, take, stop = ib.bracketOrder("BUY", 100, 445.0, 470.0, 430.0)
    trades = [ib.placeOrder(c, o) for o in (parent, take, stop)]
    assert until(ib, lambda: trades[2].orderStatus.status == "PreSubmitted")
    stop.auxPrice = 438.0
    ib.placeOrder(c, stop)
    assert until(ib, lambda: [o.aux_price for o in gw.orders() if o.order_id == stop.orderId] == [438.0])
    gw.push_bar("SPY", bar(5, 450.0, 451.0, 436.0, 437.0))  # entry at 445, then the stop at 438
    assert until(ib, lambda: trades[2].isDone() and trades[1].isDone())
    assert [t.fills[0].execution.price for t in trades if t.fills] == [445.0, 438.0]
    assert trades[1].orderStatus.status == "Cancelled"


# --- visibility and restarts --------------------------------------------------------------------
def test_children_are_visible_to_their_client_only_and_survive_a_restart_with_their_perm_ids(
    fake_gateway: FakeGateway, ib_factory: Callable[..., IB]
) -> None:
    gw = fake_gateway
    seed(gw)
    a = ib_factory(gw, client_id=1)
    trades = [a.placeOrder(spy(a), o) for o in a.bracketOrder("BUY", 100, 450.0, 470.0, 440.0, orderRef="brk")]
    assert until(a, lambda: trades[0].isDone() and trades[1].orderStatus.status == "Submitted")
    perms = {t.order.permId for t in trades[1:]}
    other = ib_factory(gw, client_id=2)
    assert other.reqOpenOrders() == []
    assert {t.order.permId for t in other.reqAllOpenOrders()} == perms  # listed, not bound

    gw.restart(next_order_id=1)
    with pytest.raises(ConnectionError):
        a.sleep(0.5)
    assert {o.perm_id for o in gw.orders() if o.status in ("Submitted", "PreSubmitted")} == perms
    # the stop keeps working at the broker while nobody is connected
    gw.push_bar("SPY", bar(5, 445.0, 446.0, 438.0, 439.0))
    assert gw.position("SPY")[0] == 0.0
    assert [o.status for o in gw.orders("brk")] == ["Filled", "Cancelled", "Filled"]

    a.connect("127.0.0.1", gw.port, clientId=1, timeout=2)
    assert not a.openTrades()
    fills = {f.execution.permId: f.execution.price for f in a.fills()}
    assert fills[trades[2].order.permId] == 440.0
    completed = {t.order.permId: t.orderStatus.status for t in a.reqCompletedOrders(apiOnly=True)}
    assert completed[trades[1].order.permId] == "Cancelled"


def test_resting_stop_survives_a_restart_and_fills_for_the_reconnected_client(
    fake_gateway: FakeGateway, ib_factory: Callable[..., IB]
) -> None:
    gw = fake_gateway
    seed(gw)
    a = ib_factory(gw, client_id=1)
    c = long_position(a, gw)
    stop = a.placeOrder(c, StopOrder("SELL", 100, 445.0, orderRef="keep", tif="GTC"))
    assert until(a, lambda: stop.orderStatus.status == "PreSubmitted")
    gw.restart(next_order_id=1)
    with pytest.raises(ConnectionError):
        a.sleep(0.5)
    a.connect("127.0.0.1", gw.port, clientId=1, timeout=2)
    [again] = a.openTrades()
    assert (again.order.permId, again.order.orderRef, again.orderStatus.status) == (
        stop.order.permId,
        "keep",
        "PreSubmitted",
    )
    assert again.order.auxPrice == 445.0
    gw.push_bar("SPY", bar(5, 449.0, 449.0, 441.0, 442.0))
    assert until(a, lambda: again.isDone())
    assert again.fills[0].execution.price == 445.0 and gw.position("SPY")[0] == 0.0


def test_trailing_child_trails_only_prices_after_its_parent_filled(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    c = spy(ib)
    parent = LimitOrder("BUY", 100, 449.0, orderId=ib.client.getReqId(), transmit=False)
    child = trail("SELL", 100, amount=2.0, orderRef="child-trail", parentId=parent.orderId, transmit=True)
    p, t = ib.placeOrder(c, parent), ib.placeOrder(c, child)
    assert until(ib, lambda: t.orderStatus.status == "PreSubmitted" and p.orderStatus.status == "Submitted")
    # up bar 450 -> 448 -> 452 -> 451: the entry fills at 449 on the way down; the 450 before it
    # is not part of the child's history, so its stop starts at 447, then trails the high 452
    gw.push_bar("SPY", bar(5, 450.0, 452.0, 448.0, 451.0))
    assert until(ib, lambda: p.isDone())
    ib.sleep(0.05)
    assert not t.fills and gw.orders("child-trail")[0].trail_stop == 450.0


def test_inside_a_segment_the_level_the_path_reaches_first_fills_first(fake_gateway: FakeGateway, ib: IB) -> None:
    gw = fake_gateway
    seed(gw)
    c = long_position(ib, gw)
    far, near = (
        ib.placeOrder(c, o)
        for o in ib.oneCancelsAll([LimitOrder("SELL", 100, 460.0), LimitOrder("SELL", 100, 455.0)], "ladder", 1)
    )  # the far one first
    assert until(ib, lambda: near.orderStatus.status == "Submitted")
    gw.walk_path("SPY", [450.0, 461.0])
    assert until(ib, lambda: far.isDone() and near.isDone())
    assert near.fills[0].execution.price == 455.0 and far.orderStatus.status == "Cancelled"
