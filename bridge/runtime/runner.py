"""The runner: on every completed bar, kernel -> target -> size -> risk gate -> order.

One thread, one loop (``step``): poll the broker for events (bars, order statuses,
fills with commissions, connection changes), handle them, then run the periodic tasks
(control requests from ``bridge stop``/``resume``, the daily loss check, limit-order
timeouts, end-of-day rules, reconnects with exponential backoff, heartbeat and health).

Timing is the backtest's (``quantlab/kernels/sim.py``): the target at bar ``i`` is known
at its close; if it is finite and differs from the **last target acted on** (kept in the
ledger, so a restart never re-trades an unchanged target) the position is resized right
away, i.e. at the open of bar ``i + 1`` when the bar completes because bar ``i + 1``
started. Sizing uses the equity marked at bar ``i``'s close. Orders are written to the
ledger (``intent``, committed) **before** they are placed, with deterministic orderRefs.
"""

from __future__ import annotations

import gc
import logging
import math
import signal
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from bridge.approvals import approve_in_runner
from bridge.brokers.protocol import ConnectionEvent
from bridge.control import result_text, runner_alive
from bridge.errors import BridgeError, BrokerDisconnected, LedgerError
from bridge.ledger.lease import LedgerLease
from bridge.ops.logs import CONTEXT
from bridge.risk import Exposure, OrderIntent, daily_loss_breached
from bridge.runtime.context import CONTROL_EVERY, CRASH_ENV, DEFAULT_MAX_AGE, HEARTBEAT_EVERY
from bridge.runtime.ops_hook import tick as ops_tick
from bridge.runtime.recovery import TRANSIENT
from bridge.runtime.session import SessionMixin

log = logging.getLogger("bridge.runner")
__all__ = ["CONTROL_EVERY", "CRASH_ENV", "DEFAULT_MAX_AGE", "HEARTBEAT_EVERY", "Runner", "settle_memory"]


class Runner(SessionMixin):
    """One strategy on a set of symbols, against one broker and one ledger."""

    def start(self) -> None:
        """Connect (with retries), check the account, qualify, reconcile, seed history."""
        CONTEXT.run_id = self.run_id
        self.claim_ledger()  # before connecting: a second runner never reaches the gateway
        other = runner_alive(self.ledger, self.clock.now())
        if other is not None:
            raise LedgerError("another bridge is running on this ledger", found=f"run {other['run_id']} (pid {other['pid']})",
                              fix="stop it first (`bridge stop --shutdown`) or use another --ledger")
        self._connect_with_retries()
        self._check_account()
        self.broker.qualify(self.symbols)
        now = self.clock.now()
        self.ledger.start_run(self.run_id, now, self.cfg.mode + ("-dry" if self.cfg.dry_run else ""), self.spec.name,
                              self.symbols, self.skey, self.broker.account_id(), self.cfg.public_dict())
        log.info("bridge starting", extra={"event": "start", "mode": self.cfg.mode, "dry_run": self.cfg.dry_run,
                                            "strategy": self.skey, "symbols": self.symbols, "bar": self.interval.name,
                                            "account": self.broker.account_id(), "ledger": str(self.ledger.path)})
        try:
            self._reconcile("start")
            self._subscribe_all()
        except TRANSIENT as err:  # e.g. IB 162 on the history: retried like after a reconnect
            self._transient(err, "start")
        self._loss_check()
        if self.state == "init":
            self.state = "ready"
        self._heartbeat(force=True)
        self._decide_pending()

    def claim_ledger(self) -> None:
        """Take the ledger's lock (``bridge.ledger.lease``) or raise naming its holder; idempotent."""
        if self.lease is None:
            self.lease = LedgerLease(self.ledger.path)
        self.lease.acquire(self.run_id)

    def run(self, until: Callable[[], bool] | None = None, poll: float = 0.25) -> None:
        """Loop until stopped (``stop()``, SIGTERM/SIGINT, ``until()``, or the replay ends)."""
        while not self._stop:
            self.step(poll)
            if until is not None and until():
                break
            if getattr(self.broker, "finished", False):
                break

    def step(self, timeout: float = 0.25) -> None:
        """One loop iteration: handle broker events, then the periodic tasks. A transient broker
        or data error, or a drop, never escapes: the runner only exits by command."""
        try:
            for event in self.broker.poll(timeout):
                self.handle(event)
            self._periodic()
        except TRANSIENT as err:
            self._transient(err, "loop")
        except BrokerDisconnected as err:
            self._on_connection(ConnectionEvent("disconnected", err.what))

    def stop(self) -> None:
        self._stop = True

    def close(self, state: str = "stopped") -> None:
        """Record the end of the run and disconnect."""
        try:
            if self.broker.is_connected():
                self._snapshot_positions()
            self._heartbeat(force=True)
            self.ledger.end_run(self.run_id, self.clock.now(), state)
        finally:
            try:
                self.broker.disconnect()
                self.notifier.close()
            finally:
                if self.lease is not None:
                    self.lease.release()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: Any) -> None:
            log.warning("signal received: stopping", extra={"event": "signal", "signal": signum})
            self._stop = True

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _periodic(self) -> None:
        mono = time.monotonic()
        if mono >= self._next_control:
            self._next_control = mono + CONTROL_EVERY
            self._controls()
        if self._stop_pending is not None and self.state in ("ready", "lost", "resubscribing"):
            self._run_deferred_stop()
        if self.state == "disconnected":
            self._maybe_reconnect()
        elif self.state == "resubscribing":
            self._loss_check()  # positions are still at risk while the history is missing
            self._timeouts()
            self._maybe_retry()
        elif self.state == "ready":
            for sym in sorted(self._deferred):
                self._deferred.discard(sym)
                self._decide(sym, None)
            self._promote_by_clock()
            self._loss_check()
            ops_tick(self)  # issue 13: breakers, tier alerts, approval expiry, daily report
            self._timeouts()
            self._eod()
            self._position_check()
            if self._positions_dirty:
                self._snapshot_positions()
        self._heartbeat()

    def _controls(self) -> None:
        for req in self.ledger.pending_controls():
            if not self.ledger.claim_control(req.id, pd.Timestamp.now(tz="UTC"), f"runner {self.run_id}"):
                continue
            if req.command == "stop":
                flatten = bool(req.args.get("flatten"))
                tag = pd.Timestamp(req.at)
                try:
                    if self.state in ("ready", "lost", "resubscribing"):
                        result = self._kill(f"bridge stop requested by {req.args.get('by', 'operator')}", flatten=flatten,
                                            kind="manual_stop", tag=tag, shutdown=bool(req.args.get("shutdown")))
                    else:
                        result = self._defer_stop(req.args, tag)
                except BrokerDisconnected as err:  # dropped mid-stop: finish it once reconnected
                    self._on_connection(ConnectionEvent("disconnected", err.what))
                    result = self._defer_stop(req.args, tag)
                except BridgeError as err:
                    result = {"kill_switch": True, "error": err.render()}
                self.ledger.finish_control(req.id, result_text(result))
            elif req.command == "resume":
                equity = self.loss_equity()[0] if self.broker.is_connected() else math.nan
                if math.isfinite(equity):
                    self.ledger.set_risk_state(self.clock.now(), loss_ref_equity=equity, day=self.day())
                if req.args.get("rebaseline") and self.broker.is_connected():
                    self._reconcile("resume")
                self._alert("resumed", "kill switch cleared by `bridge resume`: trading resumes", "warning")
                self.ledger.finish_control(req.id, result_text({"resumed": True}))
            elif req.command == "approve":  # issue 13: `bridge approve ID` / the dashboard
                self.ledger.finish_control(req.id, result_text(approve_in_runner(self, req.args)))
            else:
                self.ledger.finish_control(req.id, result_text({"error": f"unknown command {req.command}"}))

    def _defer_stop(self, args: dict[str, Any], tag: pd.Timestamp) -> dict[str, Any]:
        """``bridge stop`` while the gateway is away: latch now, cancel and flatten once connected
        again (``--shutdown`` stops the process now: then nothing is left to do it)."""
        by = args.get("by", "operator")
        self.ledger.latch(self.clock.now(), f"bridge stop requested by {by} while disconnected", "manual_stop", self.run_id)
        if args.get("shutdown"):
            self._stop = True
            return {"kill_switch": True, "cancelled": False, "flatten": False,
                    "error": f"runner is {self.state} and shuts down: kill switch latched; open orders NOT cancelled, "
                             "run `bridge stop --flatten` again once the gateway is up"}
        self._stop_pending = {"flatten": bool(args.get("flatten")), "reason": f"bridge stop requested by {by}", "kind": "manual_stop"}
        self._alert("stop_deferred", f"bridge stop by {by}: kill switch latched; cancel"
                    + (" and flatten" if args.get("flatten") else "") + " run when the gateway is back", "critical")
        return {"kill_switch": True, "cancelled": False, "flatten": False, "deferred": True,
                "error": f"runner is {self.state}: kill switch latched; cancel/flatten run by the runner when the gateway is back"}

    def _run_deferred_stop(self) -> None:
        """Redo a kill switch's cancel/flatten that the gateway's absence interrupted or prevented."""
        pending, self._stop_pending = self._stop_pending, None
        assert pending is not None
        try:
            # a new tag: a flatten order of the first attempt may be void (never sent) and its ref
            # must not block this one; a working one is cancelled first or skipped (emergency_stop)
            result = self._kill(f"{pending['reason']} (done after reconnecting)", flatten=pending["flatten"],
                                kind=pending["kind"], tag=self.clock.now())
        except BrokerDisconnected as err:  # dropped again: _kill kept it pending
            self._on_connection(ConnectionEvent("disconnected", err.what))
            return
        self._alert("stop_done", f"deferred kill switch actions done: {result_text(result)}", "warning")

    def _promote_by_clock(self) -> None:
        now = self.clock.now()
        grace = pd.Timedelta(seconds=self.cfg.data.complete_grace)
        for sym, w in self.windows.items():
            if w.forming is not None and now >= self.calendar.due(w.forming.time, self.interval) + grace:
                if w.promote_forming() is not None:
                    self.metrics["bars"] += 1
                    self._decide(sym, None)

    def _loss_check(self) -> None:
        equity, cash = self.loss_equity()
        if not math.isfinite(equity):
            return
        now = self.clock.now()
        day = self.day()
        rs = self.ledger.risk_state()
        if rs.day != day:
            self.ledger.set_risk_state(now, day=day, sod_equity=equity, loss_ref_equity=None)
            self.ledger.record_equity(now, day, cash, equity, "start_of_day")
            return
        if time.monotonic() >= self._next_equity:
            self._next_equity = time.monotonic() + 60.0
            self.ledger.record_equity(now, day, cash, equity, "periodic")
        ref = rs.loss_ref_equity or rs.sod_equity
        if rs.kill_switch or not ref:
            return
        breached, loss = daily_loss_breached(Exposure(equity, ref), self.cfg.risk)
        if breached:
            reason = (f"daily loss {loss:.2%} of start-of-day equity {ref:,.2f} (now {equity:,.2f}) reached the "
                      f"{self.cfg.risk.daily_loss_limit_pct:.2%} limit")
            self.ledger.record_equity(now, day, cash, equity, "daily_loss")
            self._kill(reason, flatten=True, kind="daily_loss", tag=now)

    def _timeouts(self) -> None:
        if not self.working:
            return
        now = self.clock.monotonic()
        for ref, placed in list(self.working.items()):
            if now - placed < self.cfg.orders.limit_timeout or ref in self.cancel_reason:
                continue
            why = "timeout_market" if self.cfg.orders.on_timeout == "market" else "timeout"
            self.cancel_reason[ref] = why
            self.ledger.update_order(ref, self.clock.now(), kind="timeout", detail=f"limit unfilled after {self.cfg.orders.limit_timeout:g} s: cancelling")
            if not self.broker.cancel(ref):
                log.warning("timeout cancel: broker does not list the order", extra={"event": "timeout_cancel_missing", "order_ref": ref})
            self._alert("limit_timeout", f"limit order {ref} unfilled after {self.cfg.orders.limit_timeout:g} s: cancelling"
                        + (" and sending a market order" if why == "timeout_market" else ""), "warning", order_ref=ref)

    def _eod(self) -> None:
        now = self.clock.now()
        is_open = self.calendar.is_open(now)
        e = self.cfg.eod
        if is_open and e.flatten_before_close > 0:
            close = self.calendar.session_close_of(now)
            day = self.day()
            if close is not None and now >= close - pd.Timedelta(minutes=e.flatten_before_close) and self._eod_done != day:
                self._eod_done = day
                self._eod_flatten(now)
        if self._was_open and not is_open and e.cancel_at_close:
            for r in self.ledger.open_orders():
                if r["tif"] == "DAY":
                    self.cancel_reason.setdefault(r["order_ref"], "close")
                    self.broker.cancel(r["order_ref"])
                    self.ledger.update_order(r["order_ref"], now, kind="close_cancel", detail="market closed: cancelling the unfilled day order")
        self._was_open = is_open

    def _eod_flatten(self, now: pd.Timestamp) -> None:
        positions = self.broker.positions()
        pending = {r["symbol"] for r in self.ledger.open_orders() if r["purpose"] == "flatten"}
        self._alert("eod_flatten", f"end of day: flattening {self.cfg.eod.flatten_before_close:g} min before the close", "warning")
        for sym in self.symbols:
            pos = positions.get(sym)
            for r in self.ledger.open_orders(sym):
                self.broker.cancel(r["order_ref"])
            if pos is None or not pos.quantity or sym in pending:
                continue
            w = self.windows[sym]
            intent = OrderIntent(sym, "SELL" if pos.quantity > 0 else "BUY", abs(pos.quantity), w.last_price(), "MKT", None, "flatten")
            qtys = {s: p.quantity for s, p in positions.items()}
            decision = self._gate(intent, qtys, self._marks(qtys), math.nan, w.last_price())
            ref = self._new_ref(sym, now, "eod")
            self._record(sym, now, decision.verdict, f"end-of-day flatten: {decision.reason}", decision.rule, order_ref=ref,
                         quantity=intent.signed, position=pos.quantity, desired=0.0)
            if decision.allowed:
                self.ledger.insert_order(self._order_row(intent, ref, None, "intent", None, None, "end-of-day flatten"), now)
                self.ledger.set_strategy_state(self.skey, sym, now, last_target=None)
                self._place(intent, ref, None)


def settle_memory() -> None:
    """After start-up: collect once and freeze the survivors (history, kernels, ib_async
    state) so later full garbage collections do not rescan them (shorter pauses)."""
    gc.collect()
    gc.freeze()

