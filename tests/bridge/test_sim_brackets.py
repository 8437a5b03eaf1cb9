"""The sim broker holds brackets (issue 12 item 5): children live from the parent's fill, trigger
on completed bars by research's rules, one OCA group, modify after the fill, cancel with the parent."""

from __future__ import annotations

import pandas as pd
import pytest

from bridge.brokers.protocol import Bar, OrderRequest
from bridge.brokers.sim import SimBroker
from bridge.clock import ManualClock
from bridge.errors import BrokerError
from bridge.protection import child_request, children
from quantlab.engine.settings import Costs, SimConfig, Sizing

T0 = pd.Timestamp("2024-01-02", tz="UTC")
RULES = {"sl_stop": 0.05, "tp_stop": 0.10}


def day(i: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=i)


def broker() -> SimBroker:
    b = SimBroker(
        SimConfig(100_000.0, Costs(slippage_bps=0.0), Sizing("fraction", 0.1)),
        ManualClock("2024-01-02 15:00"),
        cash=100_000.0,
        symbols=["SPY"],
    )
    b.load_history(
        "SPY",
        pd.DataFrame(
            {"open": [100.0], "high": [100.0], "low": [100.0], "close": [100.0], "volume": [0.0]},
            index=pd.DatetimeIndex([T0 - pd.Timedelta(days=1)]),
        ),
    )
    b.connect()
    b.push_bar("SPY", Bar(day(0), 100.0, 100.0, 100.0, 100.0, 0.0))  # the fill bar opens at 100
    return b


def parent_row(ref: str = "ql:e", qty: float = 10) -> dict[str, object]:
    return {"order_ref": ref, "symbol": "SPY", "side": "BUY", "quantity": qty, "tif": "GTC"}


def send_bracket(
    b: SimBroker, rules: dict[str, float] = RULES, entry: float = 100.0, order: OrderRequest | None = None
) -> list[dict]:
    parent = order or OrderRequest("ql:e", "SPY", "BUY", 10)
    b.place(parent)
    rows = children(parent_row(parent.order_ref, parent.quantity), rules, entry)
    for row in rows:
        b.place(child_request(row))
    return rows


def test_a_stop_fills_at_its_level_and_cancels_its_sibling() -> None:
    b = broker()
    send_bracket(b)
    assert b.positions()["SPY"].quantity == 10
    b.push_bar("SPY", Bar(day(0), 100.0, 103.0, 94.0, 96.0, 0.0))  # the fill bar itself touches the stop
    b.push_bar("SPY", Bar(day(1), 96.0, 96.0, 96.0, 96.0, 0.0))  # completes it
    fills = [(f.order_ref, f.price, f.quantity) for f in b.executions()]
    assert fills == [("ql:e", 100.0, 10), ("ql:e:sl", 95.0, 10)]
    assert "SPY" not in b.positions()
    assert {o.order_ref: o.status for o in b.completed_orders()}["ql:e:tp"] == "cancelled"


def test_a_two_sided_bar_is_a_stop_and_a_gap_fills_at_the_open() -> None:
    b = broker()
    send_bracket(b)
    b.push_bar("SPY", Bar(day(1), 100.0, 100.0, 100.0, 100.0, 0.0))
    b.push_bar("SPY", Bar(day(1), 100.0, 112.0, 94.0, 100.0, 0.0))
    b.push_bar("SPY", Bar(day(2), 100.0, 100.0, 100.0, 100.0, 0.0))
    assert [f.order_ref for f in b.executions()][-1] == "ql:e:sl"
    b2 = broker()
    send_bracket(b2)
    b2.push_bar("SPY", Bar(day(1), 112.0, 113.0, 111.0, 112.0, 0.0))
    b2.push_bar("SPY", Bar(day(2), 112.0, 112.0, 112.0, 112.0, 0.0))
    assert [(f.order_ref, f.price) for f in b2.executions()][-1] == ("ql:e:tp", 112.0)


def test_a_trailing_stop_rests_at_its_level_until_the_bridge_moves_it() -> None:
    """The trailing role is a STP (TRAIL_MODEL): the sim broker leaves it where it was put, as IB does;
    the runner ratchets it (bridge/runtime/trailing.py)."""
    b = broker()
    send_bracket(b, {"sl_trail": 0.05})
    b.push_bar("SPY", Bar(day(1), 100.0, 120.0, 96.0, 118.0, 0.0))  # level 95 from the 100 fill: no fill
    b.push_bar("SPY", Bar(day(2), 118.0, 119.0, 113.0, 115.0, 0.0))  # no ratchet of its own: 95 holds
    assert [f.order_ref for f in b.executions()] == ["ql:e"]
    assert b.modify("ql:e:tr", level=114.0)  # what the runner does after day 1 (mark 120 x 0.95)
    assert next(o for o in b.open_orders() if o.order_ref == "ql:e:tr").aux_price == 114.0
    b.push_bar("SPY", Bar(day(3), 115.0, 115.0, 113.0, 115.0, 0.0))
    b.push_bar("SPY", Bar(day(4), 115.0, 115.0, 115.0, 115.0, 0.0))
    assert [(f.order_ref, round(f.price, 6)) for f in b.executions()] == [("ql:e", 100.0), ("ql:e:tr", 114.0)]


def test_children_wait_for_the_parent_and_die_with_it() -> None:
    b = broker()
    send_bracket(b, entry=90.0, order=OrderRequest("ql:p", "SPY", "BUY", 10, "LMT", 90.0))
    b.push_bar(
        "SPY", Bar(day(1), 99.0, 100.0, 84.0, 99.0, 0.0)
    )  # touches the (inactive) 85.5 stop; the LMT does not fill
    b.push_bar("SPY", Bar(day(2), 99.0, 99.0, 99.0, 99.0, 0.0))
    assert b.executions() == []
    assert b.cancel("ql:p")
    assert {o.order_ref: o.status for o in b.completed_orders()} == {
        "ql:p": "cancelled",
        "ql:p:sl": "cancelled",
        "ql:p:tp": "cancelled",
    }


def test_children_are_modified_to_levels_from_the_actual_fill() -> None:
    b = broker()
    send_bracket(b, entry=98.0)  # placed from an estimate; the parent filled at 100
    new = {r["role"]: r for r in children(parent_row(), RULES, b.executions()[0].price)}
    assert b.modify("ql:e:sl", level=new["stop"]["aux_price"]) and b.modify(
        "ql:e:tp", level=new["take_profit"]["limit_price"]
    )
    b.push_bar("SPY", Bar(day(1), 100.0, 100.0, 93.0, 95.0, 0.0))
    b.push_bar("SPY", Bar(day(2), 95.0, 95.0, 95.0, 95.0, 0.0))
    assert (b.executions()[-1].order_ref, b.executions()[-1].price) == ("ql:e:sl", 95.0)  # not 93.10 (98 x 0.95)


def test_a_child_whose_ref_is_not_its_parents_is_refused() -> None:
    b = broker()
    b.place(OrderRequest("ql:e", "SPY", "BUY", 10))
    with pytest.raises(BrokerError, match="<parent>:sl"):
        b.place(OrderRequest("ql:x:sl", "SPY", "SELL", 10, "STP", aux_price=95.0, parent_ref="ql:e"))
