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

from bridge.brokers.protocol import ConnectionEvent, Fill
from bridge.errors import BrokerDisconnected, BrokerError
from bridge.ledger.store import iso
from bridge.reconcile import ReconcileResult
from bridge.runtime.context import RunnerBase

log = logging.getLogger("bridge.runner")
#: Seconds between a periodic check that found a mismatch and the check that confirms it
#: (a fill can reach the position stream a moment before its execution report).
CONFIRM_AFTER = 1.0
#: Seconds between broker polls while an adopted order is open: its fills reach this client
#: only by polling, and an unrecorded fill is a ledger that disagrees with the broker.
ADOPTED_POLL = 2.0


class OversightMixin(RunnerBase):
    """Adoption, revival, foreign executions and the periodic position comparison."""

    _foreign_refs: set[str]
    _next_check: float
    _adopted_blocks: dict[str, int]

    def _oversight_init(self) -> None:
        if not hasattr(self, "_foreign_refs"):
            self._foreign_refs = {e["detail"].split(" ", 1)[0] for e in self.ledger.risk_events("foreign_order")}
            self._next_check = time.monotonic() + self.cfg.reconcile.check_every
            self._adopted_blocks = {}

    def _void_rows(self) -> list[dict[str, object]]:
        """Void orders of the last few days (the broker lists today's orders only)."""
        since = iso(self.clock.now() - pd.Timedelta(days=4))
        return self.ledger.rows("SELECT * FROM orders WHERE status = 'void' AND created_at >= ?", (since,))

    def _apply_oversight(self, res: ReconcileResult, now: pd.Timestamp) -> None:
        """Alerts and bookkeeping for adopted, revived and foreign orders (after the updates)."""
        self._oversight_init()
        for st in res.adopted:
            self.working.pop(st.order_ref, None)  # never time it out: this client cannot cancel it
            if st.order_ref in self.adopted:
                continue
            self.adopted[st.order_ref] = st.client_id
            self.ledger.risk_event(now, "adopted", f"{st.order_ref} owned by client id {st.client_id}", self.run_id)
            self._alert("order_adopted", f"order {st.order_ref} ({st.side} {st.quantity:g} {st.symbol}) is working under client id "
                        f"{st.client_id}, not {self.cfg.gateway.client_id}: adopted and tracked, never re-sent. This client "
                        "cannot cancel it; `bridge stop` (global cancel) or TWS can", "warning",
                        order_ref=st.order_ref, client_id=st.client_id)
        still_open = {r["order_ref"] for r in self.ledger.open_orders()}
        for ref in [r for r in self.adopted if r not in still_open]:
            del self.adopted[ref]
        if self.adopted:  # poll soon: nothing else tells this client that the order filled
            self._next_check = min(self._next_check, time.monotonic() + ADOPTED_POLL)
        else:
            self._adopted_blocks.clear()  # a later adoption starts its own count
        for ref in res.revived:
            self.ledger.risk_event(now, "revived", f"{ref} voided earlier, listed by the broker", self.run_id)
            self._alert("order_revived", f"order {ref} was voided but the broker has it: revived with its state and fills "
                        "(its bar may have been decided again: check positions)", "critical", order_ref=ref)
        for f in res.foreign_fills:
            self._foreign_fill(f)
        for o in res.foreign_open:
            self._foreign_ref(o.order_ref, f"open order {o.order_ref} ({o.side} {o.quantity:g} {o.symbol}) is not in this ledger: "
                              "another bridge or ledger trades this account (not a symbol this bridge manages)")

    def _foreign_fill(self, f: Fill) -> None:
        """An execution of an order this ledger does not know: report it once per ref, never record it."""
        self._foreign_ref(f.order_ref, f"execution {f.exec_id} of order {f.order_ref} ({f.side} {f.quantity:g} {f.symbol}) is not "
                          "in this ledger: another bridge or ledger trades this account; not recorded here", exec_id=f.exec_id)

    def _foreign_ref(self, ref: str, message: str, **fields: object) -> None:
        """Report an orderRef of another ledger once (risk event ``foreign_order``, alert)."""
        self._oversight_init()
        if ref in self._foreign_refs:
            return
        self._foreign_refs.add(ref)
        self.ledger.risk_event(self.clock.now(), "foreign_order", f"{ref} {message}", self.run_id)
        self._alert("foreign_execution" if "exec_id" in fields else "foreign_order", message, "error", order_ref=ref, **fields)

    def _position_check(self) -> None:
        """Every ``reconcile.check_every`` seconds: reconcile again (every client's orders and
        executions, positions); a mismatch must survive a second look to halt."""
        self._oversight_init()
        mono = time.monotonic()
        if mono < self._next_check:
            return
        self._next_check = mono + (ADOPTED_POLL if self.adopted else self.cfg.reconcile.check_every)
        halted = self.ledger.risk_state().halted  # still reconciled: adopted orders' fills must be recorded
        try:
            if self._reconcile("periodic", act_on_mismatch=False).ok or halted:
                return
            deadline = time.monotonic() + CONFIRM_AFTER
            while time.monotonic() < deadline:
                self._pump(0.05)
            self._reconcile("periodic check")
        except BrokerDisconnected as err:
            self._on_connection(ConnectionEvent("disconnected", err.what))
        except BrokerError as err:  # a timed-out request: the next check tries again
            log.warning("periodic reconcile failed", extra={"event": "periodic_check_failed", "detail": err.render()})
            self._alert("periodic_check_failed", f"periodic reconcile failed ({err.what}): retrying in "
                        f"{self.cfg.reconcile.check_every:g} s", "warning")

    def _blocked_by_adopted(self, sym: str) -> bool:
        """A decision on ``sym`` finds only adopted orders working: poll the broker (they may
        have filled or been cancelled meanwhile); True if that cleared them. Still blocked on
        a second bar: halt, naming the order, its owner and the fix (see the module docstring)."""
        self._oversight_init()
        self._reconcile("adopted order", act_on_mismatch=False)
        rows = self.ledger.open_orders(sym)
        if not rows:
            self._adopted_blocks.pop(sym, None)
            return True
        n = self._adopted_blocks[sym] = self._adopted_blocks.get(sym, 0) + 1
        if n < 2 or self.ledger.risk_state().halted:
            return False
        now = self.clock.now()
        me = self.cfg.gateway.client_id
        owners = ", ".join(f"{r['order_ref']} ({r['side']} {float(r['quantity']) - float(r['filled'] or 0):g} {sym} left, "
                           f"client id {self.adopted.get(r['order_ref'], '?')})" for r in rows)
        ids = sorted({str(self.adopted[r["order_ref"]]) for r in rows if r["order_ref"] in self.adopted})
        reason = (f"{sym}: the strategy's new target was blocked on {n} bars by working order(s) of another client id: {owners}; "
                  f"this client (id {me}) cannot cancel them (IB lets only the placing client), so the position cannot converge")
        fix = (f"cancel it in TWS, or `bridge stop` (global cancel), or restart with `--client-id {'/'.join(ids) or '?'}` "
               "(which can cancel it); then `bridge resume`")
        self.ledger.set_risk_state(now, halted=True, reason=f"{reason}. Fix: {fix}", since=iso(now))
        self.ledger.risk_event(now, "halt", f"{reason}. Fix: {fix}", self.run_id)
        self._alert("adopted_order_blocks", f"{reason} -- trading halted. Fix: {fix}", "critical", symbol=sym,
                    order_ref=rows[0]["order_ref"], client_id=self.adopted.get(rows[0]["order_ref"]))
        log.critical("adopted order blocks the symbol: halted", extra={"event": "adopted_order_blocks", "symbol": sym,
                                                                        "order_ref": rows[0]["order_ref"]})
        return False

    # declared for the type checker (SessionMixin implements them)
    def _reconcile(self, why: str, act_on_mismatch: bool = True) -> ReconcileResult:
        raise NotImplementedError
