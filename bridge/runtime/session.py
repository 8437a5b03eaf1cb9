"""The broker session: connecting, the account check, history, events, reconnects."""

from __future__ import annotations

import logging
import time
from collections import deque

import pandas as pd

from bridge.brokers.protocol import (
    BarEvent,
    ConnectionEvent,
    ErrorEvent,
    Event,
    FillEvent,
    OrderEvent,
)
from bridge.errors import AccountError, BrokerDisconnected, GatewayUnreachable, StaleData
from bridge.orders import PREFIX
from bridge.runtime.context import Context
from bridge.runtime.decision import DecisionPath
from bridge.runtime.reconciling import Reconciler
from bridge.runtime.recovery import TRANSIENT, transient
from bridge.runtime.rejections import on_rejected

log = logging.getLogger("bridge.runner")


class Session:
    """Connection lifecycle and broker events."""

    def __init__(self, ctx: Context, decision: DecisionPath, reconciler: Reconciler) -> None:
        self.ctx = ctx
        self.decision = decision
        self.reconciler = reconciler
        #: events polled but not handled yet: the rest of the loop's batch. A wait inside a handler
        #: (``pump``) must see them first, e.g. a child's fill that arrived with the bar being decided
        self.backlog: deque[Event] = deque()

    def handle_polled(self, timeout: float) -> None:
        """Poll the broker and handle the batch, one event at a time from :attr:`backlog`."""
        self.backlog.extend(self.ctx.broker.poll(timeout))
        while self.backlog:
            self.handle(self.backlog.popleft())

    def pump(self, timeout: float) -> None:
        """Handle the broker's events for up to ``timeout`` s while waiting (a cancel, the kill
        switch): completed bars are stored and decided on the next loop iteration."""
        events = list(self.backlog)  # already received: before anything new
        self.backlog.clear()
        events += self.ctx.broker.poll(0.0 if events else timeout)
        for event in events:
            if isinstance(event, BarEvent):
                self.decision.on_bar_deferred(event)
            else:
                self.handle(event)

    def connect_with_retries(self) -> None:
        g = self.ctx.cfg.gateway
        delay = g.backoff_initial
        for attempt in range(1, g.connect_attempts + 1):
            try:
                self.ctx.broker.connect()
                return
            except GatewayUnreachable as err:
                if attempt == g.connect_attempts:
                    raise
                log.warning(
                    "connect failed: retrying",
                    extra={"event": "connect_retry", "attempt": attempt, "delay_s": delay, "detail": err.what},
                )
                time.sleep(delay)
                delay = min(delay * 2, g.backoff_max)

    def check_account(self) -> None:
        acct = self.ctx.broker.account_id()
        mode = self.ctx.cfg.mode
        if mode == "paper" and not acct.upper().startswith("D"):
            self.ctx.broker.disconnect()
            raise AccountError(
                "--paper connected to a live account: refusing to trade",
                found=acct,
                fix="connect to the paper gateway (port 4002) or use --live with --confirm-account",
            )
        if mode == "live":
            want = self.ctx.cfg.gateway.account
            if not want:
                self.ctx.broker.disconnect()
                raise AccountError(
                    "live trading needs the account id confirmed",
                    fix="pass --confirm-account ID or type it at the prompt",
                )
            if want.upper().startswith("D") or acct.upper().startswith("D"):
                self.ctx.broker.disconnect()
                raise AccountError(
                    "refusing a paper account id in --live mode", found=acct, fix="use --paper for paper accounts"
                )
            if acct != want:
                self.ctx.broker.disconnect()
                raise AccountError(
                    "the confirmed account does not match the gateway's account",
                    found=f"confirmed {want}, gateway {acct}",
                )

    def subscribe_all(self) -> None:
        now = self.ctx.clock.now()
        for sym, w in self.ctx.windows.items():
            frame = self.ctx.broker.subscribe_bars(sym, self.ctx.interval, self.ctx.capacity + 1)
            last = pd.Timestamp(frame.index[-1])
            last = last.tz_localize("UTC") if last.tz is None else last.tz_convert("UTC")
            complete = now >= self.ctx.calendar.due(last, self.ctx.interval) + pd.Timedelta(
                seconds=self.ctx.cfg.data.complete_grace
            )
            w.seed(frame, last_is_complete=complete)
            self.ctx.state.last_update[sym] = now
            gap = w.gap_in_window()
            if gap is not None:
                self.ctx.alert(
                    "missing_bars",
                    f"{sym}: bars missing between {gap[0]} and {gap[1]}: not trading it until the window is whole",
                    "error",
                    symbol=sym,
                )
            log.info(
                "history seeded",
                extra={
                    "event": "history",
                    "symbol": sym,
                    "bars": len(w),
                    "last": str(w.last_time),
                    "forming": str(w.forming.time) if w.forming else None,
                },
            )

    def handle(self, event: Event) -> None:
        try:
            if isinstance(event, BarEvent):
                self.on_bar(event)
            elif isinstance(event, OrderEvent):
                self.on_order(event)
            elif isinstance(event, FillEvent):
                self.on_fill(event)
            elif isinstance(event, ConnectionEvent):
                self.on_connection(event)
            elif isinstance(event, ErrorEvent):
                self.on_error(event)
        except BrokerDisconnected as err:
            self.ctx.disconnected(err.what)

    def on_bar(self, ev: BarEvent) -> None:
        w = self.ctx.windows.get(ev.symbol)
        if w is None:
            return
        self.ctx.state.last_update[ev.symbol] = self.ctx.clock.now()
        if ev.complete:
            try:
                new = w.add_complete(ev.bar)
            except StaleData as err:
                self.ctx.refuse(ev.symbol, ev.bar.time, "invalid_bar", err.what)
                return
            if new:
                self.ctx.state.metrics["bars"] += 1
                self.decision.decide(ev.symbol, ev.received)
        else:
            w.set_forming(ev.bar)

    def on_order(self, ev: OrderEvent) -> None:
        st = ev.order
        change = self.ctx.sync.order_event(st)
        if change is None:
            return
        old, new = change
        if old == "unknown":
            self.ctx.alert(
                "unknown_order",
                f"broker reports order {st.order_ref} that the ledger does not know",
                "error",
                order_ref=st.order_ref,
            )
            return
        log.info(
            "order status",
            extra={"event": "order_status", "order_ref": st.order_ref, "status": new, "filled": st.filled},
        )
        if old == "void":
            self.ctx.ledger.risk_event(
                self.ctx.clock.now(),
                "revived",
                f"{st.order_ref} voided earlier, reported {new} by the broker",
                self.ctx.run_id,
            )
            self.ctx.alert(
                "order_revived",
                f"order {st.order_ref} was voided but the broker reports it {new}: revived "
                "(its bar may have been decided again: check positions)",
                "critical",
                order_ref=st.order_ref,
            )
        if new in ("filled", "cancelled", "rejected"):
            self.ctx.state.working.pop(st.order_ref, None)
            self.ctx.state.positions_dirty = True
            why = self.ctx.state.cancel_reason.pop(st.order_ref, "")
            if new == "rejected":
                self.ctx.state.metrics["rejected"] += 1
                self.ctx.alert(
                    "order_rejected",
                    f"order {st.order_ref} rejected: {st.message}",
                    "error",
                    order_ref=st.order_ref,
                    code=st.error_code,
                )
                on_rejected(self.ctx, st.order_ref, st.message, st.error_code)
            elif new == "cancelled" and why == "timeout_market":
                self.decision.replace_with_market(st.order_ref, st.quantity - st.filled)

    def on_fill(self, ev: FillEvent) -> None:
        f = ev.fill
        if self.ctx.ledger.order(f.order_ref) is None:
            if f.order_ref.startswith(PREFIX):
                self.reconciler.oversight.foreign_fill(f)
            return
        if self.ctx.sync.fill(f):
            if self.ctx.exits:
                self.decision.relevel(f.order_ref)  # an entry's children move to levels from its fill
                self.reconciler.protector.after_fill(f.order_ref)  # an exit: the rest re-protected
            self.ctx.state.metrics["fills"] += 1
            self.ctx.state.positions_dirty = True
            self.ctx.alert(
                "fill",
                f"fill {f.side} {f.quantity:g} {f.symbol} @ {f.price:g} (commission {f.commission:g})",
                "info",
                order_ref=f.order_ref,
                exec_id=f.exec_id,
            )

    def on_error(self, ev: ErrorEvent) -> None:
        level = "error" if ev.code < 2000 else "warning"
        self.ctx.alert(
            "broker_error", f"IB {ev.code}: {ev.message}", level, code=ev.code, order_ref=ev.order_ref, symbol=ev.symbol
        )

    def on_connection(self, ev: ConnectionEvent) -> None:
        if ev.kind == "disconnected":
            self.ctx.disconnected(ev.message)
        elif ev.kind == "lost":
            if self.ctx.state.phase == "ready":
                self.ctx.state.phase = "lost"
            self.ctx.ledger.risk_event(self.ctx.clock.now(), "connectivity_lost", ev.message, self.ctx.run_id)
            self.ctx.alert("connectivity_lost", f"IB 1100: {ev.message} (orders paused)", "error")
        elif ev.kind in ("restored", "restored_data_lost"):
            self.ctx.alert(
                "connectivity_restored",
                f"IB {'1101' if ev.kind == 'restored_data_lost' else '1102'}: {ev.message}",
                "warning",
            )
            self.resync(resubscribe=ev.kind == "restored_data_lost")

    def resync(self, resubscribe: bool) -> None:
        try:
            self.reconciler.run("restored")
            self.decision.relevel_open()
            if resubscribe:
                self.subscribe_all()
            self.ctx.state.phase = "ready"
            self.decision.decide_pending()
        except BrokerDisconnected as err:
            self.ctx.disconnected(err.what)
        except TRANSIENT as err:
            transient(self.ctx, err, "restored")

    def reconnect(self) -> None:
        if time.monotonic() < self.ctx.state.reconnect_at:
            return
        g = self.ctx.cfg.gateway
        try:
            self.ctx.broker.disconnect()
            self.ctx.broker.connect()
            self.check_account()
            self.ctx.state.phase = "resyncing"
            self.reconciler.run("reconnect")
            self.decision.relevel_open()
            self.subscribe_all()
        except TRANSIENT as err:
            self.ctx.state.metrics["reconnects"] += 1
            transient(self.ctx, err, "reconnect")
            return
        except (GatewayUnreachable, BrokerDisconnected) as err:
            self.ctx.state.reconnect_attempt += 1
            delay = min(g.backoff_initial * 2**self.ctx.state.reconnect_attempt, g.backoff_max)
            self.ctx.state.reconnect_at = time.monotonic() + delay
            self.ctx.state.phase = "disconnected"
            log.warning(
                "reconnect failed",
                extra={
                    "event": "reconnect_failed",
                    "attempt": self.ctx.state.reconnect_attempt,
                    "delay_s": delay,
                    "detail": err.what,
                },
            )
            return
        self.ctx.state.phase = "ready"
        self.ctx.state.metrics["reconnects"] += 1
        self.ctx.alert("reconnected", "reconnected, reconciled and resubscribed: trading resumed", "warning")
        self.decision.decide_pending()
