"""The runner's periodic tasks, run once per loop iteration (``PeriodicTasks.run``).

Control requests (``bridge stop`` / ``resume`` / ``approve``), a deferred stop, reconnects
and retries, bars promoted by the clock, the daily loss check, the issue-13 hooks (breakers,
tier alerts, approval expiry, daily report), limit-order timeouts, end-of-day rules, the
periodic position check, position snapshots and the heartbeat.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import pandas as pd

from bridge.approvals import approve_in_runner
from bridge.control import result_text
from bridge.errors import BridgeError, BrokerDisconnected, BrokerError
from bridge.risk import Exposure, OrderIntent, daily_loss_breached
from bridge.runtime import ops_hook
from bridge.runtime.context import CONTROL_EVERY, Context
from bridge.runtime.decision import DecisionPath
from bridge.runtime.killswitch import kill
from bridge.runtime.oversight import ADOPTED_POLL, CONFIRM_AFTER
from bridge.runtime.reconciling import Reconciler
from bridge.runtime.recovery import TRANSIENT, transient
from bridge.runtime.session import Session

log = logging.getLogger("bridge.runner")


class PeriodicTasks:
    """What the loop does between broker events, by connection phase."""

    def __init__(self, ctx: Context, session: Session, decision: DecisionPath, reconciler: Reconciler) -> None:
        self.ctx = ctx
        self.session = session
        self.decision = decision
        self.reconciler = reconciler

    def kill(
        self, reason: str, *, flatten: bool, kind: str, tag: pd.Timestamp, shutdown: bool = False
    ) -> dict[str, Any]:
        return kill(self.ctx, reason, flatten=flatten, kind=kind, tag=tag, shutdown=shutdown)

    def run(self) -> None:
        mono = time.monotonic()
        if mono >= self.ctx.state.next_control:
            self.ctx.state.next_control = mono + CONTROL_EVERY
            self.controls()
        if self.ctx.state.stop_pending is not None and self.ctx.state.phase in ("ready", "lost", "resubscribing"):
            self.run_deferred_stop()
        if self.ctx.state.phase == "disconnected":
            self.session.reconnect()
        elif self.ctx.state.phase == "resubscribing":
            self.loss_check()  # positions are still at risk while the history is missing
            self.timeouts()
            self.retry()
        elif self.ctx.state.phase == "ready":
            for sym in sorted(self.ctx.state.deferred):
                self.ctx.state.deferred.discard(sym)
                self.decision.decide(sym, None)
            self.promote_by_clock()
            self.loss_check()
            ops_hook.tick(self.ctx, self.kill)  # issue 13: breakers, tier alerts, approval expiry, daily report
            self.timeouts()
            self.eod()
            self.position_check()
            if self.ctx.state.positions_dirty:
                self.ctx.snapshot_positions()
        self.ctx.heartbeat()

    def controls(self) -> None:
        for req in self.ctx.ledger.pending_controls():
            if not self.ctx.ledger.claim_control(req.id, pd.Timestamp.now(tz="UTC"), f"runner {self.ctx.run_id}"):
                continue
            if req.command == "stop":
                flatten = bool(req.args.get("flatten"))
                tag = pd.Timestamp(req.at)
                try:
                    if self.ctx.state.phase in ("ready", "lost", "resubscribing"):
                        result = kill(
                            self.ctx,
                            f"bridge stop requested by {req.args.get('by', 'operator')}",
                            flatten=flatten,
                            kind="manual_stop",
                            tag=tag,
                            shutdown=bool(req.args.get("shutdown")),
                        )
                    else:
                        result = self.defer_stop(req.args, tag)
                except BrokerDisconnected as err:  # dropped mid-stop: finish it once reconnected
                    self.ctx.disconnected(err.what)
                    result = self.defer_stop(req.args, tag)
                except BridgeError as err:
                    result = {"kill_switch": True, "error": err.render()}
                self.ctx.ledger.finish_control(req.id, result_text(result))
            elif req.command == "resume":
                equity = self.ctx.loss_equity()[0] if self.ctx.broker.is_connected() else math.nan
                if math.isfinite(equity):
                    self.ctx.ledger.set_risk_state(self.ctx.clock.now(), loss_ref_equity=equity, day=self.ctx.day())
                if req.args.get("rebaseline") and self.ctx.broker.is_connected():
                    self.reconciler.run("resume")
                self.ctx.alert("resumed", "kill switch cleared by `bridge resume`: trading resumes", "warning")
                self.ctx.ledger.finish_control(req.id, result_text({"resumed": True}))
            elif req.command == "approve":  # issue 13: `bridge approve ID` / the dashboard
                self.ctx.ledger.finish_control(
                    req.id,
                    result_text(
                        approve_in_runner(
                            self.ctx, self.decision.place_approved, req.args, stop_of=self.decision.stop_of
                        )
                    ),
                )
            else:
                self.ctx.ledger.finish_control(req.id, result_text({"error": f"unknown command {req.command}"}))

    def defer_stop(self, args: dict[str, Any], tag: pd.Timestamp) -> dict[str, Any]:
        """``bridge stop`` while the gateway is away: latch now, cancel and flatten once connected
        again (``--shutdown`` stops the process now: then nothing is left to do it)."""
        by = args.get("by", "operator")
        self.ctx.ledger.latch(
            self.ctx.clock.now(), f"bridge stop requested by {by} while disconnected", "manual_stop", self.ctx.run_id
        )
        if args.get("shutdown"):
            self.ctx.state.stop = True
            return {
                "kill_switch": True,
                "cancelled": False,
                "flatten": False,
                "error": f"runner is {self.ctx.state.phase} and shuts down: kill switch latched; open orders NOT cancelled, "
                "run `bridge stop --flatten` again once the gateway is up",
            }
        self.ctx.state.stop_pending = {
            "flatten": bool(args.get("flatten")),
            "reason": f"bridge stop requested by {by}",
            "kind": "manual_stop",
        }
        self.ctx.alert(
            "stop_deferred",
            f"bridge stop by {by}: kill switch latched; cancel"
            + (" and flatten" if args.get("flatten") else "")
            + " run when the gateway is back",
            "critical",
        )
        return {
            "kill_switch": True,
            "cancelled": False,
            "flatten": False,
            "deferred": True,
            "error": f"runner is {self.ctx.state.phase}: kill switch latched; cancel/flatten run by the runner when the gateway is back",
        }

    def run_deferred_stop(self) -> None:
        """Redo a kill switch's cancel/flatten that the gateway's absence interrupted or prevented."""
        pending, self.ctx.state.stop_pending = self.ctx.state.stop_pending, None
        assert pending is not None
        try:
            # a new tag: a flatten order of the first attempt may be void (never sent) and its ref
            # must not block this one; a working one is cancelled first or skipped (emergency_stop)
            result = kill(
                self.ctx,
                f"{pending['reason']} (done after reconnecting)",
                flatten=pending["flatten"],
                kind=pending["kind"],
                tag=self.ctx.clock.now(),
            )
        except BrokerDisconnected as err:  # dropped again: kill() kept it pending
            self.ctx.disconnected(err.what)
            return
        self.ctx.alert("stop_done", f"deferred kill switch actions done: {result_text(result)}", "warning")

    def promote_by_clock(self) -> None:
        now = self.ctx.clock.now()
        grace = pd.Timedelta(seconds=self.ctx.cfg.data.complete_grace)
        for sym, w in self.ctx.windows.items():
            if w.forming is not None and now >= self.ctx.calendar.due(w.forming.time, self.ctx.interval) + grace:
                if w.promote_forming() is not None:
                    self.ctx.state.metrics["bars"] += 1
                    self.decision.decide(sym, None)

    def loss_check(self) -> None:
        equity, cash = self.ctx.loss_equity()
        if not math.isfinite(equity):
            return
        now = self.ctx.clock.now()
        day = self.ctx.day()
        rs = self.ctx.ledger.risk_state()
        if rs.day != day:
            self.ctx.ledger.set_risk_state(now, day=day, sod_equity=equity, loss_ref_equity=None)
            self.ctx.ledger.record_equity(now, day, cash, equity, "start_of_day")
            return
        if time.monotonic() >= self.ctx.state.next_equity:
            self.ctx.state.next_equity = time.monotonic() + 60.0
            self.ctx.ledger.record_equity(now, day, cash, equity, "periodic")
        ref = rs.loss_ref_equity or rs.sod_equity
        if rs.kill_switch or not ref:
            return
        breached, loss = daily_loss_breached(Exposure(equity, ref), self.ctx.cfg.risk)
        if breached:
            reason = (
                f"daily loss {loss:.2%} of start-of-day equity {ref:,.2f} (now {equity:,.2f}) reached the "
                f"{self.ctx.cfg.risk.daily_loss_limit_pct:.2%} limit"
            )
            self.ctx.ledger.record_equity(now, day, cash, equity, "daily_loss")
            kill(self.ctx, reason, flatten=True, kind="daily_loss", tag=now)

    def timeouts(self) -> None:
        if not self.ctx.state.working:
            return
        now = self.ctx.clock.monotonic()
        for ref, placed in list(self.ctx.state.working.items()):
            if now - placed < self.ctx.cfg.orders.limit_timeout or ref in self.ctx.state.cancel_reason:
                continue
            why = "timeout_market" if self.ctx.cfg.orders.on_timeout == "market" else "timeout"
            self.ctx.state.cancel_reason[ref] = why
            self.ctx.ledger.update_order(
                ref,
                self.ctx.clock.now(),
                kind="timeout",
                detail=f"limit unfilled after {self.ctx.cfg.orders.limit_timeout:g} s: cancelling",
            )
            if not self.ctx.broker.cancel(ref):
                log.warning(
                    "timeout cancel: broker does not list the order",
                    extra={"event": "timeout_cancel_missing", "order_ref": ref},
                )
            self.ctx.alert(
                "limit_timeout",
                f"limit order {ref} unfilled after {self.ctx.cfg.orders.limit_timeout:g} s: cancelling"
                + (" and sending a market order" if why == "timeout_market" else ""),
                "warning",
                order_ref=ref,
            )

    def eod(self) -> None:
        now = self.ctx.clock.now()
        is_open = self.ctx.calendar.is_open(now)
        e = self.ctx.cfg.eod
        if is_open and e.flatten_before_close > 0:
            close = self.ctx.calendar.session_close_of(now)
            day = self.ctx.day()
            if (
                close is not None
                and now >= close - pd.Timedelta(minutes=e.flatten_before_close)
                and self.ctx.state.eod_done != day
            ):
                self.ctx.state.eod_done = day
                self.eod_flatten(now)
        if self.ctx.state.was_open and not is_open and e.cancel_at_close:
            for r in self.ctx.ledger.open_orders():
                if r["tif"] == "DAY":
                    self.ctx.state.cancel_reason.setdefault(r["order_ref"], "close")
                    self.ctx.broker.cancel(r["order_ref"])
                    self.ctx.ledger.update_order(
                        r["order_ref"],
                        now,
                        kind="close_cancel",
                        detail="market closed: cancelling the unfilled day order",
                    )
        self.ctx.state.was_open = is_open

    def eod_flatten(self, now: pd.Timestamp) -> None:
        positions = self.ctx.broker.positions()
        pending = {r["symbol"] for r in self.ctx.ledger.open_orders() if r["purpose"] == "flatten"}
        self.ctx.alert(
            "eod_flatten",
            f"end of day: flattening {self.ctx.cfg.eod.flatten_before_close:g} min before the close",
            "warning",
        )
        for sym in self.ctx.symbols:
            pos = positions.get(sym)
            for r in self.ctx.ledger.open_orders(sym):
                self.ctx.broker.cancel(r["order_ref"])
            if pos is None or not pos.quantity or sym in pending:
                continue
            w = self.ctx.windows[sym]
            intent = OrderIntent(
                sym, "SELL" if pos.quantity > 0 else "BUY", abs(pos.quantity), w.last_price(), "MKT", None, "flatten"
            )
            qtys = {s: p.quantity for s, p in positions.items()}
            decision = self.ctx.gate(intent, qtys, self.ctx.marks(qtys), math.nan, w.last_price())
            ref = self.ctx.new_ref(sym, now, "eod")
            self.ctx.record(
                sym,
                now,
                decision.verdict,
                f"end-of-day flatten: {decision.reason}",
                decision.rule,
                order_ref=ref,
                quantity=intent.signed,
                position=pos.quantity,
                desired=0.0,
            )
            if decision.allowed:
                self.ctx.ledger.insert_order(
                    self.ctx.order_row(intent, ref, None, "intent", None, None, "end-of-day flatten"), now
                )
                self.ctx.ledger.set_strategy_state(self.ctx.skey, sym, now, last_target=None)
                self.decision.place(intent, ref, None)

    def retry(self) -> None:
        """Called by the loop in state ``resubscribing``."""
        if time.monotonic() < self.ctx.state.retry_at:
            return
        try:
            self.reconciler.run(self.ctx.state.retry_why)
            self.session.subscribe_all()
        except TRANSIENT as err:
            transient(self.ctx, err, "retry")
            return
        except BrokerDisconnected as err:
            self.ctx.disconnected(err.what)
            return
        attempts = self.ctx.state.retry_attempt
        self.ctx.state.retry_attempt = 0
        self.ctx.state.phase = "ready"
        self.ctx.alert(
            "history_restored", f"history and reconciliation back after {attempts} retries: trading resumed", "warning"
        )
        self.decision.decide_pending()

    def position_check(self) -> None:
        """Every ``reconcile.check_every`` seconds (every 2 s while orders are adopted or a position
        is unprotected): reconcile again (every client's orders and executions, positions); a
        mismatch must survive a second look to halt."""
        self.reconciler.oversight.load()
        mono = time.monotonic()
        if mono < self.ctx.state.next_check:
            return
        # adopted orders' fills, and an unprotected position's re-attach, cannot wait check_every
        urgent = self.ctx.state.adopted or self.ctx.state.unprotected
        self.ctx.state.next_check = mono + (ADOPTED_POLL if urgent else self.ctx.cfg.reconcile.check_every)
        halted = self.ctx.ledger.risk_state().halted  # still reconciled: adopted orders' fills must be recorded
        try:
            if self.reconciler.run("periodic", act_on_mismatch=False).ok or halted:
                return
            deadline = time.monotonic() + CONFIRM_AFTER
            while time.monotonic() < deadline:
                self.ctx.pump(0.05)
            self.reconciler.run("periodic check")
        except BrokerDisconnected as err:
            self.ctx.disconnected(err.what)
        except BrokerError as err:  # a timed-out request: the next check tries again
            log.warning("periodic reconcile failed", extra={"event": "periodic_check_failed", "detail": err.render()})
            self.ctx.alert(
                "periodic_check_failed",
                f"periodic reconcile failed ({err.what}): retrying in {self.ctx.cfg.reconcile.check_every:g} s",
                "warning",
            )
