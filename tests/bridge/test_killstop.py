"""The kill switch never strips a position's protective orders (issue 12 item 5), on the sim broker.

Without flatten it cancels every other open order of the bridge one by one and keeps the stop and
target of each open position (a child on a flat symbol, on the wrong side or larger than the
position is cancelled: it would open one). With flatten it cancels everything, children included,
first, then flattens what is left: a child that fills during the cancel wait is never sold twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from bridge.brokers.protocol import Bar, OrderRequest, OrderState
from bridge.errors import BrokerError
from bridge.risk import OrderIntent
from bridge.runtime.killswitch import kill
from bridge.stop_plan import plan_stop

from .test_reattach import Rig, placed


@pytest.fixture
def rig(spy_daily: pd.DataFrame, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(spy_daily, tmp_path)
    yield r
    r.runner.close()
    r.ledger.close()


def stop(rig: Rig, flatten: bool) -> dict:
    return kill(rig.runner.ctx, "operator", flatten=flatten, kind="manual_stop", tag=rig.clock.now())


def resting_entry(rig: Rig, ref: str = "ql:test:SPY:lmt") -> str:
    """A working limit order of this bridge (far from the market: it rests)."""
    ctx = rig.runner.ctx
    intent = OrderIntent("SPY", "BUY", 5, 50.0, "LMT", 50.0)
    ctx.ledger.insert_order(ctx.order_row(intent, ref, None, "intent", None, None, "test"), rig.clock.now())
    rig.broker.place(OrderRequest(ref, "SPY", "BUY", 5, "LMT", 50.0))
    rig.pump()
    return ref


def test_a_stop_without_flatten_keeps_the_positions_stop_and_target(rig: Rig) -> None:
    e = rig.enter()
    lmt = resting_entry(rig)
    wrong = f"{e}:tp~1"  # a child on the wrong side of a long: it would open a position
    rig.broker.place(OrderRequest(wrong, "SPY", "BUY", 10, "LMT", 90.0, "GTC", parent_ref=e, oca_group=f"{e}:oca"))
    rig.pump()
    result = stop(rig, flatten=False)
    rig.pump()
    assert set(rig.open_at_broker()) == {f"{e}:sl", f"{e}:tp"}
    assert rig.ledger.order(lmt)["status"] == "cancelled"
    assert [k["order_ref"] for k in result["kept"]] == [f"{e}:sl", f"{e}:tp"]
    text = f"kept protective orders: {e}:sl (SELL 10 SPY), {e}:tp (SELL 10 SPY)"
    assert result["kept_text"] == text
    assert [r["detail"] for r in rig.ledger.risk_events("protection_kept")] == [text]
    assert any(text in a["message"] for a in rig.alerts("protection_kept"))
    assert "kept by the kill switch" in [ev["detail"] for ev in rig.events() if ev["order_ref"] == f"{e}:sl"][-1]
    assert rig.ledger.risk_state().kill_switch and rig.position() == 10
    # and the kept stop still protects: a bar through 95 closes the position
    rig.broker.push_bar("SPY", Bar(rig.clock.now().normalize(), 100.0, 100.0, 94.0, 96.0))
    rig.broker.push_bar("SPY", Bar(rig.clock.now().normalize() + pd.Timedelta(days=1), 96.0, 96.0, 96.0, 96.0))
    assert rig.position() == 0


def test_a_stop_without_positions_to_protect_cancels_everything(rig: Rig) -> None:
    lmt = resting_entry(rig)
    result = stop(rig, flatten=False)
    rig.pump()
    assert rig.open_at_broker() == {} and rig.ledger.order(lmt)["status"] == "cancelled"
    assert result["kept"] == [] and result["kept_text"] == "kept protective orders: none"


def test_a_stop_with_flatten_cancels_the_children_first_and_never_sells_a_filled_stop_twice(rig: Rig) -> None:
    e = rig.enter()
    real = rig.broker.cancel_all

    def stop_fills_first() -> None:  # the market reaches the stop while the cancels are on their way
        rig.broker.fill_order(f"{e}:sl", qty=4, price=95.0)
        real()

    rig.broker.cancel_all = stop_fills_first  # type: ignore[method-assign]
    result = stop(rig, flatten=True)
    rig.pump()
    assert rig.open_at_broker() == {}
    assert {k["status"] for k in rig.ledger.children(e)} == {"cancelled"}
    [flat] = [o for o in result["orders"] if "order_ref" in o]
    assert flat["quantity"] == 6 and result["kept"] == []
    assert rig.position() == 0 == rig.ledger.expected_positions()["SPY"]


def test_the_plan_keeps_only_children_that_can_only_close() -> None:
    def o(ref: str, side: str = "SELL", qty: float = 10, sym: str = "SPY", **kw: object) -> OrderState:
        return OrderState(ref, sym, side, qty, "STP", "working", remaining=qty, **kw)  # type: ignore[arg-type]

    e = "ql:s:SPY:1"
    orders = [
        o(f"{e}:sl"),
        o(f"{e}:tr~2"),
        o(f"{e}:tp", qty=12),  # larger than the position: would open a short
        o(f"{e}:sl~1", side="BUY"),  # wrong side
        o("ql:s:QQQ:1:sl", sym="QQQ"),  # flat symbol
        o("ql:other:SPY:9:sl"),  # not this ledger's entry
        o("ql:s:SPY:2", side="BUY"),
        dataclasses.replace(o("ql:s:SPY:3", side="BUY"), foreign=True, client_id=3),
        dataclasses.replace(o(f"{e}:tp~1"), foreign=True, client_id=3),  # another client's child: kept too
        dataclasses.replace(o("ql:b:SPY:7", side="BUY"), foreign=True, client_id=9),  # another ledger's: left alone
    ]
    p = plan_stop(orders, {"SPY": 10.0}, {e, "ql:s:QQQ:1", "ql:s:SPY:3"})
    assert [x.order_ref for x in p.keep] == [f"{e}:sl", f"{e}:tp~1", f"{e}:tr~2"]
    assert [x.order_ref for x in p.foreign] == ["ql:s:SPY:3"]
    assert sorted(x.order_ref for x in p.cancel) == sorted(
        [f"{e}:tp", f"{e}:sl~1", "ql:s:QQQ:1:sl", "ql:other:SPY:9:sl", "ql:s:SPY:2"]
    )


def test_a_stop_fill_the_broker_position_shows_late_is_not_sold_twice(rig: Rig) -> None:
    """IB reports the position after the execution: right after the cancel wait the broker may
    still show the shares the stop already sold. The flatten waits for the position to show the
    fills (the fill event is recorded first)."""
    e = rig.enter()
    real_cancel, real_positions = rig.broker.cancel_all, rig.broker.positions
    stale = {"reads": 0, "snapshot": None}

    def stop_fills_first() -> None:
        stale["snapshot"] = real_positions()
        rig.broker.fill_order(f"{e}:sl", qty=4, price=95.0)
        stale["reads"] = 3  # the next reads of the position still show 10
        real_cancel()

    def lagging() -> dict:
        if stale["reads"] > 0:
            stale["reads"] -= 1
            return stale["snapshot"]
        return real_positions()

    rig.broker.cancel_all = stop_fills_first  # type: ignore[method-assign]
    rig.broker.positions = lagging  # type: ignore[method-assign]
    result = stop(rig, flatten=True)
    rig.pump()
    [flat] = [o for o in result["orders"] if "order_ref" in o]
    assert flat["quantity"] == 6
    assert real_positions().get("SPY") is None and rig.ledger.expected_positions()["SPY"] == 0


def test_a_child_lost_while_the_kill_switch_is_latched_is_reattached(rig: Rig) -> None:
    """The kill switch blocks new risk, not protection: a stop the broker lost after a stop
    without flatten is re-attached at the next reconcile (it can only close the position)."""
    e = rig.enter()
    stop(rig, flatten=False)
    rig.pump()
    rig.broker.drop()
    rig.broker.forget(f"{e}:sl")  # a gateway restart dropped it
    rig.reconcile("reconnect")
    assert set(rig.open_at_broker()) == {f"{e}:tp", f"{e}:sl~1"}
    assert rig.ledger.order(f"{e}:sl~1")["aux_price"] == 95.0
    assert rig.ledger.risk_state().kill_switch and not rig.runner.ctx.state.unprotected


def test_a_gateway_that_does_not_answer_the_order_listing_still_gets_the_stop(rig: Rig) -> None:
    """A hung reqAllOpenOrders (IB request timeout) must not stop the kill switch: it plans from
    the orders it already knows (this client's are always current)."""
    e = rig.enter()
    lmt = resting_entry(rig)

    def hung() -> None:
        raise BrokerError("IB request timed out", found="reqAllOpenOrders")

    rig.broker.sync = hung  # type: ignore[method-assign]
    result = stop(rig, flatten=False)
    rig.pump()
    assert set(rig.open_at_broker()) == {f"{e}:sl", f"{e}:tp"} and rig.ledger.order(lmt)["status"] == "cancelled"
    assert [k["order_ref"] for k in result["kept"]] == [f"{e}:sl", f"{e}:tp"]


def test_a_role_the_broker_keeps_refusing_is_not_resent_in_a_loop_while_latched(rig: Rig) -> None:
    """Re-attaching while latched stops at a role the broker refused before (its second refusal
    is what latches the kill switch): no order every periodic check, the position stays reported."""
    e = rig.enter()
    stop(rig, flatten=False)
    rig.pump()
    rig.broker.script(f"{e}:sl~1", "reject", reason="stop price too far")
    rig.broker.script(f"{e}:sl~2", "reject", reason="stop price too far")
    rig.broker.drop()
    rig.broker.forget(f"{e}:sl")
    rig.reconcile("reconnect")
    for _ in range(3):
        rig.reconcile("periodic")
    assert [r for r in placed(rig) if r.startswith(f"{e}:sl~")] == [f"{e}:sl~1", f"{e}:sl~2"]  # one retry, as unlatched
    assert "refused" in rig.runner.ctx.state.unprotected["SPY"] and "twice" in rig.runner.ctx.state.unprotected["SPY"]
    assert set(rig.open_at_broker()) == {f"{e}:tp"} and rig.ledger.risk_state().kill_switch
