"""Reconciliation: the broker's orders, executions and positions against the ledger.

Pure: the runner passes both sides in and applies the result. Run at every start and
after every reconnect (and after IB 1101/1102). Matching is by **orderRef** (and fills
by execId), never by the broker's order ids, which do not survive reconnects.

The broker side must be every client's view (``reqAllOpenOrders``, completed orders
and executions of all clients): IB lists a client's open orders to that client only, so
after a restart under another client id the previous client's orders are invisible to
``reqOpenOrders``.

What it finds:
    updates       ledger orders whose broker state moved on (fills while disconnected,
                  a fill or rejection the crash window never recorded)
    new_fills     executions of this ledger's orders not recorded yet (with commissions)
    voided        ledger orders (``intent``/``sent``) proven absent: no open order of any
                  client, no completed order and no execution carries their orderRef or
                  permId. Only these may be decided again.
    adopted       ledger orders working under another client id (an earlier run, or
                  ``bridge stop`` on client id + 1): tracked, never voided or re-sent
    revived       ``void`` orders the broker lists after all (void is not terminal)
    foreign_fills executions with our prefix the ledger does not know (another ledger on
                  the same account): never added to this ledger's fills
    foreign_open  open orders with our prefix the ledger does not know, in symbols it does
                  not manage (reported, not a mismatch)
    mismatches    open orders with our prefix the ledger does not know in its symbols (except a
                  protective child of one of its entries, ``<entry>:sl``...: the protect plan
                  adopts it, :mod:`bridge.protect_plan`), and positions
                  that differ from baseline + recorded fills (the broker is the truth; the
                  message names the part foreign executions explain). By default a
                  mismatch halts trading until an operator resolves it (``bridge resume``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge.brokers.protocol import Fill, OrderState, Position
from bridge.protection import split_ref

_TOL = 1e-6


@dataclass(frozen=True)
class OrderFix:
    order_ref: str
    status: str
    filled: float
    avg_fill_price: float
    broker_order_id: int
    perm_id: int
    note: str


@dataclass
class ReconcileResult:
    updates: list[OrderFix] = field(default_factory=list)
    new_fills: list[Fill] = field(default_factory=list)
    voided: list[str] = field(default_factory=list)
    adopted: list[OrderState] = field(default_factory=list)
    revived: list[str] = field(default_factory=list)
    foreign_fills: list[Fill] = field(default_factory=list)
    foreign_open: list[OrderState] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    expected_positions: dict[str, float] = field(default_factory=dict)
    broker_positions: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def summary(self) -> str:
        return (
            f"{len(self.updates)} order updates, {len(self.new_fills)} recovered fills, {len(self.voided)} voided, "
            f"{len(self.adopted)} adopted, {len(self.revived)} revived, {len(self.foreign_fills)} foreign fills, "
            f"{len(self.mismatches)} mismatches"
        )


def ledger_status(state: OrderState) -> str:
    """Our ledger status for a broker order state."""
    if state.status == "working":
        return "partially_filled" if state.filled > 0 else "working"
    if state.status == "pending":
        return "sent"
    return state.status


def reconcile(
    ledger_open: Iterable[Mapping[str, Any]],
    ledger_refs: set[str],
    ledger_fill_ids: set[str],
    expected_positions: Mapping[str, float],
    broker_open: Iterable[OrderState],
    broker_done: Iterable[OrderState],
    broker_fills: Iterable[Fill],
    broker_positions: Mapping[str, Position],
    symbols: Iterable[str],
    prefix: str = "ql:",
    ledger_void: Iterable[Mapping[str, Any]] = (),
) -> ReconcileResult:
    """Compare both sides; see the module docstring. ``ledger_void`` are the ledger's
    ``void`` orders, revisited in case the broker has them after all."""
    res = ReconcileResult()
    broker_open = list(broker_open)
    open_by_ref = {o.order_ref: o for o in broker_open if o.order_ref}
    open_by_perm = {o.perm_id: o for o in broker_open if o.perm_id}
    done_by_ref: dict[str, OrderState] = {}
    done_by_perm: dict[int, OrderState] = {}
    for o in broker_done:
        if o.order_ref:
            done_by_ref[o.order_ref] = o
        if o.perm_id:
            done_by_perm[o.perm_id] = o
    fills_by_ref: dict[str, list[Fill]] = {}
    fills_by_perm: dict[int, list[Fill]] = {}
    for f in broker_fills:
        fills_by_ref.setdefault(f.order_ref, []).append(f)
        if f.perm_id:
            fills_by_perm.setdefault(f.perm_id, []).append(f)
        if f.exec_id in ledger_fill_ids:
            continue
        if f.order_ref in ledger_refs:
            res.new_fills.append(f)
        elif f.order_ref.startswith(prefix):
            res.foreign_fills.append(f)

    void_refs = set()
    rows = list(ledger_open)
    for row in ledger_void:
        void_refs.add(str(row["order_ref"]))
        rows.append(row)
    for row in rows:
        ref = str(row["order_ref"])
        perm = int(row.get("perm_id") or 0)
        b = open_by_ref.get(ref) or done_by_ref.get(ref) or open_by_perm.get(perm) or done_by_perm.get(perm)
        execs = fills_by_ref.get(ref) or fills_by_perm.get(perm) or []
        executed = sum(f.quantity for f in execs)
        if b is not None:
            status = ledger_status(b)
            filled = max(b.filled, executed)
            if status in ("cancelled", "rejected") and filled >= float(row["quantity"]) - _TOL:
                status = "filled"
            if ref in void_refs and status in ("cancelled", "rejected") and filled <= _TOL:
                continue  # it did reach the broker but never traded: void or cancelled, nothing changes
            if b.foreign and not b.done:
                res.adopted.append(b)
            if ref in void_refs:
                res.revived.append(ref)
            if status != row["status"] or abs(filled - float(row.get("filled") or 0.0)) > _TOL:
                avg = b.avg_fill_price or (sum(f.quantity * f.price for f in execs) / executed if executed else 0.0)
                note = f"broker says {b.status}" + (f" ({b.message})" if b.message else "")
                if b.foreign and not b.done:
                    note += f"; owned by client id {b.client_id}: adopted"
                res.updates.append(OrderFix(ref, status, filled, avg, b.broker_order_id, b.perm_id, note))
        elif execs:
            qty = float(row["quantity"])
            status = "filled" if executed >= qty - _TOL else "cancelled"
            avg = sum(f.quantity * f.price for f in execs) / executed
            if ref in void_refs:
                res.revived.append(ref)
            res.updates.append(
                OrderFix(
                    ref, status, executed, avg, 0, execs[0].perm_id, "order not listed by the broker; executions found"
                )
            )
        elif ref not in void_refs:
            res.voided.append(ref)

    managed = set(symbols)
    for ref, o in open_by_ref.items():
        if ref.startswith(prefix) and ref not in ledger_refs:
            parsed = split_ref(ref)
            if parsed is not None and parsed[0] in ledger_refs:
                continue  # a child of our entry the ledger never recorded: adopted by the protect plan
            if o.symbol in managed:
                res.mismatches.append(
                    f"open order {ref} at the broker is not in the ledger ({o.side} {o.quantity:g} {o.symbol}): "
                    "another bridge or ledger trades this account"
                )
            else:
                res.foreign_open.append(o)

    expected = {s: float(q) for s, q in expected_positions.items()}
    for f in res.new_fills:
        expected[f.symbol] = expected.get(f.symbol, 0.0) + f.signed
    foreign: dict[str, list[Fill]] = {}
    for f in res.foreign_fills:
        foreign.setdefault(f.symbol, []).append(f)
    actual = {s: p.quantity for s, p in broker_positions.items()}
    res.expected_positions = expected
    res.broker_positions = actual
    for sym in sorted(managed | {s for s, q in expected.items() if abs(q) > _TOL}):
        e, a = expected.get(sym, 0.0), actual.get(sym, 0.0)
        if abs(e - a) > _TOL:
            text = f"position {sym}: broker holds {a:g}, ledger expects {e:g}"
            theirs = foreign.get(sym, [])
            if theirs:
                net = sum(f.signed for f in theirs)
                refs = ", ".join(sorted({f.order_ref for f in theirs}))
                text += (
                    f" ({net:+g} of it from executions of orders this ledger does not know: {refs}; "
                    "another bridge or ledger trades this account's " + sym + ")"
                )
            res.mismatches.append(text)
    return res
