"""Paper runs with exit rules against the fake gateway (issue 12 item 5, the IB side): the entry
goes out as a bracket, its children move to levels from the fill, the protection keeps working
while the bridge is away, the reconnect adopts what happened without re-sending anything, and a
strategy exit cancels the children first."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.fakegw import FakeGateway, FillPolicy

from ._harness import BridgeHarness, daily

ROOT = Path(__file__).resolve().parents[2]

H = Callable[..., BridgeHarness]


def cents(price: float, *, down: bool) -> float:
    return (math.floor(price * 100 + 1e-9) if down else math.ceil(price * 100 - 1e-9)) / 100


def ledger(h: BridgeHarness) -> dict[str, dict[str, Any]]:
    return {o["order_ref"]: o for o in h.orders()}


def entries(h: BridgeHarness) -> list[dict[str, Any]]:
    return [o for o in h.orders() if o["role"] is None]


def kids(h: BridgeHarness, parent: str) -> dict[str, dict[str, Any]]:
    return {o["role"]: o for o in h.ledger.children(parent)}


def calm(h: BridgeHarness) -> bool:
    """No strategy order open and every fill recorded (the children stay open: they protect)."""
    unrecorded = h.ledger.rows(
        "SELECT 1 FROM orders o WHERE o.filled - COALESCE((SELECT SUM(f.quantity) FROM fills f"
        " WHERE f.order_ref = o.order_ref), 0) > 1e-9"
    )
    return not [o for o in h.ledger.open_orders() if o["role"] is None] and not unrecorded


def advance(h: BridgeHarness, i: int) -> None:
    h.open_bar(i)
    assert h.until(lambda: h.decided(i - 1) and calm(h)), f"no decision on bar {i - 1}"
    h.close_bar(i)


def test_paper_entry_is_a_bracket_relevelled_from_the_fill_and_survives_the_bridge_being_away(
    harness: H, gw: FakeGateway
) -> None:
    h = harness(seed=60, strategy={"params": "fast=20,slow=50,sl_stop=0.05,tp_stop=0.1"})
    h.start()
    assert h.until(lambda: bool(entries(h)) and entries(h)[0]["status"] == "filled" and calm(h))
    [entry] = entries(h)
    ref = entry["order_ref"]
    fill = float(entry["avg_fill_price"])
    assert fill == float(h.frame["open"].iloc[60])
    stop, target = cents(fill * 0.95, down=True), cents(fill * 1.10, down=False)
    assert h.until(
        lambda: kids(h, ref)["stop"]["aux_price"] == stop and kids(h, ref)["take_profit"]["limit_price"] == target
    )
    sl, tp = kids(h, ref)["stop"], kids(h, ref)["take_profit"]
    assert (sl["order_ref"], tp["order_ref"]) == (f"{ref}:sl", f"{ref}:tp")
    assert sl["status"] == tp["status"] == "working"
    # IB's bracket: the parent held (transmit False), children on its id, the last one transmits
    placed = [r for r in gw.orders_received() if not r.is_modify]
    assert [(r.order_ref, r.transmit) for r in placed] == [
        (ref, False),
        (sl["order_ref"], False),
        (tp["order_ref"], True),
    ]
    assert [r.parent_id for r in placed] == [0, placed[0].order_id, placed[0].order_id]
    # levels measured from the expected fill, the open the entry trades at (not the decision close:
    # GAP_AT_ENTRY in test_gateway_parity.py); the fill is that open here, so relevel moved nothing
    assert placed[1].aux_price == stop != cents(float(h.frame["close"].iloc[59]) * 0.95, down=True)
    assert not [r for r in gw.orders_received() if r.is_modify]
    views = {v.order_ref: v for v in gw.orders()}
    assert (views[sl["order_ref"]].aux_price, views[tp["order_ref"]].lmt_price) == (stop, target)
    assert views[sl["order_ref"]].oca_group == views[tp["order_ref"]].oca_group == f"{ref}:oca"
    qty = gw.position("SPY")[0]
    assert qty == entry["quantity"] > 0

    # the bridge goes away and cannot come back; the price falls through the stop meanwhile
    gw.pause_accepting()
    gw.drop_connections()
    assert h.until(lambda: h.runner.state == "disconnected", timeout=3)
    o = float(h.frame["open"].iloc[60])
    gw.push_bar(
        "SPY",
        {"time": h.frame.index[60].tz_localize(None), "open": o, "high": o, "low": stop - 2.0, "close": stop - 1.0},
    )
    assert gw.position("SPY")[0] == 0.0  # the gateway filled the stop: protection held at the broker
    assert [v.status for v in gw.orders(sl["order_ref"])] == ["Filled"]
    assert [v.status for v in gw.orders(tp["order_ref"])] == ["Cancelled"]
    assert gw.executions(sl["order_ref"])[0].price == stop

    gw.resume_accepting()
    assert h.until(lambda: h.runner.state == "ready" and ledger(h)[sl["order_ref"]]["status"] == "filled", timeout=8)
    assert h.until(lambda: ledger(h)[tp["order_ref"]]["status"] == "cancelled")
    fills = {f["order_ref"]: f for f in h.ledger.fills()}
    assert fills[sl["order_ref"]]["price"] == stop and fills[sl["order_ref"]]["quantity"] == qty
    assert h.ledger.expected_positions().get("SPY", 0.0) == 0.0 == gw.position("SPY")[0]  # ledger == broker
    assert h.ledger.risk_state().halted is False
    assert "mismatch" not in [e["kind"] for e in h.ledger.risk_events()]
    # the target is unchanged (1): no second entry and no second child, ever
    for i in range(61, 64):
        advance(h, i)
    assert [r.order_ref for r in gw.orders_received() if not r.is_modify] == [ref, sl["order_ref"], tp["order_ref"]]


def test_a_strategy_exit_cancels_the_children_at_ib_before_it_is_sent(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=180, strategy={"params": "fast=20,slow=50,sl_stop=0.2,tp_stop=0.3"})
    h.start()
    assert h.until(lambda: bool(entries(h)) and entries(h)[0]["status"] == "filled" and calm(h))
    ref = entries(h)[0]["order_ref"]
    for i in range(181, 189):
        advance(h, i)
    buy, sell = entries(h)
    assert (buy["side"], sell["side"], sell["status"]) == ("BUY", "SELL", "filled")
    assert not h.ledger.children(sell["order_ref"])  # an exit carries no children
    assert {k["status"] for k in h.ledger.children(ref)} == {"cancelled"}
    assert {v.status for v in gw.orders() if v.order_ref.startswith(f"{ref}:")} == {"Cancelled"}
    assert gw.position("SPY")[0] == 0.0
    sell_sent = gw.orders_received(sell["order_ref"])[0].at
    cancels = [m.at for m in gw.received(msg_id=4)]  # cancelOrder
    assert len(cancels) == 2 and max(cancels) < sell_sent  # the children were cancelled first
    assert pd.Timestamp(sell["bar_time"]) == h.frame.index[187]


def wall_until(predicate: Callable[[], object], timeout: float = 3.0) -> bool:
    """Wait for the fake gateway's thread (no client loop to run)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class Crash(BaseException):
    """The process dying between two placeOrder writes (nothing in the bridge catches it)."""


def break_after(h: BridgeHarness, writes: int, then: Callable[[], None]) -> list[str]:
    """Make ``then`` happen right after the ``writes``-th placeOrder of the runner's client (once)."""
    real = h.broker.ib.placeOrder
    calls: list[str] = []

    def place(contract: object, order: Any) -> object:
        trade = real(contract, order)
        calls.append(order.orderRef)
        if len(calls) == writes:
            then()
        return trade

    h.broker.ib.placeOrder = place  # type: ignore[method-assign]
    return calls


def test_a_gateway_restart_mid_bracket_voids_the_held_bracket_and_the_bar_is_decided_again(
    harness: H, gw: FakeGateway
) -> None:
    h = harness(seed=60, strategy={"params": "fast=20,slow=50,sl_stop=0.05,tp_stop=0.1"})
    calls = break_after(h, 2, lambda: gw.restart())  # after the held parent and its stop
    h.start()
    assert h.until(lambda: len(entries(h)) == 2 and entries(h)[1]["status"] == "filled" and calm(h), timeout=10)
    first, second = entries(h)
    lost = [first["order_ref"], f"{first['order_ref']}:sl", f"{first['order_ref']}:tp"]
    assert calls[:2] == lost[:2]  # the transmitting child was never written
    assert [ledger(h)[r]["status"] for r in lost] == ["void"] * 3  # children included
    assert first["bar_time"] == second["bar_time"]  # the void rolled the target back: bar 59 decided again
    assert {k["status"] for k in h.ledger.children(second["order_ref"])} == {"working"}
    # the gateway never had the first bracket; the second one went out whole, once
    assert [v.order_ref for v in gw.orders()] == [
        second["order_ref"],
        *(f"{second['order_ref']}:{s}" for s in ("sl", "tp")),
    ]
    assert [e.order_ref for e in gw.executions()] == [second["order_ref"]]
    assert gw.position("SPY")[0] == second["quantity"] == h.ledger.expected_positions()["SPY"]
    assert h.ledger.risk_state().halted is False


def test_a_crash_mid_bracket_leaves_nothing_transmitted_and_the_restart_sends_one_bracket(
    harness: H, gw: FakeGateway
) -> None:
    """The process dies after the held parent and its stop were written: the gateway holds them,
    never routes them and lists them to nobody; the restart voids the ledger's bracket (the
    broker never saw it) and decides the bar again."""
    h = harness(seed=60, strategy={"params": "fast=20,slow=50,sl_stop=0.05,tp_stop=0.1"})

    def die() -> None:
        raise Crash

    break_after(h, 2, die)
    try:
        h.start()
    except Crash:
        pass
    lost = [o["order_ref"] for o in h.orders()]
    assert [o["status"] for o in h.orders()] == ["intent"] * 3 and len(lost) == 3
    h.broker.ib.disconnect()  # the dead process's socket closes (after what it wrote)
    assert wall_until(lambda: len(gw.orders()) == 2)
    assert [v.status for v in gw.orders()] == ["PendingSubmit"] * 2  # held at the gateway, not routed
    assert h.runner.lease is not None
    h.runner.lease.release()
    # a dead pid ends its run for the next start (runner_alive); this process lives on, so say it
    h.ledger.end_run(h.runner.ctx.run_id, h.clock.now(), "crashed")
    h.ledger.close()

    h2 = BridgeHarness(gw, h.frame, h.ledger.path, 60, cfg=h.cfg, reseed=False)
    h2.clock.set(h.clock.now())
    h2.runner.start()
    assert h2.until(lambda: len(entries(h2)) == 2 and entries(h2)[1]["status"] == "filled" and calm(h2), timeout=10)
    second = entries(h2)[1]
    assert [ledger(h2)[r]["status"] for r in lost] == ["void"] * 3
    assert {k["status"] for k in h2.ledger.children(second["order_ref"])} == {"working"}
    assert [e.order_ref for e in gw.executions()] == [second["order_ref"]]  # one entry, ever
    held = [v for v in gw.orders() if v.order_ref in lost]
    assert [v.status for v in held] == ["PendingSubmit"] * 2  # the orphans never transmit
    assert gw.position("SPY")[0] == second["quantity"] == h2.ledger.expected_positions()["SPY"]
    h2.close()


def test_a_stop_rejected_twice_flattens_the_unprotected_entry_and_latches_the_kill_switch(
    harness: H, gw: FakeGateway
) -> None:
    """IB refuses the stop (201) but the take-profit still releases the chain: the entry fills
    with no stop under it. The first rejection marks SPY unprotected and the next reconcile
    re-attaches the stop; IB refuses that one too, so the bridge flattens rather than halts: a
    halt would leave the position open without its stop for as long as nobody looks."""
    gw.script(FillPolicy.reject("stop price is not valid"), order_type="STP", once=False)
    h = harness(seed=60, strategy={"params": "fast=20,slow=50,sl_stop=0.05,tp_stop=0.1"})
    h.start()
    assert h.until(lambda: h.ledger.risk_state().kill_switch and calm(h) and gw.position("SPY")[0] == 0.0, timeout=15)
    entry, flat = entries(h)
    children = h.ledger.children(entry["order_ref"])
    stops = [c for c in children if c["role"] == "stop"]
    [tp] = [c for c in children if c["role"] == "take_profit"]
    assert [(c["order_ref"], c["status"]) for c in stops] == [
        (entry["order_ref"] + ":sl", "rejected"),
        (entry["order_ref"] + ":sl~1", "rejected"),
    ]
    assert (entry["status"], flat["purpose"], flat["status"]) == ("filled", "flatten", "filled")
    [first] = [a for a in h.notifier.sent if a["kind"] == "protection_failed"][:1]
    assert first["level"] == "critical" and "SPY" in first["message"]
    assert h.until(lambda: ledger(h)[tp["order_ref"]]["status"] == "cancelled")
    assert flat["quantity"] == entry["quantity"] and flat["side"] == "SELL"
    rs = h.ledger.risk_state()
    assert "stop" in rs.reason and stops[1]["order_ref"] in rs.reason and "stop price is not valid" in rs.reason
    [alert] = [a for a in h.notifier.sent if a["kind"] == "protection_rejected"]
    assert alert["level"] == "critical" and stops[1]["order_ref"] in alert["message"]
    assert h.ledger.expected_positions().get("SPY", 0.0) == 0.0  # ledger == broker


def test_a_stop_rejected_once_is_re_attached_when_the_entry_fills(harness: H, gw: FakeGateway) -> None:
    """A one-off refusal (the broker takes the next one): the entry fills unprotected, the stop is
    re-attached at once under ``:sl~1`` (not a reconcile later), no kill switch, entries allowed again."""
    gw.script(FillPolicy.reject("stop price is not valid"), order_type="STP")
    h = harness(seed=60, strategy={"params": "fast=20,slow=50,sl_stop=0.05,tp_stop=0.1"})
    h.start()
    assert h.until(lambda: bool(entries(h)) and calm(h) and gw.position("SPY")[0] > 0, timeout=10)
    ref = entries(h)[0]["order_ref"]
    assert h.until(lambda: ledger(h).get(f"{ref}:sl~1", {}).get("status") in ("sent", "working"), timeout=10)
    assert ledger(h)[f"{ref}:sl"]["status"] == "rejected"
    held = [o for o in gw.orders() if o.order_ref == f"{ref}:sl~1"]
    assert held and held[0].order_type == "STP"
    assert not h.ledger.risk_state().kill_switch and not h.runner.ctx.state.unprotected
    assert [a["kind"] for a in h.notifier.sent if a["kind"].startswith("protection")] == [
        "protection_failed",
        "protection_restored",
    ]


def test_children_refused_with_their_rejected_parent_change_nothing(harness: H, gw: FakeGateway) -> None:
    """An entry the broker rejects takes its children with it (201, parent cancelled): no position,
    nothing to protect, so no kill switch; the target is rolled back as for any rejection."""
    gw.script(FillPolicy.reject("no trading permissions"), order_type="MKT")
    h = harness(seed=60, strategy={"params": "fast=20,slow=50,sl_stop=0.05,tp_stop=0.1"})
    h.start()
    assert h.until(lambda: bool(entries(h)) and entries(h)[0]["status"] == "rejected" and calm(h), timeout=5)
    ref = entries(h)[0]["order_ref"]
    assert h.until(lambda: {k["status"] for k in h.ledger.children(ref)} <= {"rejected", "cancelled", "void"})
    assert not h.ledger.risk_state().kill_switch and gw.position("SPY")[0] == 0.0
    assert not [a for a in h.notifier.sent if a["kind"] == "protection_rejected"]


def test_sigkill_after_the_bracket_the_gateway_stops_the_position_out_and_the_restart_adopts_it(
    gw: FakeGateway, spy_daily: pd.DataFrame, tmp_path: Path
) -> None:
    """The issue's headline on real processes: the bridge dies (SIGKILL) right after placing the
    bracket, before the ledger records it sent; the price then gaps through the stop and the
    gateway fills it with nobody connected; the restarted bridge recovers the entry, the stop's
    fill and the target's cancel from the broker and sends nothing (ledger == broker, flat)."""
    from .test_processes import bridge, env, read, toml, wait_for

    ledger_path = tmp_path / "crash.sqlite"
    gw.seed_bars("SPY", daily(spy_daily.iloc[:60]))
    cfg = toml(tmp_path, gw, ledger_path)
    cfg.write_text(
        cfg.read_text().replace('params = "fast=20,slow=50"', 'params = "fast=20,slow=50,sl_stop=0.05,tp_stop=0.1"')
    )
    crashed = bridge("run", "--paper", "--config", str(cfg), BRIDGE_TEST_CRASH_AFTER_PLACE="1")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    rows = read(ledger_path, "SELECT order_ref, status, role, aux_price FROM orders ORDER BY rowid")
    assert [r["status"] for r in rows] == ["intent"] * 3 and [r["role"] for r in rows] == [None, "stop", "take_profit"]
    entry, sl, tp = (r["order_ref"] for r in rows)
    assert [v.status for v in gw.orders()] == ["Filled", "PreSubmitted", "Submitted"]  # protected at the broker
    qty = gw.position("SPY")[0]
    stop = float(rows[1]["aux_price"])
    assert qty > 0 and gw.orders(sl)[0].aux_price == stop

    gap = round(stop * 0.97, 2)  # nobody is connected: the open gaps through the stop
    gw.push_bar(
        "SPY", {"time": spy_daily.index[60].tz_localize(None), "open": gap, "high": gap, "low": gap - 1, "close": gap}
    )
    assert gw.position("SPY")[0] == 0.0 and gw.executions(sl)[0].price == gap
    assert [v.status for v in gw.orders(tp)] == ["Cancelled"]

    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "run", "--paper", "--config", str(cfg)],
        env=env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(
            lambda: (
                [r["status"] for r in read(ledger_path, "SELECT status FROM orders ORDER BY rowid")]
                == ["filled", "filled", "cancelled"]
                and read(ledger_path, "SELECT state FROM runs ORDER BY started_at DESC LIMIT 1")[0]["state"] == "ready"
            )
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert [r.order_ref for r in gw.orders_received()] == [entry, sl, tp]  # no second entry, no second child
    fills = {f["order_ref"]: f for f in read(ledger_path, "SELECT * FROM fills")}
    assert set(fills) == {entry, sl} and fills[sl]["price"] == gap and fills[sl]["quantity"] == qty
    assert {f["source"] for f in fills.values()} == {"reconcile"}
    assert read(ledger_path, "SELECT halted, kill_switch FROM risk_state")[0] == {"halted": 0, "kill_switch": 0}
    assert gw.position("SPY")[0] == 0.0


def test_children_of_an_entry_that_filled_while_the_bridge_was_dead_are_relevelled_at_the_restart(
    harness: H, gw: FakeGateway
) -> None:
    """The process dies after the whole bracket went out, before it recorded anything: the entry
    fills (here 0.75 above the open the children were measured from) with the children at levels
    from that expected fill. The restart recovers the fill and moves the children to levels from
    it (research's rule), once."""
    h = harness(seed=60, strategy={"params": "fast=20,slow=50,sl_stop=0.05,tp_stop=0.1"})
    gw.script(FillPolicy.auto(price=float(h.frame["open"].iloc[60]) + 0.75), symbol="SPY", action="BUY", once=True)

    def die() -> None:
        raise Crash

    break_after(h, 3, die)
    try:
        h.start()
    except Crash:
        pass
    refs = [o["order_ref"] for o in h.orders()]
    assert [o["status"] for o in h.orders()] == ["intent"] * 3
    h.broker.ib.disconnect()
    assert h.runner.lease is not None
    h.runner.lease.release()
    h.ledger.end_run(h.runner.ctx.run_id, h.clock.now(), "crashed")
    h.ledger.close()
    assert wall_until(lambda: len(gw.orders()) == 3 and gw.orders(refs[0])[0].status == "Filled")
    fill = gw.orders(refs[0])[0].avg_fill_price
    stop, target = cents(fill * 0.95, down=True), cents(fill * 1.10, down=False)
    assert gw.orders(refs[1])[0].aux_price != stop  # placed from the expected fill (the open)

    h2 = BridgeHarness(gw, h.frame, h.ledger.path, 60, cfg=h.cfg, reseed=False)
    h2.clock.set(h.clock.now())
    h2.runner.start()
    assert h2.until(lambda: gw.orders(refs[1])[0].aux_price == stop and gw.orders(refs[2])[0].lmt_price == target)
    assert h2.until(lambda: (ledger(h2)[refs[1]]["aux_price"], ledger(h2)[refs[2]]["limit_price"]) == (stop, target))
    for i in range(61, 63):
        advance(h2, i)
    assert [r.is_modify for r in gw.orders_received(refs[1])] == [False, True]  # relevelled once
    assert [o["status"] for o in h2.orders()] == ["filled", "working", "working"]
    h2.close()


def test_a_reconcile_never_times_out_a_take_profit_as_if_it_were_a_limit_entry(harness: H, gw: FakeGateway) -> None:
    """Bug: every reconcile re-armed the limit-order timeout for all open LMT orders of the ledger,
    take-profit children included, so limit_timeout later cancelled the target (and with
    on_timeout = "market" sold the position at the market)."""
    h = harness(
        seed=60,
        strategy={"params": "fast=20,slow=50,sl_stop=0.05,tp_stop=0.1"},
        orders={"limit_timeout": 30.0, "on_timeout": "market"},
    )
    h.start()
    assert h.until(lambda: bool(entries(h)) and entries(h)[0]["status"] == "filled" and calm(h))
    ref = entries(h)[0]["order_ref"]
    assert h.until(lambda: {k["status"] for k in h.ledger.children(ref)} == {"working"})
    gw.connectivity_lost()
    assert h.until(lambda: h.runner.state == "lost")
    gw.connectivity_restored(data_lost=False)  # 1102: the runner reconciles
    assert h.until(lambda: h.runner.state == "ready")
    h.clock.set(h.clock.now() + pd.Timedelta(seconds=120))  # well past limit_timeout
    h.until(lambda: False, timeout=0.5)
    assert {k["status"] for k in h.ledger.children(ref)} == {"working"}
    assert [v.status for v in gw.orders(f"{ref}:tp")] == ["Submitted"]
    assert len(entries(h)) == 1 and gw.position("SPY")[0] == entries(h)[0]["quantity"]


def test_an_entry_approved_after_a_hold_goes_out_as_a_bracket(harness: H, gw: FakeGateway) -> None:
    """Bug once exit rules ran on paper: an entry held for approval (risk.approval_threshold) was
    sent alone when approved, so the position had no protective order at the broker."""
    h = harness(
        seed=60,
        strategy={"params": "fast=20,slow=50,sl_stop=0.05,tp_stop=0.1"},
        risk={"approval_threshold": 5_000.0, "market_hours": False},
    )
    h.start()
    assert h.until(lambda: bool(entries(h)) and entries(h)[0]["status"] == "needs_approval")
    ref = entries(h)[0]["order_ref"]
    assert not h.ledger.children(ref) and gw.orders_received() == []
    h.ledger.request_control("approve", {"order_ref": ref, "by": "test"}, h.clock.now(), "test")
    assert h.until(lambda: ledger(h)[ref]["status"] == "filled", timeout=8)
    assert len(h.ledger.children(ref)) == 2
    assert h.until(lambda: {k["status"] for k in h.ledger.children(ref)} == {"working"})
    placed = [r for r in gw.orders_received() if not r.is_modify]
    assert [(r.order_ref, r.transmit) for r in placed] == [(ref, False), (f"{ref}:sl", False), (f"{ref}:tp", True)]
    assert [v.status for v in gw.orders(f"{ref}:sl")] == ["PreSubmitted"]
    fill = float(ledger(h)[ref]["avg_fill_price"])
    assert h.until(lambda: kids(h, ref)["stop"]["aux_price"] == cents(fill * 0.95, down=True))


def test_an_approval_under_require_stop_is_checked_with_the_stop_the_bracket_will_carry(
    harness: H, gw: FakeGateway
) -> None:
    h = harness(
        seed=60,
        strategy={"params": "fast=20,slow=50,sl_stop=0.05"},
        risk={"approval_threshold": 5_000.0, "market_hours": False, "require_stop": True},
    )
    h.start()
    assert h.until(lambda: bool(entries(h)) and entries(h)[0]["status"] == "needs_approval")
    ref = entries(h)[0]["order_ref"]
    h.ledger.request_control("approve", {"order_ref": ref, "by": "test"}, h.clock.now(), "test")
    assert h.until(lambda: ledger(h)[ref]["status"] == "filled", timeout=8)  # rule 9 saw the stop
    assert [k["role"] for k in h.ledger.children(ref)] == ["stop"]


def test_a_trailing_child_trails_at_ib_and_closes_the_position(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60, strategy={"params": "fast=20,slow=50,sl_trail=0.03"})
    h.start()
    assert h.until(lambda: bool(entries(h)) and entries(h)[0]["status"] == "filled" and calm(h))
    ref = entries(h)[0]["order_ref"]
    assert h.until(lambda: [k["status"] for k in h.ledger.children(ref)] == ["working"])
    [tr] = h.ledger.children(ref)
    assert (tr["order_ref"], tr["order_type"], tr["trail_pct"]) == (f"{ref}:tr", "TRAIL", 3.0)
    [sent] = [r for r in gw.orders_received() if r.order_ref == tr["order_ref"]]  # no modify: it trails by itself
    assert sent.transmit and sent.parent_id == gw.orders_received(ref)[0].order_id
    o = float(h.frame["open"].iloc[60])
    stamp = h.frame.index[60].tz_localize(None)
    gw.push_bar("SPY", {"time": stamp, "open": o, "high": o + 20.0, "low": o, "close": o + 20.0})  # ratchets up
    assert gw.orders(tr["order_ref"])[0].trail_stop == pytest.approx((o + 20.0) * 0.97)
    gw.push_bar("SPY", {"time": stamp, "open": o, "high": o + 20.0, "low": o - 1.0, "close": o - 1.0})
    assert gw.position("SPY")[0] == 0.0
    assert h.until(lambda: ledger(h)[tr["order_ref"]]["status"] == "filled" and calm(h))
    assert h.ledger.fills()[-1]["price"] == pytest.approx((o + 20.0) * 0.97)
    assert h.ledger.expected_positions().get("SPY", 0.0) == 0.0
