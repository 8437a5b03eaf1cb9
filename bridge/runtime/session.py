"""The broker session: connecting, the account check, history, events, reconciliation, reconnects."""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd

from bridge.brokers.protocol import (
    BarEvent,
    ConnectionEvent,
    ErrorEvent,
    Event,
    FillEvent,
    OrderEvent,
)
from bridge.control import managed_symbols
from bridge.errors import AccountError, BrokerDisconnected, GatewayUnreachable, StaleData
from bridge.ledger.store import iso
from bridge.orders import PREFIX
from bridge.reconcile import ReconcileResult, reconcile
from bridge.runtime.oversight import OversightMixin
from bridge.runtime.recovery import TRANSIENT, RecoveryMixin
from bridge.runtime.rejections import on_rejected

log = logging.getLogger("bridge.runner")


class SessionMixin(OversightMixin, RecoveryMixin):
    """Connection lifecycle and broker events."""

    def _connect_with_retries(self) -> None:
        g = self.cfg.gateway
        delay = g.backoff_initial
        for attempt in range(1, g.connect_attempts + 1):
            try:
                self.broker.connect()
                return
            except GatewayUnreachable as err:
                if attempt == g.connect_attempts:
                    raise
                log.warning("connect failed: retrying", extra={"event": "connect_retry", "attempt": attempt, "delay_s": delay,
                                                               "detail": err.what})
                time.sleep(delay)
                delay = min(delay * 2, g.backoff_max)

    def _check_account(self) -> None:
        acct = self.broker.account_id()
        mode = self.cfg.mode
        if mode == "paper" and not acct.upper().startswith("D"):
            self.broker.disconnect()
            raise AccountError("--paper connected to a live account: refusing to trade", found=acct,
                               fix="connect to the paper gateway (port 4002) or use --live with --confirm-account")
        if mode == "live":
            want = self.cfg.gateway.account
            if not want:
                self.broker.disconnect()
                raise AccountError("live trading needs the account id confirmed", fix="pass --confirm-account ID or type it at the prompt")
            if want.upper().startswith("D") or acct.upper().startswith("D"):
                self.broker.disconnect()
                raise AccountError("refusing a paper account id in --live mode", found=acct, fix="use --paper for paper accounts")
            if acct != want:
                self.broker.disconnect()
                raise AccountError("the confirmed account does not match the gateway's account", found=f"confirmed {want}, gateway {acct}")

    def _subscribe_all(self) -> None:
        now = self.clock.now()
        for sym, w in self.windows.items():
            frame = self.broker.subscribe_bars(sym, self.interval, self.capacity + 1)
            last = pd.Timestamp(frame.index[-1])
            last = last.tz_localize("UTC") if last.tz is None else last.tz_convert("UTC")
            complete = now >= self.calendar.due(last, self.interval) + pd.Timedelta(seconds=self.cfg.data.complete_grace)
            w.seed(frame, last_is_complete=complete)
            self.last_update[sym] = now
            gap = w.gap_in_window()
            if gap is not None:
                self._alert("missing_bars", f"{sym}: bars missing between {gap[0]} and {gap[1]}: not trading it until the window is whole",
                            "error", symbol=sym)
            log.info("history seeded", extra={"event": "history", "symbol": sym, "bars": len(w), "last": str(w.last_time),
                                               "forming": str(w.forming.time) if w.forming else None})

    def handle(self, event: Event) -> None:
        try:
            if isinstance(event, BarEvent):
                self._on_bar(event)
            elif isinstance(event, OrderEvent):
                self._on_order(event)
            elif isinstance(event, FillEvent):
                self._on_fill(event)
            elif isinstance(event, ConnectionEvent):
                self._on_connection(event)
            elif isinstance(event, ErrorEvent):
                self._on_error(event)
        except BrokerDisconnected as err:
            self._on_connection(ConnectionEvent("disconnected", err.what))

    def _on_bar(self, ev: BarEvent) -> None:
        w = self.windows.get(ev.symbol)
        if w is None:
            return
        self.last_update[ev.symbol] = self.clock.now()
        if ev.complete:
            try:
                new = w.add_complete(ev.bar)
            except StaleData as err:
                self._refuse(ev.symbol, ev.bar.time, "invalid_bar", err.what)
                return
            if new:
                self.metrics["bars"] += 1
                self._decide(ev.symbol, ev.received)
        else:
            w.set_forming(ev.bar)

    def _on_order(self, ev: OrderEvent) -> None:
        st = ev.order
        change = self.sync.order_event(st)
        if change is None:
            return
        old, new = change
        if old == "unknown":
            self._alert("unknown_order", f"broker reports order {st.order_ref} that the ledger does not know", "error", order_ref=st.order_ref)
            return
        log.info("order status", extra={"event": "order_status", "order_ref": st.order_ref, "status": new, "filled": st.filled})
        if old == "void":
            self.ledger.risk_event(self.clock.now(), "revived", f"{st.order_ref} voided earlier, reported {new} by the broker", self.run_id)
            self._alert("order_revived", f"order {st.order_ref} was voided but the broker reports it {new}: revived "
                        "(its bar may have been decided again: check positions)", "critical", order_ref=st.order_ref)
        if new in ("filled", "cancelled", "rejected"):
            self.working.pop(st.order_ref, None)
            self._positions_dirty = True
            why = self.cancel_reason.pop(st.order_ref, "")
            if new == "rejected":
                self.metrics["rejected"] += 1
                self._alert("order_rejected", f"order {st.order_ref} rejected: {st.message}", "error", order_ref=st.order_ref,
                            code=st.error_code)
                on_rejected(self, st.order_ref, st.message, st.error_code)
            elif new == "cancelled" and why == "timeout_market":
                self._replace_with_market(st.order_ref, st.quantity - st.filled)

    def _on_fill(self, ev: FillEvent) -> None:
        f = ev.fill
        if self.ledger.order(f.order_ref) is None:
            if f.order_ref.startswith(PREFIX):
                self._foreign_fill(f)
            return
        if self.sync.fill(f):
            self.metrics["fills"] += 1
            self._positions_dirty = True
            self._alert("fill", f"fill {f.side} {f.quantity:g} {f.symbol} @ {f.price:g} (commission {f.commission:g})", "info",
                        order_ref=f.order_ref, exec_id=f.exec_id)

    def _on_error(self, ev: ErrorEvent) -> None:
        level = "error" if ev.code < 2000 else "warning"
        self._alert("broker_error", f"IB {ev.code}: {ev.message}", level, code=ev.code, order_ref=ev.order_ref, symbol=ev.symbol)

    def _on_connection(self, ev: ConnectionEvent) -> None:
        if ev.kind == "disconnected":
            if self.state != "disconnected":
                self.state = "disconnected"
                self.metrics["disconnects"] += 1
                self._reconnect_attempt = 0
                self._reconnect_at = time.monotonic() + min(self.cfg.gateway.backoff_initial, 1.0)
                self.ledger.risk_event(self.clock.now(), "disconnect", ev.message, self.run_id)
                self._alert("disconnected", f"lost the gateway connection ({ev.message}): orders stopped, reconnecting", "error")
        elif ev.kind == "lost":
            if self.state == "ready":
                self.state = "lost"
            self.ledger.risk_event(self.clock.now(), "connectivity_lost", ev.message, self.run_id)
            self._alert("connectivity_lost", f"IB 1100: {ev.message} (orders paused)", "error")
        elif ev.kind in ("restored", "restored_data_lost"):
            self._alert("connectivity_restored", f"IB {'1101' if ev.kind == 'restored_data_lost' else '1102'}: {ev.message}", "warning")
            self._resync(resubscribe=ev.kind == "restored_data_lost")

    def _resync(self, resubscribe: bool) -> None:
        try:
            self._reconcile("restored")
            if resubscribe:
                self._subscribe_all()
            self.state = "ready"
            self._decide_pending()
        except BrokerDisconnected as err:
            self._on_connection(ConnectionEvent("disconnected", err.what))
        except TRANSIENT as err:
            self._transient(err, "restored")

    def _reconcile(self, why: str, act_on_mismatch: bool = True) -> ReconcileResult:
        """Compare with the broker (every client's orders) and apply the result; a mismatch
        halts (``reconcile.on_mismatch``) unless ``act_on_mismatch`` is False."""
        now = self.clock.now()
        self.broker.sync()
        managed = managed_symbols(self.ledger, self.symbols)
        positions = self.broker.positions()
        rs = self.ledger.risk_state()
        if not self.ledger.has_baseline() or rs.rebaseline:
            base = {s: p.quantity for s, p in positions.items() if s in managed}
            self.ledger.set_baseline(base, managed, now)
            self.ledger.risk_event(now, "baseline", f"positions baseline {base} ({why})", self.run_id)
            if rs.rebaseline:
                self.ledger.set_risk_state(now, rebaseline=False)
        res = reconcile(self.ledger.open_orders(), self.ledger.all_refs(), self.ledger.fill_ids(), self.ledger.expected_positions(),
                        self.broker.open_orders(), self.broker.completed_orders(), self.broker.executions(), positions, managed, PREFIX,
                        ledger_void=self._void_rows())
        for f in res.new_fills:
            self.sync.fill(f, source="reconcile")
            self._alert("fill_recovered", f"recovered fill {f.side} {f.quantity:g} {f.symbol} @ {f.price:g} ({f.order_ref})", "warning",
                        order_ref=f.order_ref, exec_id=f.exec_id)
        for fix in res.updates:
            fields: dict[str, Any] = {"status": fix.status, "filled": fix.filled}
            if fix.avg_fill_price:
                fields["avg_fill_price"] = fix.avg_fill_price
            if fix.perm_id:
                fields["perm_id"] = fix.perm_id
            if fix.broker_order_id:
                fields["broker_order_id"] = fix.broker_order_id
            row = self.ledger.order(fix.order_ref)
            if row and row["sent_at"] is None:
                fields["sent_at"] = row["created_at"]
            self.ledger.update_order(fix.order_ref, now, kind="revived" if fix.order_ref in res.revived else "reconciled",
                                     detail=fix.note, **fields)
            if fix.status == "rejected" and row and row["status"] != "rejected":
                on_rejected(self, fix.order_ref, fix.note)  # a rejection the runner did not see live
        self.working = {r["order_ref"]: self.clock.monotonic() for r in self.ledger.open_orders() if r["order_type"] == "LMT"}
        self._apply_oversight(res, now)
        if why not in ("start", "reconnect"):
            # same connection (1101/1102, resume): an order the broker does not list may still be
            # in flight; only a fresh connection proves it never arrived
            for ref in res.voided:
                log.warning("order not listed by the broker", extra={"event": "reconcile_unlisted", "order_ref": ref, "why": why})
            res.voided = []
        for ref in res.voided:
            row = self.ledger.order(ref)
            self.ledger.update_order(ref, now, kind="void", detail="the broker never received it", status="void")
            if row and row["purpose"] == "signal":
                self.ledger.rollback_strategy_state(self.skey, row["symbol"], now, row["prev_target"], row["prev_bar"], row["bar_time"])
            self._alert("order_void", f"order {ref} was recorded but never reached the broker: voided", "warning", order_ref=ref)
        if res.mismatches and act_on_mismatch:
            text = "; ".join(res.mismatches)
            self.ledger.risk_event(now, "mismatch", text, self.run_id)
            if self.cfg.reconcile.on_mismatch == "halt":
                self.ledger.set_risk_state(now, halted=True, reason=f"reconciliation mismatch: {text}", since=iso(now))
            self._alert("reconcile_mismatch", f"reconciliation mismatch ({why}): {text}"
                        + (" -- trading halted until `bridge resume`" if self.cfg.reconcile.on_mismatch == "halt" else ""), "critical")
        self._positions_dirty = True
        log.info("reconciled", extra={"event": "reconciled", "why": why, "summary": res.summary(),
                                       "expected": res.expected_positions, "broker": res.broker_positions})
        return res

    def _maybe_reconnect(self) -> None:
        if time.monotonic() < self._reconnect_at:
            return
        g = self.cfg.gateway
        try:
            self.broker.disconnect()
            self.broker.connect()
            self._check_account()
            self.state = "resyncing"
            self._reconcile("reconnect")
            self._subscribe_all()
        except TRANSIENT as err:
            self.metrics["reconnects"] += 1
            self._transient(err, "reconnect")
            return
        except (GatewayUnreachable, BrokerDisconnected) as err:
            self._reconnect_attempt += 1
            delay = min(g.backoff_initial * 2 ** self._reconnect_attempt, g.backoff_max)
            self._reconnect_at = time.monotonic() + delay
            self.state = "disconnected"
            log.warning("reconnect failed", extra={"event": "reconnect_failed", "attempt": self._reconnect_attempt, "delay_s": delay,
                                                    "detail": err.what})
            return
        self.state = "ready"
        self.metrics["reconnects"] += 1
        self._alert("reconnected", "reconnected, reconciled and resubscribed: trading resumed", "warning")
        self._decide_pending()
