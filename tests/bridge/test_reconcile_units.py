"""Pure pieces: reconciliation, orderRefs and sizing, bar windows and the exchange calendar."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bridge.brokers.protocol import Bar, Fill, OrderState, Position
from bridge.errors import StaleData
from bridge.feed import BarWindow
from bridge.live_signal import latest_target
from bridge.market import MarketCalendar
from bridge.orders import equity_at, limit_price, order_ref, size, strategy_key
from bridge.reconcile import reconcile
from quantlab.engine.intervals import get_interval
from quantlab.engine.registry import get_strategy
from quantlab.engine.settings import SimConfig, Sizing
from quantlab.engine.signals import evaluate_arrays, price_arrays

CAL = MarketCalendar()
DAY, MIN = get_interval("1d"), get_interval("1m")
T = pd.Timestamp("2024-01-05", tz="UTC")


def row(ref: str, status: str = "sent", qty: float = 10.0, filled: float = 0.0) -> dict[str, object]:
    return {"order_ref": ref, "status": status, "quantity": qty, "filled": filled, "symbol": "SPY"}


def state(ref: str, status: str, filled: float = 0.0, qty: float = 10.0) -> OrderState:
    return OrderState(ref, "SPY", "BUY", qty, "MKT", status, filled, qty - filled, 470.0 if filled else 0.0, perm_id=7)  # type: ignore[arg-type]


def fill(ref: str, exec_id: str, qty: float = 10.0) -> Fill:
    return Fill(exec_id, ref, "SPY", "BUY", qty, 470.0, T, 1.0)


def test_reconcile_adopts_broker_state_recovers_fills_and_voids_unsent_intents() -> None:
    res = reconcile(
        ledger_open=[row("ql:filled", "intent"), row("ql:working"), row("ql:never", "intent"), row("ql:gone")],
        ledger_refs={"ql:filled", "ql:working", "ql:never", "ql:gone"},
        ledger_fill_ids=set(),
        expected_positions={"SPY": 0.0},
        broker_open=[state("ql:working", "working", 4.0)],
        broker_done=[state("ql:filled", "filled", 10.0)],
        broker_fills=[fill("ql:filled", "e1"), fill("ql:working", "e2", 4.0), fill("ql:gone", "e3")],
        broker_positions={"SPY": Position("SPY", 24.0, 470.0)},
        symbols=["SPY"],
    )
    assert res.ok, res.mismatches
    assert {(u.order_ref, u.status, u.filled) for u in res.updates} == {
        ("ql:filled", "filled", 10.0),
        ("ql:working", "partially_filled", 4.0),
        ("ql:gone", "filled", 10.0),
    }
    assert [f.exec_id for f in res.new_fills] == ["e1", "e2", "e3"]
    assert res.voided == ["ql:never"]


def test_reconcile_reports_unknown_orders_and_position_mismatches() -> None:
    res = reconcile(
        ledger_open=[],
        ledger_refs=set(),
        ledger_fill_ids={"e0"},
        expected_positions={"SPY": 10.0},
        broker_open=[state("ql:stranger", "working"), state("manual-order", "working")],
        broker_done=[],
        broker_fills=[fill("ql:ghost", "e9", 5.0)],
        broker_positions={"SPY": Position("SPY", 12.0, 1.0), "QQQ": Position("QQQ", 3.0, 1.0)},
        symbols=["SPY", "QQQ"],
    )
    text = " | ".join(res.mismatches)
    assert "ql:stranger" in text and "manual-order" not in text  # foreign orders (no ql: prefix) are not ours
    # issue 9 fault 6: another ledger's execution is reported, never counted (was: "ledger expects 15")
    assert [f.exec_id for f in res.foreign_fills] == ["e9"] and res.new_fills == []
    assert (
        "position SPY: broker holds 12, ledger expects 10 (+5 of it from executions of orders this ledger does not know: ql:ghost"
        in text
    )
    assert "position QQQ" in text
    assert not res.ok


def test_reconcile_voids_only_orders_proven_absent() -> None:
    """Issue 9 fault 1: an order of another client id, or one found by permId only, is not voided."""
    theirs = OrderState("ql:theirs", "SPY", "BUY", 10.0, "MKT", "working", perm_id=11, foreign=True, client_id=7)
    done_no_ref = OrderState("", "SPY", "BUY", 10.0, "MKT", "filled", 10.0, 0.0, 470.0, perm_id=12)
    res = reconcile(
        ledger_open=[row("ql:theirs"), {**row("ql:perm-only"), "perm_id": 12}, row("ql:absent", "intent")],
        ledger_refs={"ql:theirs", "ql:perm-only", "ql:absent"},
        ledger_fill_ids=set(),
        expected_positions={"SPY": 0.0},
        broker_open=[theirs],
        broker_done=[done_no_ref],
        broker_fills=[],
        broker_positions={"SPY": Position("SPY", 10.0, 470.0)},
        symbols=["SPY"],
    )
    assert res.voided == ["ql:absent"]
    assert [o.order_ref for o in res.adopted] == ["ql:theirs"]
    assert {(u.order_ref, u.status) for u in res.updates} == {("ql:theirs", "working"), ("ql:perm-only", "filled")}
    assert "owned by client id 7" in next(u.note for u in res.updates if u.order_ref == "ql:theirs")


def test_reconcile_revives_a_void_order_the_broker_has() -> None:
    """Issue 9 fault 7: void is not terminal."""
    res = reconcile(
        ledger_open=[],
        ledger_refs={"ql:late", "ql:dead", "ql:never"},
        ledger_fill_ids=set(),
        expected_positions={"SPY": 0.0},
        broker_open=[],
        broker_done=[state("ql:late", "filled", 10.0), state("ql:dead", "cancelled")],
        broker_fills=[fill("ql:late", "e1")],
        broker_positions={"SPY": Position("SPY", 10.0, 470.0)},
        symbols=["SPY"],
        ledger_void=[row("ql:late", "void"), row("ql:dead", "void"), row("ql:never", "void")],
    )
    assert res.ok, res.mismatches
    assert res.revived == ["ql:late"] and res.voided == []
    assert [(u.order_ref, u.status, u.filled) for u in res.updates] == [("ql:late", "filled", 10.0)]
    assert [f.exec_id for f in res.new_fills] == ["e1"]


def test_order_refs_are_deterministic_and_distinct() -> None:
    key = strategy_key("sma_cross", {"fast": 20.0, "slow": 50.0})
    assert key == "sma_cross(fast=20,slow=50)"
    a = order_ref("sma_cross", key, "SPY", T)
    assert a == order_ref("sma_cross", key, "SPY", T) and a.startswith("ql:sma_cross:SPY:20240105T000000Z:")
    assert a != order_ref("sma_cross", key, "QQQ", T) and a != order_ref("sma_cross", key, "SPY", T, "flat")
    assert a != order_ref("sma_cross", "sma_cross(fast=10,slow=50)", "SPY", T)
    assert order_ref("sma_cross", key, "SPY", T, attempt=2) == a + "~2"
    assert len(a) < 64


def test_sizing_is_the_engine_kernel() -> None:
    cfg = SimConfig(100_000.0, sizing=Sizing("fraction", 0.1)).to_array()
    s = size(1.0, 100_000.0, 400.0, 0.0, 0.0, 100_000.0, 401.0, cfg)
    assert (s.desired, s.delta) == (25.0, 25.0)
    s = size(0.0, 100_000.0, 400.0, 0.0, 25.0, 90_000.0, 401.0, cfg)
    assert (s.desired, s.delta) == (0.0, -25.0)
    s = size(1.0, 100_000.0, 400.0, 0.0, 0.0, 2_000.0, 401.0, cfg)  # cash cut: what $2,000 affords at 401
    assert s.delta == 4.0
    assert equity_at(1_000.0, {"SPY": 10.0, "QQQ": 0.0}, {"SPY": 400.0}) == 5_000.0
    assert limit_price("BUY", 400.0, 5.0) == 400.2 and limit_price("SELL", 400.0, 5.0) == 399.8


def test_window_completes_bars_and_detects_gaps(spy_daily: pd.DataFrame) -> None:
    w = BarWindow("SPY", DAY, CAL, capacity=40)
    w.seed(spy_daily.iloc[:31], last_is_complete=False)
    assert len(w) == 30 and w.forming is not None and w.forming.time == spy_daily.index[30]
    nxt = spy_daily.iloc[30]
    assert w.add_complete(
        Bar(spy_daily.index[30], *(float(nxt[c]) for c in ("open", "high", "low", "close", "volume")))
    )
    assert w.forming is None and len(w) == 31 and w.gap_in_window() is None
    assert not w.add_complete(Bar(spy_daily.index[30], 1.0, 1.0, 1.0, 1.0, 0.0))  # a revision, not a new bar
    assert w.last_close == 1.0
    w.add_complete(Bar(spy_daily.index[32], 2.0, 2.0, 2.0, 2.0, 0.0))  # skips a session
    assert w.gap_in_window() == (spy_daily.index[30], spy_daily.index[32])
    with pytest.raises(StaleData, match="invalid bar"):
        w.add_complete(Bar(spy_daily.index[33], float("nan"), 1.0, 1.0, 1.0, 0.0))
    for i in range(33, 80):  # the gap leaves the trailing window
        r = spy_daily.iloc[i]
        w.add_complete(Bar(spy_daily.index[i], *(float(r[c]) for c in ("open", "high", "low", "close", "volume"))))
    assert w.gap_in_window() is None and len(w.window()) == 40


def test_window_target_equals_the_backtest_target_on_every_prefix(spy_daily: pd.DataFrame) -> None:
    """The causality the bridge relies on: the kernel on the bars so far = the full run's value."""
    spec = get_strategy("sma_cross")
    params = spec.resolve({"fast": 20, "slow": 50})
    full = evaluate_arrays(spec, price_arrays(spy_daily, "SPY"), params)
    w = BarWindow("SPY", DAY, CAL)
    w.seed(spy_daily.iloc[:50], last_is_complete=True)
    for i in range(50, 200):
        r = spy_daily.iloc[i]
        w.add_complete(Bar(spy_daily.index[i], *(float(r[c]) for c in ("open", "high", "low", "close", "volume"))))
        got = latest_target(spec, params, w.window()).target
        assert got == full[i] or (math.isnan(got) and math.isnan(full[i]))
    with pytest.raises(StaleData, match="needs 50"):
        latest_target(spec, params, price_arrays(spy_daily.iloc[:10], "SPY"))


def test_calendar_due_times_and_hours() -> None:
    fri = pd.Timestamp("2024-01-05", tz="UTC")
    assert CAL.due(fri, DAY) == pd.Timestamp("2024-01-08 14:30", tz="UTC")  # Monday's open (EST)
    assert CAL.due(pd.Timestamp("2024-01-05 15:00", tz="UTC"), MIN) == pd.Timestamp("2024-01-05 15:01", tz="UTC")
    assert CAL.due(pd.Timestamp("2024-01-05 20:59", tz="UTC"), MIN) == pd.Timestamp("2024-01-08 14:30", tz="UTC")
    assert CAL.due(pd.Timestamp("2024-07-03 16:59", tz="UTC"), MIN) == pd.Timestamp(
        "2024-07-05 13:30", tz="UTC"
    )  # half day
    assert CAL.is_open(pd.Timestamp("2024-01-05 15:00", tz="UTC")) and not CAL.is_open(
        pd.Timestamp("2024-01-06 15:00", tz="UTC")
    )
    assert not CAL.is_open(pd.Timestamp("2035-01-01", tz="UTC"))  # beyond the calendar: closed, never an error
    idx = pd.DatetimeIndex(["2024-01-04", "2024-01-05", "2024-01-09"], tz="UTC")
    assert CAL.missing(idx, DAY) == [(idx[1], idx[2])]
    assert CAL.session_close_of(pd.Timestamp("2024-07-03 15:00", tz="UTC")) == pd.Timestamp(
        "2024-07-03 17:00", tz="UTC"
    )
    assert np.isfinite(CAL.due(fri, DAY).value)


def test_unknown_open_order_halts_only_in_a_managed_symbol() -> None:
    """Now that every client's orders are visible, another bridge's orders in other symbols are
    reported (not a mismatch); in this ledger's symbols they are a mismatch."""
    other = OrderState("ql:other", "QQQ", "BUY", 5.0, "MKT", "working", perm_id=3, foreign=True, client_id=9)
    mine = OrderState("ql:clash", "SPY", "BUY", 5.0, "MKT", "working", perm_id=4, foreign=True, client_id=9)
    res = reconcile(
        ledger_open=[],
        ledger_refs=set(),
        ledger_fill_ids=set(),
        expected_positions={"SPY": 0.0},
        broker_open=[other, mine],
        broker_done=[],
        broker_fills=[],
        broker_positions={},
        symbols=["SPY"],
    )
    assert [o.order_ref for o in res.foreign_open] == ["ql:other"]
    assert len(res.mismatches) == 1 and "ql:clash" in res.mismatches[0]


def test_an_unknown_child_of_a_known_entry_is_not_a_mismatch_but_an_unknown_entrys_is() -> None:
    """The protect plan adopts ``<entry>:sl`` the ledger lost (issue 12); a child of an entry
    this ledger never had is another ledger's order like any other."""
    ours = OrderState("ql:e:sl", "SPY", "SELL", 10.0, "STP", "working", perm_id=5)
    theirs = OrderState("ql:x:sl", "SPY", "SELL", 10.0, "STP", "working", perm_id=6)
    res = reconcile(
        ledger_open=[],
        ledger_refs={"ql:e"},
        ledger_fill_ids=set(),
        expected_positions={"SPY": 0.0},
        broker_open=[ours, theirs],
        broker_done=[],
        broker_fills=[],
        broker_positions={},
        symbols=["SPY"],
    )
    assert len(res.mismatches) == 1 and "ql:x:sl" in res.mismatches[0]
