"""Emergency stop and resume, shared by the runner and the ``bridge stop``/``resume`` commands.

``bridge stop`` talks to a running ``bridge run`` through the ledger's ``control`` table
(the runner polls it every ~0.25 s): the runner latches the kill switch, cancels the open
orders, flattens if asked, records the event and answers in the same row. If no runner is
alive (no heartbeat for ``ALIVE_SECONDS``, or it does not answer in time), the command
connects to the gateway itself (its own client id) and does the same. Without flatten the
stop and target of every open position stay at the broker (``bridge.stop_plan``): only a
flatten closes what they protect.
Flattening orders get deterministic orderRefs derived from the control request, so even
if both processes acted, the ledger's primary key lets only one of them place each order.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

from bridge.brokers.protocol import Broker, Fill, FillEvent, OrderEvent, OrderRequest, OrderState
from bridge.errors import BridgeError, BrokerDisconnected, DuplicateOrder
from bridge.ledger.store import OPEN, TERMINAL, Ledger, iso
from bridge.market import MarketCalendar
from bridge.orders import PREFIX, order_ref
from bridge.reconcile import ledger_status
from bridge.risk import Exposure, OrderIntent, RiskContext, RiskLimits, check
from bridge.stop_plan import StopPlan, kept_text, plan_stop

log = logging.getLogger("bridge.control")
ALIVE_SECONDS = 5.0


class LedgerSync:
    """Applies broker order and fill events to the ledger (the runner and ``bridge stop``).

    ``void`` is not terminal here: a broker event for a void order revives it.
    """

    def __init__(self, ledger: Ledger, clock_now: Callable[[], pd.Timestamp], day: Callable[[], str]) -> None:
        self.ledger = ledger
        self.now = clock_now
        self.day = day

    def order_event(self, st: OrderState) -> tuple[str, str] | None:
        """Record a status change; returns (old, new) status when it changed."""
        if not st.order_ref.startswith(PREFIX):
            return None
        row = self.ledger.order(st.order_ref)
        if row is None:
            return ("unknown", ledger_status(st))
        new = ledger_status(st)
        old = str(row["status"])
        if (old in TERMINAL and old != "void") or (new == old and abs(st.filled - float(row["filled"] or 0)) < 1e-9):
            return None
        if new == "sent" and old != "intent":
            return None
        fields: dict[str, Any] = {"status": new, "filled": st.filled}
        if st.avg_fill_price:
            fields["avg_fill_price"] = st.avg_fill_price
        if st.broker_order_id:
            fields["broker_order_id"] = st.broker_order_id
        if st.perm_id:
            fields["perm_id"] = st.perm_id
        if new in ("rejected", "cancelled") and st.message:
            fields["reason"] = f"{row['reason'] + '; ' if row['reason'] else ''}broker: {st.message}"
        self.ledger.update_order(
            st.order_ref, self.now(), kind=new, detail=st.message or f"filled {st.filled:g}/{st.quantity:g}", **fields
        )
        return (old, new)

    def fill(self, fill: Fill, source: str = "live") -> bool:
        """Record a fill of one of this ledger's orders (others' fills are never ours to count)."""
        if self.ledger.order(fill.order_ref) is None:
            return False
        return self.ledger.record_fill(fill, self.now(), self.day(), source)


def runner_alive(ledger: Ledger, now: pd.Timestamp, max_age: float = ALIVE_SECONDS) -> dict[str, Any] | None:
    """The latest run if it is still heartbeating, else None."""
    run = ledger.latest_run()
    if not run or run.get("ended_at") or not run.get("heartbeat_at"):
        return None
    age = (pd.Timestamp.now(tz="UTC") - pd.Timestamp(run["heartbeat_at"])).total_seconds()
    if age > max_age:
        return None
    pid = run.get("pid")
    if pid and run.get("host") == os.uname().nodename:
        try:
            os.kill(int(pid), 0)
        except OSError:
            return None
    return run


def wait_for_control(ledger: Ledger, control_id: int, timeout: float) -> dict[str, Any] | None:
    """Wait until a runner answered the control request; None on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = ledger.control(control_id)
        if row and row.get("result"):
            return row
        time.sleep(0.05)
    return None


def managed_symbols(ledger: Ledger, symbols: Iterable[str]) -> list[str]:
    """Symbols the bridge is responsible for: configured ones and any it ever traded."""
    return sorted({s.upper() for s in symbols} | {s for s in ledger.traded_symbols() if s})


def emergency_stop(
    broker: Broker,
    ledger: Ledger,
    *,
    flatten: bool,
    symbols: Iterable[str],
    strategy: str,
    key: str,
    tag: pd.Timestamp,
    reason: str,
    kind: str,
    now: Callable[[], pd.Timestamp],
    pump: Callable[[float], None],
    prices: Mapping[str, float] | None = None,
    calendar: MarketCalendar | None = None,
    cancel_wait: float = 5.0,
    run_id: str = "",
) -> dict[str, Any]:
    """Latch the kill switch, cancel the open orders, optionally flatten; returns a summary.

    Without flatten the protective children of open positions stay at the broker (``kept``,
    ``kept_text``: a kill switch must not strip a position's stop); with flatten everything is
    cancelled first, and an order that filled during the cancel wait shrinks the flatten.

    ``pump(seconds)`` must process broker events (so cancels and fills reach the ledger).
    Flattening orders are market orders through the risk gate (purpose ``flatten``, always
    allowed when they close a position), with orderRefs derived from ``tag``.
    """
    ledger.latch(now(), reason, kind, run_id)
    log.critical("kill switch latched", extra={"event": "kill_switch", "reason": reason, "flatten": flatten})
    before = {str(r["order_ref"]): (str(r["symbol"]), float(r["filled"] or 0.0)) for r in ledger.open_orders()}
    held = {s: p.quantity for s, p in broker.positions().items()}
    plan = _cancel(broker, ledger, flatten=flatten, positions=held, pump=pump, cancel_wait=cancel_wait)
    result: dict[str, Any] = {
        "kill_switch": True,
        "reason": reason,
        "cancelled": True,
        "flatten": flatten,
        "orders": [],
        "kept": [_order_json(o) for o in plan.keep],
        "kept_text": kept_text(plan.keep),
    }
    if plan.keep:
        _record_kept(ledger, plan, now(), run_id)
    if plan.foreign:
        result["not_cancelled"] = [
            {
                **_order_json(o),
                "client_id": o.client_id,
                "fix": f"cancel it in TWS or `bridge stop --client-id {o.client_id}`",
            }
            for o in plan.foreign
        ]
        detail = (
            "open orders of another client id NOT cancelled (only their owner can, or a global cancel): "
            + ", ".join(f"{o.order_ref} (client id {o.client_id})" for o in plan.foreign)
        )
        ledger.risk_event(now(), "not_cancelled", detail, run_id)
        log.error(detail, extra={"event": "kill_not_cancelled"})
    if not flatten:
        return result
    left = _left_after_cancels(broker, ledger, held, before, pump, cancel_wait)
    positions = broker.positions()
    pending = {r["symbol"] for r in ledger.open_orders() if r["purpose"] == "flatten"}
    for sym in managed_symbols(ledger, symbols):
        pos = positions.get(sym)
        if pos is None or abs(pos.quantity) < 1e-9:
            continue
        if sym in left:  # a fill during the cancel wait the broker's position did not show yet
            pos = dataclasses.replace(pos, quantity=left[sym])
            if abs(pos.quantity) < 1e-9:
                continue
        if sym in pending:  # a flattening order is already working: never sell twice
            result["orders"].append({"symbol": sym, "skipped": "a flattening order is already working"})
            continue
        qty = abs(pos.quantity)
        side = "SELL" if pos.quantity > 0 else "BUY"
        px = float((prices or {}).get(sym) or pos.avg_cost or 1.0)
        intent = OrderIntent(sym, side, qty, px, "MKT", None, "flatten")  # type: ignore[arg-type]
        decision = check(
            intent, Exposure(math.nan, 0.0, {sym: pos.quantity}, {sym: px}), RiskContext(kill_switch=True), RiskLimits()
        )
        ref = order_ref(strategy, key, sym, tag, "flat")
        ledger.record_decision(
            now(),
            run_id=run_id,
            symbol=sym,
            strategy=key,
            position=pos.quantity,
            desired=0.0,
            quantity=intent.signed,
            verdict=decision.verdict,
            rule=decision.rule,
            reason=decision.reason,
            order_ref=ref,
        )
        if not decision.allowed:
            result["orders"].append({"symbol": sym, "skipped": decision.reason})
            continue
        day = str((calendar or MarketCalendar()).trading_day(now()))
        try:
            ledger.insert_order(
                {
                    "order_ref": ref,
                    "run_id": run_id,
                    "symbol": sym,
                    "purpose": "flatten",
                    "strategy": key,
                    "side": side,
                    "quantity": qty,
                    "order_type": "MKT",
                    "tif": "DAY",
                    "status": "intent",
                    "reason": reason,
                    "day": day,
                },
                now(),
            )
        except DuplicateOrder:
            result["orders"].append({"symbol": sym, "order_ref": ref, "skipped": "already placed by another process"})
            continue
        state = broker.place(OrderRequest(ref, sym, side, qty, "MKT", None, "DAY"))  # type: ignore[arg-type]
        ledger.update_order(
            ref,
            now(),
            kind="sent",
            status="sent",
            sent_at=iso(now()),
            broker_order_id=state.broker_order_id,
            perm_id=state.perm_id,
        )
        result["orders"].append({"symbol": sym, "order_ref": ref, "side": side, "quantity": qty})
        log.warning(
            "flatten order sent",
            extra={"event": "flatten_sent", "order_ref": ref, "symbol": sym, "side": side, "quantity": qty},
        )
    deadline = time.monotonic() + cancel_wait
    refs = [o["order_ref"] for o in result["orders"] if "order_ref" in o and "skipped" not in o]
    while time.monotonic() < deadline and any((ledger.order(r) or {}).get("status") in OPEN for r in refs):
        pump(0.05)
    result["final"] = {r: (ledger.order(r) or {}).get("status") for r in refs}
    return result


def _cancel(
    broker: Broker,
    ledger: Ledger,
    *,
    flatten: bool,
    positions: Mapping[str, float],
    pump: Callable[[float], None],
    cancel_wait: float,
) -> StopPlan:
    """Cancel for a kill switch and wait for the cancels; returns what was kept and what could not go.

    With flatten everything goes, children included (the flatten closes the positions; a stop left
    working could fill beside it). Without, the protective children of open positions stay
    (:mod:`bridge.stop_plan`) and the rest is cancelled one by one; only when nothing is to be kept
    does the global cancel go out as before (it also reaches other client ids' orders).
    """
    plan = StopPlan()
    if not flatten:
        try:
            broker.sync()  # every client's open orders as of now (another client's are listed only by a sync)
        except BrokerDisconnected:
            raise
        except BridgeError as err:  # a hung listing: this client's orders are current anyway
            log.error("open orders not refreshed for the kill switch", extra={"event": "kill_sync", "detail": err.what})
        plan = plan_stop(broker.open_orders(), positions, ledger.all_refs())
    if not plan.keep:
        broker.cancel_all()
        plan = StopPlan()
    else:
        for o in plan.cancel:
            broker.cancel(o.order_ref)
    kept = {o.order_ref for o in plan.keep}
    deadline = time.monotonic() + cancel_wait
    # other clients' orders: no update reaches us for them (the global cancel still cancels them)
    while time.monotonic() < deadline and [
        o for o in broker.open_orders() if not o.foreign and o.order_ref not in kept
    ]:
        pump(0.05)
    pump(0.0)
    return plan


def _left_after_cancels(
    broker: Broker,
    ledger: Ledger,
    held: Mapping[str, float],
    before: Mapping[str, tuple[str, float]],
    pump: Callable[[float], None],
    cancel_wait: float,
) -> dict[str, float]:
    """The position to flatten of each symbol where an order (a stop, a target) filled during the
    cancel wait: IB reports a position after the execution, so the broker's figure may still hold
    the shares the stop sold. Waits for the broker to show ``held + fills``; if it never does, the
    figure closer to zero wins (flattening less than held leaves a reported position; more would
    open one)."""
    moved: dict[str, float] = {}
    for ref, (sym, filled) in before.items():
        row = ledger.order(ref) or {}
        delta = float(row.get("filled") or 0.0) - filled
        if abs(delta) > 1e-9:
            moved[sym] = moved.get(sym, 0.0) + (delta if row.get("side") == "BUY" else -delta)
    want = {sym: float(held.get(sym, 0.0)) + d for sym, d in moved.items()}

    def now_held() -> dict[str, float]:
        pos = broker.positions()
        return {sym: float(pos[sym].quantity) if sym in pos else 0.0 for sym in want}

    deadline = time.monotonic() + cancel_wait
    seen = now_held()
    while time.monotonic() < deadline and any(abs(seen[s] - want[s]) > 1e-9 for s in want):
        pump(0.05)
        seen = now_held()
    out = {}
    for sym, w in want.items():
        b = seen[sym]
        out[sym] = b if abs(b - w) <= 1e-9 or (b * w > 0 and abs(b) < abs(w)) else (w if b * w > 0 else 0.0)
        if abs(b - w) > 1e-9:
            log.error(
                "position after the cancels disagrees with the fills",
                extra={"event": "flatten_position_unsettled", "symbol": sym, "broker": b, "fills": w, "used": out[sym]},
            )
    return out


def _order_json(o: OrderState) -> dict[str, Any]:
    return {
        "order_ref": o.order_ref,
        "symbol": o.symbol,
        "side": o.side,
        "quantity": float(o.quantity) - float(o.filled),
        "order_type": o.order_type,
    }


def _record_kept(ledger: Ledger, plan: StopPlan, at: pd.Timestamp, run_id: str) -> None:
    """The ledger says which protective orders the kill switch left working, and why."""
    text = kept_text(plan.keep)
    ledger.risk_event(at, "protection_kept", text, run_id)
    for o in plan.keep:
        if ledger.order(o.order_ref) is not None:
            ledger.update_order(
                o.order_ref, at, kind="kept", detail="kept by the kill switch: it protects an open position"
            )
    log.warning(text, extra={"event": "protection_kept", "kept": [o.order_ref for o in plan.keep]})


def pump_into(broker: Broker, sync: LedgerSync) -> Callable[[float], None]:
    """A ``pump`` for :func:`emergency_stop` outside the runner: record order and fill events."""

    def pump(timeout: float) -> None:
        for ev in broker.poll(timeout):
            if isinstance(ev, OrderEvent):
                sync.order_event(ev.order)
            elif isinstance(ev, FillEvent):
                sync.fill(ev.fill)

    return pump


def result_text(result: Mapping[str, Any]) -> str:
    return json.dumps(result, default=str, sort_keys=True)
