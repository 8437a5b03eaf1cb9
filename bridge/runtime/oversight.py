"""What the runner does with a reconciliation beyond fills and voids: orders it adopts,
void orders it revives, executions of orders it does not know, and the periodic check.

Rules (docs/bridge.md, "Reconcile rules"):

- An order is voided only when proven absent (see ``bridge.reconcile``). An order another
  client id owns (an earlier run under another ``--client-id``, or the flatten order of
  ``bridge stop`` on client id + 1) is **adopted**: its state and fills are recorded and
  it blocks new orders for its symbol like any working order. IB lets only the placing
  client cancel or modify it, so the runner never tries: it alerts once, and polls the
  broker every ``ADOPTED_POLL`` seconds while one is open, because no live update (status
  or execution) of another client's order reaches this client. A decision it blocks polls
  once more first; blocked again on a later bar, the runner halts with a critical alert that
  names the order, its client id and the fix (cancel it in TWS, ``bridge stop`` (IB's global
  cancel), or a restart under its id), since the position cannot converge meanwhile.
- ``void`` is not terminal: a void order the broker lists after all is revived (status
  and fills recorded, critical alert: the bar may have been decided again meanwhile).
- An execution whose ``ql:`` orderRef this ledger does not know belongs to another
  ledger on the same account: it is never recorded here, it is alerted once per ref, and
  a position difference it explains halts with a message that says so.
"""

from __future__ import annotations

import logging
import time

import pandas as pd

from bridge.brokers.protocol import Fill
from bridge.reconcile import ReconcileResult
from bridge.runtime.context import Context

log = logging.getLogger("bridge.runner")
#: Seconds between a periodic check that found a mismatch and the check that confirms it
#: (a fill can reach the position stream a moment before its execution report).
CONFIRM_AFTER = 1.0
#: Seconds between broker polls while an adopted order is open: its fills reach this client
#: only by polling, and an unrecorded fill is a ledger that disagrees with the broker.
ADOPTED_POLL = 2.0


class Oversight:
    """Adoption, revival and foreign-order bookkeeping after each reconciliation."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def load(self) -> None:
        """The refs already reported as foreign (from the ledger) and the first periodic check; once."""
        st = self.ctx.state
        if st.foreign_refs is None:
            st.foreign_refs = {e["detail"].split(" ", 1)[0] for e in self.ctx.ledger.risk_events("foreign_order")}
            st.next_check = time.monotonic() + self.ctx.cfg.reconcile.check_every
            st.adopted_blocks = {}

    def apply(self, res: ReconcileResult, now: pd.Timestamp) -> None:
        """Alerts and bookkeeping for adopted, revived and foreign orders (after the updates)."""
        state = self.ctx.state
        self.load()
        for st in res.adopted:
            state.working.pop(st.order_ref, None)  # never time it out: this client cannot cancel it
            if st.order_ref in state.adopted:
                continue
            state.adopted[st.order_ref] = st.client_id
            self.ctx.ledger.risk_event(
                now, "adopted", f"{st.order_ref} owned by client id {st.client_id}", self.ctx.run_id
            )
            self.ctx.alert(
                "order_adopted",
                f"order {st.order_ref} ({st.side} {st.quantity:g} {st.symbol}) is working under client id "
                f"{st.client_id}, not {self.ctx.cfg.gateway.client_id}: adopted and tracked, never re-sent. This client "
                "cannot cancel it; `bridge stop` (global cancel) or TWS can",
                "warning",
                order_ref=st.order_ref,
                client_id=st.client_id,
            )
        still_open = {r["order_ref"] for r in self.ctx.ledger.open_orders()}
        for ref in [r for r in state.adopted if r not in still_open]:
            del state.adopted[ref]
        if state.adopted:  # poll soon: nothing else tells this client that the order filled
            state.next_check = min(state.next_check, time.monotonic() + ADOPTED_POLL)
        else:
            state.adopted_blocks.clear()  # a later adoption starts its own count
        for ref in res.revived:
            self.ctx.ledger.risk_event(now, "revived", f"{ref} voided earlier, listed by the broker", self.ctx.run_id)
            self.ctx.alert(
                "order_revived",
                f"order {ref} was voided but the broker has it: revived with its state and fills "
                "(its bar may have been decided again: check positions)",
                "critical",
                order_ref=ref,
            )
        for f in res.foreign_fills:
            self.foreign_fill(f)
        for o in res.foreign_open:
            self.foreign_ref(
                o.order_ref,
                f"open order {o.order_ref} ({o.side} {o.quantity:g} {o.symbol}) is not in this ledger: "
                "another bridge or ledger trades this account (not a symbol this bridge manages)",
            )

    def foreign_fill(self, f: Fill) -> None:
        """An execution of an order this ledger does not know: report it once per ref, never record it."""
        self.foreign_ref(
            f.order_ref,
            f"execution {f.exec_id} of order {f.order_ref} ({f.side} {f.quantity:g} {f.symbol}) is not "
            "in this ledger: another bridge or ledger trades this account; not recorded here",
            exec_id=f.exec_id,
        )

    def foreign_ref(self, ref: str, message: str, **fields: object) -> None:
        """Report an orderRef of another ledger once (risk event ``foreign_order``, alert)."""
        st = self.ctx.state
        self.load()
        assert st.foreign_refs is not None
        if ref in st.foreign_refs:
            return
        st.foreign_refs.add(ref)
        self.ctx.ledger.risk_event(self.ctx.clock.now(), "foreign_order", f"{ref} {message}", self.ctx.run_id)
        self.ctx.alert(
            "foreign_execution" if "exec_id" in fields else "foreign_order", message, "error", order_ref=ref, **fields
        )
