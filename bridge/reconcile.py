"""Reconciliation: the broker's orders, executions and positions against the ledger.

Pure: the runner passes both sides in and applies the result. Run at every start and
after every reconnect (and after IB 1101/1102). Matching is by **orderRef** (and fills
by execId), never by the broker's order ids, which do not survive reconnects.

What it finds:
    updates       ledger orders whose broker state moved on (fills while disconnected,
                  a fill or rejection the crash window never recorded)
    new_fills     executions the ledger has not recorded yet (with commissions)
    voided        ledger orders (``intent``/``sent``) the broker never received: they
                  were not placed, so the runner may decide again
    mismatches    broker orders or executions with our prefix the ledger does not know,
                  and positions that differ from baseline + recorded fills. By default a
                  mismatch halts trading until an operator resolves it (``bridge resume``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge.broker import Fill, OrderState, Position

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
    mismatches: list[str] = field(default_factory=list)
    expected_positions: dict[str, float] = field(default_factory=dict)
    broker_positions: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def summary(self) -> str:
        return (f"{len(self.updates)} order updates, {len(self.new_fills)} recovered fills, {len(self.voided)} voided, "
                f"{len(self.mismatches)} mismatches")


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
) -> ReconcileResult:
    """Compare both sides; see the module docstring."""
    res = ReconcileResult()
    open_by_ref = {o.order_ref: o for o in broker_open if o.order_ref}
    done_by_ref: dict[str, OrderState] = {}
    for o in broker_done:
        if o.order_ref:
            done_by_ref[o.order_ref] = o
    fills = [f for f in broker_fills]
    fills_by_ref: dict[str, list[Fill]] = {}
    for f in fills:
        fills_by_ref.setdefault(f.order_ref, []).append(f)
        if f.exec_id in ledger_fill_ids:
            continue
        if f.order_ref.startswith(prefix):
            if f.order_ref in ledger_refs:
                res.new_fills.append(f)
            else:
                res.mismatches.append(f"execution {f.exec_id} for orderRef {f.order_ref} that the ledger does not know "
                                      f"({f.side} {f.quantity:g} {f.symbol} @ {f.price:g})")
                res.new_fills.append(f)

    for row in ledger_open:
        ref = str(row["order_ref"])
        b = open_by_ref.get(ref) or done_by_ref.get(ref)
        execs = fills_by_ref.get(ref, [])
        executed = sum(f.quantity for f in execs)
        if b is not None:
            status = ledger_status(b)
            filled = max(b.filled, executed)
            if status in ("cancelled", "rejected") and filled >= float(row["quantity"]) - _TOL:
                status = "filled"
            if status != row["status"] or abs(filled - float(row.get("filled") or 0.0)) > _TOL:
                avg = b.avg_fill_price or (sum(f.quantity * f.price for f in execs) / executed if executed else 0.0)
                res.updates.append(OrderFix(ref, status, filled, avg, b.broker_order_id, b.perm_id,
                                            f"broker says {b.status}" + (f" ({b.message})" if b.message else "")))
        elif execs:
            qty = float(row["quantity"])
            status = "filled" if executed >= qty - _TOL else "cancelled"
            avg = sum(f.quantity * f.price for f in execs) / executed
            res.updates.append(OrderFix(ref, status, executed, avg, 0, execs[0].perm_id,
                                        "order not listed by the broker; executions found"))
        else:
            res.voided.append(ref)

    for ref, o in open_by_ref.items():
        if ref.startswith(prefix) and ref not in ledger_refs:
            res.mismatches.append(f"open order {ref} at the broker is not in the ledger ({o.side} {o.quantity:g} {o.symbol})")

    expected = {s: float(q) for s, q in expected_positions.items()}
    for f in res.new_fills:
        expected[f.symbol] = expected.get(f.symbol, 0.0) + f.signed
    actual = {s: p.quantity for s, p in broker_positions.items()}
    res.expected_positions = expected
    res.broker_positions = actual
    for sym in sorted(set(symbols) | {s for s, q in expected.items() if abs(q) > _TOL}):
        e, a = expected.get(sym, 0.0), actual.get(sym, 0.0)
        if abs(e - a) > _TOL:
            res.mismatches.append(f"position {sym}: broker holds {a:g}, ledger expects {e:g}")
    return res
