"""Reconciling with the broker: the pure comparison (``bridge.reconcile``) applied to the ledger.

Run at start, after a reconnect or a 1101/1102, on ``bridge resume --rebaseline``, by the
periodic position check, and when only adopted orders block a decision. Recovered fills,
status fixes, voids (only on a fresh connection), rejections the runner did not see live,
and the mismatch halt are applied here; adoption and foreign orders go to
:class:`~bridge.runtime.oversight.Oversight`, protective orders (adopt, cancel, resize,
re-attach: issue 12) to :class:`~bridge.runtime.protecting.Protector`, once the ledger
holds the broker's view.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from bridge.control import managed_symbols
from bridge.ledger.queries import void_orders_since
from bridge.ledger.store import iso
from bridge.orders import PREFIX
from bridge.reconcile import ReconcileResult, reconcile
from bridge.runtime.context import Context
from bridge.runtime.oversight import Oversight
from bridge.runtime.protecting import Protector
from bridge.runtime.rejections import on_rejected

log = logging.getLogger("bridge.runner")


class Reconciler:
    """Applies a reconciliation to the ledger and the runner's state."""

    def __init__(self, ctx: Context, oversight: Oversight) -> None:
        self.ctx = ctx
        self.oversight = oversight
        self.protector = Protector(ctx)

    def run(self, why: str, act_on_mismatch: bool = True) -> ReconcileResult:
        """Compare with the broker (every client's orders) and apply the result; a mismatch
        halts (``reconcile.on_mismatch``) unless ``act_on_mismatch`` is False."""
        now = self.ctx.clock.now()
        self.ctx.broker.sync()
        managed = managed_symbols(self.ctx.ledger, self.ctx.symbols)
        positions = self.ctx.broker.positions()
        rs = self.ctx.ledger.risk_state()
        if not self.ctx.ledger.has_baseline() or rs.rebaseline:
            base = {s: p.quantity for s, p in positions.items() if s in managed}
            self.ctx.ledger.set_baseline(base, managed, now)
            self.ctx.ledger.risk_event(now, "baseline", f"positions baseline {base} ({why})", self.ctx.run_id)
            if rs.rebaseline:
                self.ctx.ledger.set_risk_state(now, rebaseline=False)
        res = reconcile(
            self.ctx.ledger.open_orders(),
            self.ctx.ledger.all_refs(),
            self.ctx.ledger.fill_ids(),
            self.ctx.ledger.expected_positions(),
            self.ctx.broker.open_orders(),
            self.ctx.broker.completed_orders(),
            self.ctx.broker.executions(),
            positions,
            managed,
            PREFIX,
            ledger_void=self.void_rows(),
        )
        for f in res.new_fills:
            self.ctx.sync.fill(f, source="reconcile")
            self.ctx.alert(
                "fill_recovered",
                f"recovered fill {f.side} {f.quantity:g} {f.symbol} @ {f.price:g} ({f.order_ref})",
                "warning",
                order_ref=f.order_ref,
                exec_id=f.exec_id,
            )
        for fix in res.updates:
            fields: dict[str, Any] = {"status": fix.status, "filled": fix.filled}
            if fix.avg_fill_price:
                fields["avg_fill_price"] = fix.avg_fill_price
            if fix.perm_id:
                fields["perm_id"] = fix.perm_id
            if fix.broker_order_id:
                fields["broker_order_id"] = fix.broker_order_id
            row = self.ctx.ledger.order(fix.order_ref)
            if row and row["sent_at"] is None:
                fields["sent_at"] = row["created_at"]
            self.ctx.ledger.update_order(
                fix.order_ref,
                now,
                kind="revived" if fix.order_ref in res.revived else "reconciled",
                detail=fix.note,
                **fields,
            )
            if fix.status == "rejected" and row and row["status"] != "rejected":
                on_rejected(self.ctx, fix.order_ref, fix.note)  # a rejection the runner did not see live
        self.ctx.state.working = {
            r["order_ref"]: self.ctx.clock.monotonic()
            for r in self.ctx.ledger.open_orders()
            if r["order_type"] == "LMT" and not r["role"]  # a take-profit child rests GTC: it never times out
        }
        self.oversight.apply(res, now)
        if why not in ("start", "reconnect"):
            # same connection (1101/1102, resume): an order the broker does not list may still be
            # in flight; only a fresh connection proves it never arrived
            for ref in res.voided:
                log.warning(
                    "order not listed by the broker",
                    extra={"event": "reconcile_unlisted", "order_ref": ref, "why": why},
                )
            res.voided = []
        for ref in res.voided:
            row = self.ctx.ledger.order(ref)
            self.ctx.ledger.update_order(ref, now, kind="void", detail="the broker never received it", status="void")
            if row and row["purpose"] == "signal":
                self.ctx.ledger.rollback_strategy_state(
                    self.ctx.skey, row["symbol"], now, row["prev_target"], row["prev_bar"], row["bar_time"]
                )
            self.ctx.alert(
                "order_void", f"order {ref} was recorded but never reached the broker: voided", "warning", order_ref=ref
            )
        self.protector.run(why, res, fresh=why in ("start", "reconnect"))
        if res.mismatches and act_on_mismatch:
            text = "; ".join(res.mismatches)
            self.ctx.ledger.risk_event(now, "mismatch", text, self.ctx.run_id)
            if self.ctx.cfg.reconcile.on_mismatch == "halt":
                self.ctx.ledger.set_risk_state(
                    now, halted=True, reason=f"reconciliation mismatch: {text}", since=iso(now)
                )
            self.ctx.alert(
                "reconcile_mismatch",
                f"reconciliation mismatch ({why}): {text}"
                + (" -- trading halted until `bridge resume`" if self.ctx.cfg.reconcile.on_mismatch == "halt" else ""),
                "critical",
            )
        self.ctx.state.positions_dirty = True
        log.info(
            "reconciled",
            extra={
                "event": "reconciled",
                "why": why,
                "summary": res.summary(),
                "expected": res.expected_positions,
                "broker": res.broker_positions,
            },
        )
        return res

    def void_rows(self) -> list[dict[str, object]]:
        """Void orders of the last few days (the broker lists today's orders only)."""
        since = iso(self.ctx.clock.now() - pd.Timedelta(days=4))
        assert since is not None  # iso() maps only None to None
        return void_orders_since(self.ctx.ledger, since)

    def clear_adopted(self, sym: str) -> bool:
        """A decision on ``sym`` finds only adopted orders working: poll the broker (they may
        have filled or been cancelled meanwhile); True if that cleared them. Still blocked on
        a second bar: halt, naming the order, its owner and the fix (see the module docstring)."""
        st = self.ctx.state
        self.oversight.load()
        self.run("adopted order", act_on_mismatch=False)
        rows = self.ctx.ledger.open_orders(sym)
        if not rows:
            st.adopted_blocks.pop(sym, None)
            return True
        n = st.adopted_blocks[sym] = st.adopted_blocks.get(sym, 0) + 1
        if n < 2 or self.ctx.ledger.risk_state().halted:
            return False
        now = self.ctx.clock.now()
        me = self.ctx.cfg.gateway.client_id
        owners = ", ".join(
            f"{r['order_ref']} ({r['side']} {float(r['quantity']) - float(r['filled'] or 0):g} {sym} left, "
            f"client id {st.adopted.get(r['order_ref'], '?')})"
            for r in rows
        )
        ids = sorted({str(st.adopted[r["order_ref"]]) for r in rows if r["order_ref"] in st.adopted})
        reason = (
            f"{sym}: the strategy's new target was blocked on {n} bars by working order(s) of another client id: {owners}; "
            f"this client (id {me}) cannot cancel them (IB lets only the placing client), so the position cannot converge"
        )
        fix = (
            f"cancel it in TWS, or `bridge stop` (global cancel), or restart with `--client-id {'/'.join(ids) or '?'}` "
            "(which can cancel it); then `bridge resume`"
        )
        self.ctx.ledger.set_risk_state(now, halted=True, reason=f"{reason}. Fix: {fix}", since=iso(now))
        self.ctx.ledger.risk_event(now, "halt", f"{reason}. Fix: {fix}", self.ctx.run_id)
        self.ctx.alert(
            "adopted_order_blocks",
            f"{reason} -- trading halted. Fix: {fix}",
            "critical",
            symbol=sym,
            order_ref=rows[0]["order_ref"],
            client_id=st.adopted.get(rows[0]["order_ref"]),
        )
        log.critical(
            "adopted order blocks the symbol: halted",
            extra={"event": "adopted_order_blocks", "symbol": sym, "order_ref": rows[0]["order_ref"]},
        )
        return False
