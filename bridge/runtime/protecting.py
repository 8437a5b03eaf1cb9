"""Protective orders after a reconcile: the pure plan (``bridge.protect_plan``) applied to the broker and ledger.

Run by the Reconciler on start, after every reconnect, after 1101/1102, on resume and on the
periodic check (issue 12 item 5: "a position never sits without its protective order for
more than one reconcile"), and when an exit fills (:meth:`Protector.after_fill`). The
broker is the truth about what rests there, the ledger about what the bridge meant. In the
plan's order (cancels first):

- ``cancel``: a child resting on a flat (or opposite) position is cancelled (a stop left
  behind would open a position);
- ``gone``: a child the ledger thinks open and the broker no longer holds ends ``filled`` or
  ``cancelled`` as its recorded fills say;
- ``adopt``: a child the broker holds stays; the ledger learns it if it did not know it (a
  restored backup), never re-sends or voids it;
- ``resize``: a child whose quantity differs from the position (a partial exit) is modified;
- ``attach``: a missing role is recorded under the entry as ``<entry>:sl~N`` and placed.

Before the plan, an entry partly filled and still working with its (inactive) children is cut to
its fill (:meth:`Protector.cut_partial_entries`), so the plan protects the shares bought.

What it leaves alone: symbols with an order of their own still in flight (an entry's children
wait for it; a strategy exit cancels them itself), symbols whose position disagrees with the
ledger (the mismatch halt says so) and dry runs. A latched kill switch does not stop it: the
kill switch blocks new risk, and a protective order only closes a position (a stop without
flatten keeps the children, :mod:`bridge.stop_plan`; one lost later is re-attached). Another
client id's child is held, never cancelled or modified (IB lets only its owner): a plan that needs it gone or resized alerts.
An action that fails (a rejected child, a modify the broker refuses) never leaves a silent
unprotected position: critical alert ``protection_failed`` and new entries of the symbol are
refused (risk rule ``unprotected``) until a later reconcile re-protects it.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from bridge.brokers.protocol import OrderState
from bridge.errors import BrokerDisconnected, DuplicateOrder
from bridge.ledger import queries
from bridge.ledger.store import OPEN, iso
from bridge.protect_plan import Action, Entry, HeldChild, plan
from bridge.protection import child_request, children, oca_group, split_ref
from bridge.reconcile import ReconcileResult, ledger_status
from bridge.runtime.context import Context
from bridge.runtime.trailing import ratcheted

log = logging.getLogger("bridge.runner")
_TOL = 1e-6


class Protector:
    """Applies :func:`bridge.protect_plan.plan` after each reconciliation."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def run(self, why: str, res: ReconcileResult, fresh: bool) -> list[Action]:
        """Plan and perform; returns the actions taken. ``fresh``: a new connection (start,
        reconnect), where a child the broker does not list at all is proven gone (the reconcile
        voided it); on the same connection it may still be in flight and counts as held."""
        ctx = self.ctx
        if ctx.cfg.dry_run:
            return []
        if not ctx.broker.is_connected():  # the broker's lists are stale: conclude nothing, send nothing
            raise BrokerDisconnected("not connected: protective orders are not reconciled")
        self.cut_partial_entries(why)
        broker_open = {o.order_ref: o for o in ctx.broker.open_orders() if o.order_ref}
        ledger_open = ctx.ledger.open_orders()
        refs = ctx.ledger.all_refs()
        skip = {str(r["symbol"]) for r in ledger_open if not r["role"]}  # an entry or exit in flight
        skip |= {
            s
            for s in set(res.expected_positions) | set(res.broker_positions)
            if abs(res.expected_positions.get(s, 0.0) - res.broker_positions.get(s, 0.0)) > _TOL
        }
        held: dict[str, HeldChild] = {}
        for ref, o in broker_open.items():
            parsed = split_ref(ref)
            if parsed is None or parsed[0] not in refs or o.symbol in skip or o.done:
                continue
            held[ref] = HeldChild(ref, o.symbol, o.side, float(o.quantity) - float(o.filled))
        kids_open = {str(r["order_ref"]): r for r in ledger_open if r["role"] and r["symbol"] not in skip}
        if not fresh:
            for ref, r in kids_open.items():
                if ref not in held:  # unlisted on the same connection: may be in flight, never re-sent beside it
                    qty = float(r["quantity"]) - float(r["filled"] or 0.0)
                    held[ref] = HeldChild(ref, str(r["symbol"]), str(r["side"]), qty)
        positions = {s: p.quantity for s, p in ctx.broker.positions().items() if s not in skip}
        entries: dict[str, Entry] = {}
        rows: dict[str, dict[str, Any]] = {}
        failed: set[str] = set()
        for sym, qty in positions.items():
            if not qty or not ctx.exits:
                continue
            row = queries.last_entry(ctx.ledger, sym, "BUY" if qty > 0 else "SELL")
            if row is None:
                continue  # a position the bridge did not open (baseline, manual): not its to protect
            price = self.base_of(row)
            if not (math.isfinite(price) and price > 0):
                self.fail(sym, f"its entry {row['order_ref']} has no fill price to measure the levels from")
                failed.add(sym)
                continue
            entries[sym], rows[sym] = Entry(str(row["order_ref"]), str(row["side"]), price), row
        actions = plan(
            ctx.exits,
            positions,
            entries,
            {ref: str(r["symbol"]) for ref, r in kids_open.items()},
            sorted(held.values(), key=lambda h: h.ref),
            [r for r in refs if split_ref(r)],
        )
        for a in actions:
            if a.symbol in failed and a.kind in ("resize", "attach"):
                continue
            if not self.perform(a, broker_open.get(a.ref), rows.get(a.symbol), why):
                failed.add(a.symbol)
        for sym in sorted(set(ctx.state.unprotected) - skip - failed):
            ctx.state.unprotected.pop(sym)
            ctx.alert("protection_restored", f"{sym}: protective orders in place again ({why})", "warning", symbol=sym)
        if actions:
            log.info(
                "protective orders reconciled",
                extra={
                    "event": "protect_plan",
                    "why": why,
                    "actions": [f"{a.kind} {a.ref}" for a in actions if a.kind != "adopt"],
                },
            )
        return actions

    def cut_partial_entries(self, why: str) -> None:
        """Cancel the unfilled rest of every entry that is partly filled and still works with its
        children, and wait (``[orders] cancel_wait``) for the cancels: IB keeps a bracket's children
        inactive until the parent fills completely, so the shares bought would sit unprotected. The
        children are cancelled first, then the parent (whether a broker takes or keeps the children
        of a cancelled, partly filled parent no longer matters); the plan then re-attaches lone
        children for the shares bought (``<entry>:sl~N``, levels from the entry's fill). Not attached beside the
        working parent: when it completed, its own children would activate too (over-protection
        that could open an opposite position). Every reconcile that sees one cuts it: the first
        reconcile after the partial fill is the one that must end the unprotected spell."""
        ctx = self.ctx
        if not ctx.exits:
            return
        cut: set[str] = set()
        for r in ctx.ledger.open_orders():
            ref, filled = str(r["order_ref"]), float(r["filled"] or 0.0)
            if r["role"] or ref in ctx.state.adopted or not _TOL < filled < float(r["quantity"]) - _TOL:
                continue
            kids = [str(k["order_ref"]) for k in ctx.ledger.children(ref) if k["status"] in OPEN]
            if not kids:
                continue  # no bracket waiting on it (an exit, or an entry without children)
            for kid in kids:  # first: no broker then has children of a cancelled parent to take or keep
                ctx.state.cancel_reason.setdefault(kid, "partial_entry")
                ctx.broker.cancel(kid)
            ctx.state.cancel_reason.setdefault(ref, "partial_entry")
            ok = ctx.broker.cancel(ref)
            detail = f"{filled:g} of {float(r['quantity']):g} filled, its children inactive until the rest fills"
            ctx.ledger.update_order(
                ref, ctx.clock.now(), kind="protect_cut", detail=f"{detail}: cancelling the rest ({why})"
            )
            ctx.alert(
                "partial_entry_cut",
                f"{r['symbol']}: entry {ref} is partly filled ({detail}): its rest is cancelled and the "
                f"{filled:g} shares bought get their own protective orders"
                + ("" if ok else " (the broker does not list it)"),
                "warning",
                order_ref=ref,
            )
            cut.add(str(r["symbol"]))
        deadline = time.monotonic() + ctx.cfg.orders.cancel_wait
        while cut and time.monotonic() < deadline and any(ctx.ledger.open_orders(s) for s in cut):
            ctx.pump(0.05)

    def after_fill(self, ref: str) -> list[Action]:
        """Order ``ref`` filled. If it reduced or closed a position (an exit): the strategy's order
        cancelled the children before it went out and carries none, so what is left is protected
        now (levels from the entry, as research keeps them), and a child still resting on a symbol
        it closed (an exit that did not go through the strategy's path) is cancelled now, not a
        reconcile later. A broker position that lags the ledger is left to the next reconcile."""
        ctx = self.ctx
        row = ctx.ledger.order(ref)
        if not ctx.exits or row is None or row["role"] or float(row["filled"] or 0.0) < float(row["quantity"]) - _TOL:
            return []
        positions = {s: p.quantity for s, p in ctx.broker.positions().items()}
        pos = positions.get(str(row["symbol"]), 0.0)
        if pos and (row["side"] == "BUY") == (pos > 0):
            if str(row["symbol"]) not in ctx.state.unprotected:
                return []  # an entry: its own bracket protects it
            return self.reprotect("unprotected entry filled")  # its bracket lost a child: re-attach now
        res = ReconcileResult(expected_positions=ctx.ledger.expected_positions(), broker_positions=positions)
        return self.run("exit filled", res, fresh=False)

    def reprotect(self, why: str) -> list[Action]:
        """Run the plan now on the same connection, not a reconcile later (a child was rejected, or
        the entry of an unprotected symbol filled). Nothing while disconnected."""
        ctx = self.ctx
        if not ctx.exits or ctx.cfg.dry_run or not ctx.broker.is_connected():
            return []
        positions = {s: p.quantity for s, p in ctx.broker.positions().items()}
        res = ReconcileResult(expected_positions=ctx.ledger.expected_positions(), broker_positions=positions)
        return self.run(why, res, fresh=False)

    def base_of(self, row: dict[str, Any]) -> float:
        """The price the levels of entry ``row``'s children are measured from: the raw fill of the
        order that opened the position (an add keeps the first entry's price, as research), else
        the entry's own (a position whose opening the ledger does not know)."""
        opening = queries.entry_order(self.ctx.ledger, str(row["symbol"]))
        if opening is not None and opening["side"] == row["side"] and opening["avg_fill_price"]:
            return self.raw_entry(opening)
        return self.raw_entry(row)

    def raw_entry(self, row: dict[str, Any]) -> float:
        """The entry's raw fill: research measures levels from it (the sim's fills carry modelled slippage)."""
        fill = float(row["avg_fill_price"] or 0.0)
        raw = getattr(self.ctx.broker, "raw_price", None)
        return float(raw(fill, str(row["side"]), str(row["symbol"]))) if raw and fill > 0 else fill

    def perform(self, a: Action, st: OrderState | None, entry: dict[str, Any] | None, why: str) -> bool:
        """One action; False if it failed (the symbol is then marked unprotected)."""
        if a.kind == "gone":
            self.gone(a)
            return True
        if a.kind == "adopt":
            self.adopt(a, st)
            return True
        if a.kind in ("cancel", "resize") and st is not None and st.foreign:
            what = "cancel" if a.kind == "cancel" else f"resize to {a.quantity:g}"
            self.adopt(a, st)
            self.fail(
                a.symbol,
                f"{a.ref} must {what} ({a.detail}) but it belongs to client id {st.client_id}, which alone can change "
                f"it; cancel it in TWS, `bridge stop`, or restart with --client-id {st.client_id}",
            )
            return False
        if a.kind == "attach" and self.ctx.ledger.risk_state().kill_switch and self.refused_before(a.ref):
            # a second refusal is what latches the kill switch: re-sending would loop (the runbook says what to do)
            self.fail(a.symbol, f"the kill switch is latched and the broker refused {a.ref}'s role twice", quiet=True)
            return False
        if not self.ctx.broker.is_connected():
            raise BrokerDisconnected("not connected: protective orders are not sent", found=a.ref)
        if a.kind == "cancel":
            return self.cancel(a, st)
        if a.kind == "resize":
            return self.resize(a, st)
        assert entry is not None, "the plan attaches only under an entry"
        return self.attach(a, entry, why)

    def refused_before(self, ref: str) -> bool:
        """Whether the broker rejected two children of the same entry and role as ``ref`` (a child to
        attach): the rejection rule's limit (``on_protection_rejected``: one retry, then the kill switch)."""
        parsed = split_ref(ref)
        assert parsed is not None
        kids = self.ctx.ledger.children(parsed[0])
        return sum(1 for c in kids if c["role"] == parsed[1] and c["status"] == "rejected") >= 2

    def gone(self, a: Action) -> None:
        row = self.ctx.ledger.order(a.ref)
        if row is None or row["status"] not in OPEN:
            return
        filled = float(row["filled"] or 0.0)
        status = "filled" if filled >= float(row["quantity"]) - _TOL else "cancelled"
        self.ctx.ledger.update_order(
            a.ref, self.ctx.clock.now(), kind="gone", detail=f"{a.detail}; {filled:g} filled: {status}", status=status
        )

    def adopt(self, a: Action, st: OrderState | None) -> None:
        """Record what the broker holds; nothing is sent."""
        row = self.ctx.ledger.order(a.ref)
        if st is None or (row is not None and row["status"] in OPEN):
            return  # known and open (or in flight on this connection): nothing to change
        now = self.ctx.clock.now()
        fields = {
            "status": ledger_status(st),
            "filled": st.filled,
            "broker_order_id": st.broker_order_id,
            "perm_id": st.perm_id,
        }
        owner = f"; owned by client id {st.client_id}" if st.foreign else ""
        if row is not None:  # the ledger had closed it, the broker still holds it
            self.ctx.ledger.update_order(
                a.ref,
                now,
                kind="adopted",
                detail=f"held at the broker, the ledger had it {row['status']}{owner}",
                **fields,
            )
        else:
            self.ctx.ledger.insert_order(self.adopted_row(a, st, owner), now)
        if st.foreign:
            self.ctx.state.adopted.setdefault(a.ref, st.client_id)
        self.ctx.alert(
            "protect_adopted",
            f"protective order {a.ref} ({st.side} {st.quantity:g} {st.symbol}) is held at the broker but the ledger "
            f"did not have it open: adopted, not re-sent{owner}",
            "warning",
            order_ref=a.ref,
        )

    def adopted_row(self, a: Action, st: OrderState, owner: str) -> dict[str, Any]:
        parsed = split_ref(a.ref)
        assert parsed is not None
        parent = self.ctx.ledger.order(parsed[0]) or {}
        now = self.ctx.clock.now()
        return {
            "order_ref": a.ref,
            "run_id": self.ctx.run_id,
            "strategy": parent.get("strategy"),
            "symbol": st.symbol,
            "bar_time": parent.get("bar_time"),
            "purpose": "protect",
            "side": st.side,
            "quantity": st.quantity,
            "order_type": st.order_type,
            "limit_price": st.limit_price,
            "aux_price": st.aux_price,
            "trail_pct": st.trail_pct,
            "tif": "GTC",
            "status": ledger_status(st),
            "filled": st.filled,
            "broker_order_id": st.broker_order_id,
            "perm_id": st.perm_id,
            "reason": f"adopted: held at the broker, unknown to the ledger{owner}",
            "parent_ref": parsed[0],
            "role": parsed[1],
            "oca_group": st.oca_group or oca_group(parsed[0]),
            "sent_at": iso(now),
            "day": self.ctx.day(),
        }

    def cancel(self, a: Action, st: OrderState | None) -> bool:
        if self.ctx.ledger.order(a.ref) is None and st is not None:
            self.ctx.ledger.insert_order(self.adopted_row(a, st, ""), self.ctx.clock.now())
        self.ctx.state.cancel_reason.setdefault(a.ref, "protect")
        ok = self.ctx.broker.cancel(a.ref)
        self.ctx.ledger.update_order(
            a.ref,
            self.ctx.clock.now(),
            kind="protect_cancel",
            detail=f"{a.detail}: cancelling" + ("" if ok else " (the broker does not list it)"),
        )
        return True  # a child the broker no longer lists rests nowhere: the next reconcile records how it ended

    def resize(self, a: Action, st: OrderState | None) -> bool:
        row = self.ctx.ledger.order(a.ref)
        filled = float(st.filled) if st is not None else float((row or {}).get("filled") or 0.0)
        total = filled + a.quantity
        modify = getattr(self.ctx.broker, "modify", None)
        if modify is None or not modify(a.ref, quantity=total):
            self.fail(a.symbol, f"{a.ref} could not be resized ({a.detail}): the broker refused the modify")
            return False
        if row is None and st is not None:
            self.ctx.ledger.insert_order(self.adopted_row(a, st, ""), self.ctx.clock.now())
        self.ctx.ledger.update_order(a.ref, self.ctx.clock.now(), kind="resized", detail=a.detail, quantity=total)
        return True

    def attach(self, a: Action, entry: dict[str, Any], why: str) -> bool:
        """Record the missing child under its entry (``<entry>:sl~N``), then place it."""
        ctx = self.ctx
        parsed = split_ref(a.ref)
        assert parsed is not None
        parent = {
            **entry,
            "quantity": a.quantity,
            "tif": "GTC",
            "status": "intent",
            "run_id": ctx.run_id,
            "day": ctx.day(),
        }
        kid = next(k for k in children(parent, ctx.exits, self.base_of(entry)) if k["role"] == parsed[1])
        kid = ratcheted(ctx, kid, entry, self.base_of(entry))
        row = {**kid, "order_ref": a.ref, "reason": f"re-attached ({why}): {kid['reason']}"}
        now = ctx.clock.now()
        try:
            ctx.ledger.insert_order(row, now)
        except DuplicateOrder:
            return True  # recorded by an earlier attempt: the broker's listing decides next time
        try:
            state = ctx.broker.place(child_request(row))
        except BrokerDisconnected as err:
            ctx.ledger.update_order(a.ref, ctx.clock.now(), kind="send_failed", detail=err.what)
            raise
        ctx.ledger.update_order(
            a.ref,
            ctx.clock.now(),
            kind="sent",
            detail=f"re-attached: {a.detail}",
            status="sent",
            sent_at=iso(ctx.clock.now()),
            broker_order_id=state.broker_order_id,
            perm_id=state.perm_id,
        )
        if state.status != "pending":
            ctx.sync.order_event(state)
        ctx.alert(
            "protect_attached",
            f"{a.symbol}: protective order {a.ref} was missing at the broker: re-attached ({a.detail}, {a.quantity:g} shares)",
            "warning",
            order_ref=a.ref,
        )
        if state.status == "rejected":
            self.fail(a.symbol, f"re-attached {a.ref} rejected by the broker: {state.message}")
            return False
        return True

    def fail(self, sym: str, reason: str, quiet: bool = False) -> None:
        """An unprotected position: critical alert, and the symbol's entries refused until re-protected.
        ``quiet``: already reported with the same reason (the kill switch's, at every reconcile)."""
        if quiet and self.ctx.state.unprotected.get(sym) == reason:
            return
        mark_unprotected(self.ctx, sym, reason)


def mark_unprotected(ctx: Context, sym: str, reason: str) -> None:
    """Refuse new entries of ``sym`` (risk rule ``unprotected``), say why, alert (critical)."""
    ctx.state.unprotected[sym] = reason
    now = ctx.clock.now()
    ctx.ledger.risk_event(now, "unprotected", f"{sym}: {reason}", ctx.run_id)
    ctx.alert(
        "protection_failed",
        f"{sym}: position without its protective orders: {reason}. New entries of {sym} are refused until a "
        "reconcile re-protects it (it retries at every reconcile); check the position in TWS",
        "critical",
        symbol=sym,
    )
    log.critical("position unprotected", extra={"event": "protection_failed", "symbol": sym, "detail": reason})
