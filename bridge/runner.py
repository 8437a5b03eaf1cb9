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

import dataclasses
import gc
import logging
import math
import os
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from bridge.broker import (
    Bar,
    BarEvent,
    Broker,
    ConnectionEvent,
    ErrorEvent,
    Event,
    FillEvent,
    OrderEvent,
    OrderRequest,
)
from bridge.clock import Clock, WallClock
from bridge.config import BridgeConfig
from bridge.control import LedgerSync, emergency_stop, managed_symbols, result_text
from bridge.errors import (
    AccountError,
    BridgeError,
    BrokerDisconnected,
    DuplicateOrder,
    GatewayUnreachable,
    StaleData,
)
from bridge.feed import BarWindow
from bridge.health import HealthState
from bridge.ledger import Ledger, iso
from bridge.live_signal import latest_target, lookback
from bridge.logs import CONTEXT
from bridge.market import MarketCalendar
from bridge.notify import Notifier
from bridge.orders import PREFIX, limit_price, order_ref, size, strategy_key
from bridge.reconcile import reconcile
from bridge.risk import Decision, Exposure, OrderIntent, RiskContext, check, daily_loss_breached
from quantlab.intervals import get_interval
from quantlab.optimizer.grid import parse_params
from quantlab.registry import get_strategy
from quantlab.replay import sizing_vol
from quantlab.strategy import StrategySpec

log = logging.getLogger("bridge.runner")
#: Seconds between the runner's control-table polls and heartbeats (real time).
CONTROL_EVERY = 0.25
HEARTBEAT_EVERY = 1.0
DEFAULT_MAX_AGE = {0: 1800.0, 60: 600.0, 30: 300.0, 15: 180.0, 5: 90.0, 1: 30.0}
CRASH_ENV = "BRIDGE_TEST_CRASH_AFTER_PLACE"


class Runner:
    """One strategy on a set of symbols, against one broker and one ledger."""

    def __init__(
        self,
        cfg: BridgeConfig,
        broker: Broker,
        ledger: Ledger,
        *,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        spec: StrategySpec | None = None,
        calendar: MarketCalendar | None = None,
        health: HealthState | None = None,
        run_id: str | None = None,
    ) -> None:
        self.cfg = cfg
        self.broker = broker
        self.ledger = ledger
        self.clock = clock or WallClock()
        self.notifier = notifier or Notifier(cfg.notify, background=False)
        self.spec = spec or get_strategy(cfg.strategy.name)
        self.params = parse_params(self.spec, cfg.strategy.params or None)
        self.skey = strategy_key(self.spec.name, self.params)
        self.interval = get_interval(cfg.strategy.bar)
        self.symbols = [s.strip().upper() for s in cfg.strategy.symbols if s.strip()]
        self.calendar = calendar or MarketCalendar(cfg.data.calendar)
        self.health = health
        self.run_id = run_id or f"{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        self.sim = cfg.sim_config()
        self.cfg_array = self.sim.to_array()
        self.need = lookback(self.spec, self.params)
        self.capacity = cfg.data.history_bars or max(2 * self.need, self.need + 50)
        self.max_age = cfg.data.max_bar_age or DEFAULT_MAX_AGE.get(self.interval.minutes, 600.0)
        self.windows = {s: BarWindow(s, self.interval, self.calendar, self.capacity) for s in self.symbols}
        self.sync = LedgerSync(ledger, self.clock.now, self.day)
        self.state = "init"
        self.working: dict[str, float] = {}  # LMT orderRef -> clock.monotonic() when placed
        self.cancel_reason: dict[str, str] = {}
        self.metrics: dict[str, float] = {"bars": 0, "decisions": 0, "orders_sent": 0, "fills": 0, "rejected": 0,
                                          "refused_stale": 0, "reconnects": 0, "disconnects": 0}
        self.latencies_ms: list[float] = []
        self.last_update: dict[str, pd.Timestamp] = {}
        self.stale: dict[str, str] = {}  # symbol -> why its last completed bar was refused
        self._stop = False
        self._next_control = 0.0
        self._next_heartbeat = 0.0
        self._next_equity = 0.0
        self._reconnect_at = 0.0
        self._reconnect_attempt = 0
        self._eod_done: str | None = None
        self._was_open = False
        self._positions_dirty = True
        self._deferred: set[str] = set()
        self._crash_after_place = os.environ.get(CRASH_ENV, "") == "1" and cfg.mode != "live"

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Connect (with retries), check the account, qualify, reconcile, seed history."""
        CONTEXT.run_id = self.run_id
        self._connect_with_retries()
        self._check_account()
        self.broker.qualify(self.symbols)
        now = self.clock.now()
        self.ledger.start_run(self.run_id, now, self.cfg.mode + ("-dry" if self.cfg.dry_run else ""), self.spec.name,
                              self.symbols, self.skey, self.broker.account_id(), self.cfg.public_dict())
        log.info("bridge starting", extra={"event": "start", "mode": self.cfg.mode, "dry_run": self.cfg.dry_run,
                                            "strategy": self.skey, "symbols": self.symbols, "bar": self.interval.name,
                                            "account": self.broker.account_id(), "ledger": str(self.ledger.path)})
        self._reconcile("start")
        self._subscribe_all()
        self._loss_check()
        self.state = "ready"
        self._heartbeat(force=True)
        self._decide_pending()

    def run(self, until: Callable[[], bool] | None = None, poll: float = 0.25) -> None:
        """Loop until stopped (``stop()``, SIGTERM/SIGINT, ``until()``, or the replay ends)."""
        while not self._stop:
            self.step(poll)
            if until is not None and until():
                break
            if getattr(self.broker, "finished", False):
                break

    def step(self, timeout: float = 0.25) -> None:
        """One loop iteration: handle broker events, then the periodic tasks."""
        for event in self.broker.poll(timeout):
            self.handle(event)
        self._periodic()

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
            self.broker.disconnect()
            self.notifier.close()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: Any) -> None:
            log.warning("signal received: stopping", extra={"event": "signal", "signal": signum})
            self._stop = True

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    # --- helpers -------------------------------------------------------------------------
    def day(self) -> str:
        return str(self.calendar.trading_day(self.clock.now()))

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

    def _alert(self, kind: str, message: str, level: str = "warning", **fields: Any) -> None:
        self.notifier.alert(kind, message, level, run_id=self.run_id, **fields)

    # --- events --------------------------------------------------------------------------------
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
        if new in ("filled", "cancelled", "rejected"):
            self.working.pop(st.order_ref, None)
            self._positions_dirty = True
            why = self.cancel_reason.pop(st.order_ref, "")
            if new == "rejected":
                self.metrics["rejected"] += 1
                self._alert("order_rejected", f"order {st.order_ref} rejected: {st.message}", "error", order_ref=st.order_ref,
                            code=st.error_code)
            elif new == "cancelled" and why == "timeout_market":
                self._replace_with_market(st.order_ref, st.quantity - st.filled)

    def _on_fill(self, ev: FillEvent) -> None:
        f = ev.fill
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

    # --- reconciliation ---------------------------------------------------------------------------
    def _reconcile(self, why: str) -> None:
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
                        self.broker.open_orders(), self.broker.completed_orders(), self.broker.executions(), positions, managed, PREFIX)
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
            self.ledger.update_order(fix.order_ref, now, kind="reconciled", detail=fix.note, **fields)
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
        if res.mismatches:
            text = "; ".join(res.mismatches)
            self.ledger.risk_event(now, "mismatch", text, self.run_id)
            if self.cfg.reconcile.on_mismatch == "halt":
                self.ledger.set_risk_state(now, halted=True, reason=f"reconciliation mismatch: {text}", since=iso(now))
            self._alert("reconcile_mismatch", f"reconciliation mismatch ({why}): {text}"
                        + (" -- trading halted until `bridge resume`" if self.cfg.reconcile.on_mismatch == "halt" else ""), "critical")
        self.working = {r["order_ref"]: self.clock.monotonic() for r in self.ledger.open_orders() if r["order_type"] == "LMT"}
        self._positions_dirty = True
        log.info("reconciled", extra={"event": "reconciled", "why": why, "summary": res.summary(),
                                       "expected": res.expected_positions, "broker": res.broker_positions})

    # --- decisions ---------------------------------------------------------------------------------
    def _decide_pending(self) -> None:
        for sym in self.symbols:
            self._decide(sym, None)

    def _processed(self, sym: str, bar_time: pd.Timestamp) -> tuple[float, bool]:
        last_target, last_bar = self.ledger.strategy_state(self.skey, sym)
        return last_target, last_bar is not None and pd.Timestamp(last_bar) >= bar_time

    def _mark(self, sym: str, bar_time: pd.Timestamp, target: float | None = None) -> None:
        self.ledger.set_strategy_state(self.skey, sym, self.clock.now(), last_target=target, last_bar=iso(bar_time),
                                       keep_target=target is None)

    def _record(self, sym: str, bar_time: pd.Timestamp, verdict: str, reason: str, rule: str = "", **fields: Any) -> None:
        self.metrics["decisions"] += 1
        self.ledger.record_decision(self.clock.now(), run_id=self.run_id, bar_time=iso(bar_time), symbol=sym, strategy=self.skey,
                                    verdict=verdict, rule=rule, reason=reason, **fields)
        log.info("decision", extra={"event": "decision", "symbol": sym, "bar_time": iso(bar_time), "verdict": verdict, "rule": rule,
                                     "reason": reason, **{k: v for k, v in fields.items() if v is not None}})

    def _refuse(self, sym: str, bar_time: pd.Timestamp, rule: str, reason: str) -> None:
        self.metrics["refused_stale"] += 1
        self.stale[sym] = f"{rule}: {reason}"
        self._record(sym, bar_time, "refused", reason, rule)
        self.ledger.risk_event(self.clock.now(), "stale_data", f"{sym} {bar_time}: {reason}", self.run_id)
        self._alert("stale_data", f"{sym}: refusing to trade on bar {bar_time}: {reason}", "error", symbol=sym)

    def _decide(self, sym: str, received: float | None) -> None:
        """Act on the newest completed bar of ``sym`` if it has not been acted on yet."""
        w = self.windows[sym]
        bar_time = w.last_time
        if bar_time is None or self.state != "ready":
            return
        last_target, done = self._processed(sym, bar_time)
        if done:
            return
        CONTEXT.bar_time = iso(bar_time) or ""
        try:
            self._decide_bar(sym, w, bar_time, last_target, received)
        except BrokerDisconnected:
            raise
        except BridgeError as err:
            self._mark(sym, bar_time)
            self._record(sym, bar_time, "error", err.render(), "error")
            self._alert("decision_error", f"{sym} {bar_time}: {err.render()}", "error", symbol=sym)
        finally:
            CONTEXT.bar_time = ""

    def _decide_bar(self, sym: str, w: BarWindow, bar_time: pd.Timestamp, last_target: float, received: float | None) -> None:
        now = self.clock.now()
        due = self.calendar.due(bar_time, self.interval)
        age = (now - due).total_seconds()
        if age > self.max_age:
            self._mark(sym, bar_time)
            self._refuse(sym, bar_time, "stale", f"bar is {age:,.0f} s past its due time {due} (tolerance {self.max_age:g} s)")
            return
        if age < -self.cfg.data.max_clock_skew:
            self._mark(sym, bar_time)
            self._refuse(sym, bar_time, "future", f"bar completed {-age:,.0f} s before its due time {due}: clock or feed is wrong")
            return
        gap = w.gap_in_window()
        if gap is not None:
            self._mark(sym, bar_time)
            self._refuse(sym, bar_time, "missing_bars", f"bars missing between {gap[0]} and {gap[1]}")
            return
        if len(w) < self.need:
            self._mark(sym, bar_time)
            self._record(sym, bar_time, "warmup", f"{len(w)} of {self.need} bars", "warmup")
            return
        self.stale.pop(sym, None)
        prices = w.window()
        sig = latest_target(self.spec, self.params, prices)
        t = sig.target
        if not math.isfinite(t) or t == last_target:
            self._mark(sym, bar_time)
            self._record(sym, bar_time, "hold", "no opinion (NaN)" if not math.isfinite(t) else "target unchanged", "hold",
                         target=t, last_target=last_target)
            return
        if not self._clear_working(sym):
            self._mark(sym, bar_time)
            self._record(sym, bar_time, "blocked", "an earlier order for this symbol is still working", "working_order",
                         target=t, last_target=last_target)
            return
        equity, cash = self.marked_equity(at_close=True)
        positions = {s: p.quantity for s, p in self.broker.positions().items()}
        marks = self._marks(positions)
        pos = positions.get(sym, 0.0)
        fill_est = w.forming.open if w.forming is not None else w.last_close
        vol = float(sizing_vol(prices, self.sim, self.interval)[-1]) if self.sim.sizing.mode == "vol_target" else 0.0
        sz = size(t, equity, w.last_close, vol, pos, cash, fill_est, self.cfg_array)
        common = dict(target=t, last_target=last_target, position=pos, desired=sz.desired)
        if not math.isfinite(equity) or not math.isfinite(sz.desired):
            self._mark(sym, bar_time)
            self._record(sym, bar_time, "hold", f"cannot size yet (equity {equity!r}, desired {sz.desired!r})", "sizing", **common)
            return
        if sz.delta == 0:
            self._mark(sym, bar_time, target=t)
            self._record(sym, bar_time, "no_order", "position already at target", "no_order", quantity=0.0, **common)
            return
        side = "BUY" if sz.delta > 0 else "SELL"
        qty = abs(sz.delta)
        lmt = limit_price(side, fill_est, self.cfg.orders.limit_offset_bps) if self.cfg.orders.type == "limit" else None
        # exposure is measured at the decision bar's close, the price sizing used; the band uses the last price
        intent = OrderIntent(sym, side, qty, w.last_close, "LMT" if lmt else "MKT", lmt, "signal")  # type: ignore[arg-type]
        decision = self._gate(intent, positions, marks, equity, fill_est)
        common["quantity"] = intent.signed
        if decision.verdict == "allow":
            self._send(intent, bar_time, t, last_target, decision, received, common)
        elif decision.verdict == "needs_approval":
            ref = self._new_ref(sym, bar_time, "sig")
            self._mark(sym, bar_time)
            self.ledger.insert_order(self._order_row(intent, ref, bar_time, "needs_approval", t, last_target, decision.reason), now)
            self._record(sym, bar_time, decision.verdict, decision.reason, decision.rule, order_ref=ref, **common)
            self._alert("needs_approval", f"order {ref} held for approval: {decision.reason}", "warning", order_ref=ref)
        elif decision.verdict == "flatten":
            self._mark(sym, bar_time)
            self._record(sym, bar_time, decision.verdict, decision.reason, decision.rule, **common)
            self._kill(decision.reason, flatten=True, kind="daily_loss", tag=now)
        else:
            self._mark(sym, bar_time)
            self._record(sym, bar_time, decision.verdict, decision.reason, decision.rule, **common)

    def _marks(self, positions: dict[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        held = self.broker.positions()
        for s in positions:
            w = self.windows.get(s)
            out[s] = w.last_close if w is not None and len(w) else held[s].avg_cost
        return out

    def _gate(self, intent: OrderIntent, positions: dict[str, float], marks: dict[str, float], equity: float, last: float) -> Decision:
        now = self.clock.now()
        rs = self.ledger.risk_state()
        sod = rs.loss_ref_equity or rs.sod_equity or equity
        ctx = RiskContext(
            market_open=self.calendar.is_open(now), kill_switch=rs.kill_switch, halted=rs.halted, halt_reason=rs.reason,
            orders_last_minute=self.ledger.orders_since(now - pd.Timedelta(minutes=1)),
            orders_today=self.ledger.orders_on_day(self.day()), last_price=last,
        )
        decision = check(intent, Exposure(equity, sod, positions, marks), ctx, self.cfg.risk)
        log.info("risk decision", extra={"event": "risk", "symbol": intent.symbol, "side": intent.side, "quantity": intent.quantity,
                                          "purpose": intent.purpose, "verdict": decision.verdict, "rule": decision.rule,
                                          "reason": decision.reason})
        return decision

    def _new_ref(self, sym: str, when: pd.Timestamp, purpose: str) -> str:
        base = order_ref(self.spec.name, self.skey, sym, when, purpose)
        return order_ref(self.spec.name, self.skey, sym, when, purpose, attempt=self.ledger.count_refs(base))

    def _order_row(self, intent: OrderIntent, ref: str, bar_time: pd.Timestamp | None, status: str, target: float | None,
                   prev_target: float | None, reason: str, parent: str | None = None) -> dict[str, Any]:
        prev_bar = None
        if intent.purpose == "signal":
            prev_bar = self.ledger.strategy_state(self.skey, intent.symbol)[1]
        return {
            "order_ref": ref, "run_id": self.run_id, "strategy": self.skey, "symbol": intent.symbol, "bar_time": iso(bar_time),
            "purpose": intent.purpose, "side": intent.side, "quantity": intent.quantity,
            "order_type": intent.order_type, "limit_price": intent.limit_price, "tif": self.cfg.orders.tif, "status": status,
            "reason": reason, "parent_ref": parent,
            "target": None if target is None or not math.isfinite(target) else target,
            "prev_target": None if prev_target is None or not math.isfinite(prev_target) else prev_target,
            "prev_bar": prev_bar, "day": self.day(),
        }

    def _send(self, intent: OrderIntent, bar_time: pd.Timestamp, target: float, prev_target: float, decision: Decision,
              received: float | None, common: dict[str, Any]) -> None:
        """Record the intent (one committed transaction), then place, then record 'sent'."""
        now = self.clock.now()
        sym = intent.symbol
        ref = self._new_ref(sym, bar_time, "sig")
        status = "dry_run" if self.cfg.dry_run else "intent"
        with self.ledger.tx():
            self.ledger.insert_order(self._order_row(intent, ref, bar_time, status, target, prev_target, decision.reason), now)
            self._mark(sym, bar_time, target=target)
            self._record(sym, bar_time, decision.verdict, decision.reason, decision.rule, order_ref=ref, **common)
        if self.cfg.dry_run:
            log.info("dry run: order not sent", extra={"event": "dry_run", "order_ref": ref, "side": intent.side, "quantity": intent.quantity})
            return
        self._place(intent, ref, received)

    def _place(self, intent: OrderIntent, ref: str, received: float | None) -> None:
        req = OrderRequest(ref, intent.symbol, intent.side, intent.quantity, intent.order_type, intent.limit_price, self.cfg.orders.tif)
        try:
            state = self.broker.place(req)
        except BrokerDisconnected as err:
            log.error("order not sent: disconnected", extra={"event": "send_failed", "order_ref": ref})
            self._on_connection(ConnectionEvent("disconnected", err.what))
            return
        if self._crash_after_place:
            self._crash(ref)
        sent = time.perf_counter()
        self.ledger.update_order(ref, self.clock.now(), kind="sent", status="sent", sent_at=iso(self.clock.now()),
                                 broker_order_id=state.broker_order_id, perm_id=state.perm_id)
        if state.status != "pending":
            self.sync.order_event(state)
        self.metrics["orders_sent"] += 1
        if intent.order_type == "LMT":
            self.working[ref] = self.clock.monotonic()
        latency = (sent - received) * 1000 if received is not None else None
        if latency is not None:
            self.latencies_ms.append(latency)
        log.info("order sent", extra={"event": "order_sent", "order_ref": ref, "symbol": intent.symbol, "side": intent.side,
                                       "quantity": intent.quantity, "order_type": intent.order_type,
                                       "limit_price": intent.limit_price, "latency_ms": latency})

    def _crash(self, ref: str) -> None:
        """Test hook: die after placeOrder, before the ledger records 'sent' (the crash window)."""
        wait = getattr(self.broker, "wait_acknowledged", None)
        if wait is not None:
            wait(ref, 2.0)
        log.critical("test hook: SIGKILL after place", extra={"event": "test_crash", "order_ref": ref})
        os.kill(os.getpid(), signal.SIGKILL)

    def _clear_working(self, sym: str) -> bool:
        """Cancel earlier working orders of ``sym``; True once none is left."""
        rows = self.ledger.open_orders(sym)
        if not rows:
            return True
        for r in rows:
            self.cancel_reason.setdefault(r["order_ref"], "superseded")
            self.broker.cancel(r["order_ref"])
        deadline = time.monotonic() + self.cfg.orders.cancel_wait
        while time.monotonic() < deadline and self.ledger.open_orders(sym):
            for event in self.broker.poll(0.05):
                if not isinstance(event, BarEvent):
                    self.handle(event)
                else:
                    self._on_bar_deferred(event)
        return not self.ledger.open_orders(sym)

    def _on_bar_deferred(self, ev: BarEvent) -> None:
        """A bar that arrives while the runner waits (cancel, kill switch): stored now, decided
        on the next loop iteration."""
        w = self.windows.get(ev.symbol)
        if w is None:
            return
        if not ev.complete:
            w.set_forming(ev.bar)
            return
        try:
            if w.add_complete(ev.bar):
                self.metrics["bars"] += 1
                self._deferred.add(ev.symbol)
        except StaleData as err:
            self._refuse(ev.symbol, ev.bar.time, "invalid_bar", err.what)

    def _replace_with_market(self, ref: str, remaining: float) -> None:
        row = self.ledger.order(ref)
        if row is None or remaining <= 0:
            return
        sym = row["symbol"]
        w = self.windows.get(sym)
        last = w.last_price() if w is not None else float(row["limit_price"] or 0.0)
        intent = OrderIntent(sym, row["side"], remaining, last, "MKT", None, "timeout_market")
        positions = {s: p.quantity for s, p in self.broker.positions().items()}
        marks = self._marks(positions)
        equity = self.marked_equity(at_close=True)[0]
        decision = self._gate(intent, positions, marks, equity, last)
        new_ref = f"{ref}:m"
        now = self.clock.now()
        bar_time = pd.Timestamp(row["bar_time"]) if row["bar_time"] else None
        self._record(sym, bar_time if bar_time is not None else now, decision.verdict, f"limit timed out: {decision.reason}",
                     decision.rule, order_ref=new_ref if decision.allowed else None, quantity=intent.signed)
        if not decision.allowed:
            return
        try:
            self.ledger.insert_order(self._order_row(intent, new_ref, bar_time, "intent", None, None,
                                                     "limit order timed out: converted to market", parent=ref), now)
        except DuplicateOrder:
            return
        self._place(intent, new_ref, None)

    # --- kill switch ------------------------------------------------------------------------------------
    def _kill(self, reason: str, *, flatten: bool, kind: str, tag: pd.Timestamp, shutdown: bool = False) -> dict[str, Any]:
        self._alert("kill_switch", f"KILL SWITCH: {reason}", "critical", flatten=flatten)
        prices = {s: w.last_price() for s, w in self.windows.items() if len(w)}
        result = emergency_stop(
            self.broker, self.ledger, flatten=flatten, symbols=self.symbols, strategy=self.spec.name, key=self.skey, tag=tag,
            reason=reason, kind=kind, now=self.clock.now, pump=self._pump, prices=prices, calendar=self.calendar,
            cancel_wait=self.cfg.orders.cancel_wait, run_id=self.run_id,
        )
        self.working.clear()
        self._positions_dirty = True
        if shutdown:
            self._stop = True
        return result

    def _pump(self, timeout: float) -> None:
        for event in self.broker.poll(timeout):
            if isinstance(event, BarEvent):
                self._on_bar_deferred(event)
            else:
                self.handle(event)

    # --- periodic tasks -------------------------------------------------------------------------------------
    def _periodic(self) -> None:
        mono = time.monotonic()
        if mono >= self._next_control:
            self._next_control = mono + CONTROL_EVERY
            self._controls()
        if self.state == "disconnected":
            self._maybe_reconnect()
        elif self.state == "ready":
            for sym in sorted(self._deferred):
                self._deferred.discard(sym)
                self._decide(sym, None)
            self._promote_by_clock()
            self._loss_check()
            self._timeouts()
            self._eod()
            if self._positions_dirty:
                self._snapshot_positions()
        self._heartbeat()

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

    def _controls(self) -> None:
        for req in self.ledger.pending_controls():
            if not self.ledger.claim_control(req.id, pd.Timestamp.now(tz="UTC"), f"runner {self.run_id}"):
                continue
            if req.command == "stop":
                flatten = bool(req.args.get("flatten"))
                tag = pd.Timestamp(req.at)
                try:
                    if self.state in ("ready", "lost"):
                        result = self._kill(f"bridge stop requested by {req.args.get('by', 'operator')}", flatten=flatten,
                                            kind="manual_stop", tag=tag, shutdown=bool(req.args.get("shutdown")))
                    else:
                        self.ledger.latch(self.clock.now(), "bridge stop requested while disconnected", "manual_stop", self.run_id)
                        result = {"kill_switch": True, "cancelled": False, "flatten": False,
                                  "error": f"runner is {self.state}: kill switch latched; cancel/flatten must be retried"}
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
            else:
                self.ledger.finish_control(req.id, result_text({"error": f"unknown command {req.command}"}))

    def _promote_by_clock(self) -> None:
        now = self.clock.now()
        grace = pd.Timedelta(seconds=self.cfg.data.complete_grace)
        for sym, w in self.windows.items():
            if w.forming is not None and now >= self.calendar.due(w.forming.time, self.interval) + grace:
                if w.promote_forming() is not None:
                    self.metrics["bars"] += 1
                    self._decide(sym, None)

    def marked_equity(self, at_close: bool) -> tuple[float, float]:
        """(equity, cash): the broker's net liquidation value re-marked from the prices of its
        own snapshot to our bars' prices: the decision bars' closes (``at_close``, for sizing,
        as the backtest marks equity) or the latest prices (the daily loss check). IB
        refreshes account values only every few minutes; bar updates arrive every few
        seconds. Re-marking the snapshot (not cash + positions) stays right when cash lags a fill."""
        account = self.broker.account()
        equity = account.net_liquidation
        for sym, (qty, snap_price) in account.marks.items():
            w = self.windows.get(sym)
            if w is None or not len(w) or not snap_price > 0:
                continue
            price = w.last_close if at_close else w.last_price()
            if math.isfinite(price):
                equity += qty * (price - snap_price)
        return equity, account.cash

    def loss_equity(self) -> tuple[float, float]:
        """Equity for the daily loss limit: the lower of the broker's own value and the same
        snapshot re-marked to the latest bar prices (whichever view is worse counts)."""
        marked, cash = self.marked_equity(at_close=False)
        raw = self.broker.account().net_liquidation
        return (min(marked, raw) if math.isfinite(raw) else marked), cash

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
        self._alert("eod_flatten", f"end of day: flattening {self.cfg.eod.flatten_before_close:g} min before the close", "warning")
        for sym in self.symbols:
            pos = positions.get(sym)
            for r in self.ledger.open_orders(sym):
                self.broker.cancel(r["order_ref"])
            if pos is None or not pos.quantity:
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

    def _snapshot_positions(self) -> None:
        self._positions_dirty = False
        positions = self.broker.positions()
        marks = {s: (self.windows[s].last_price() if s in self.windows and len(self.windows[s]) else p.avg_cost) for s, p in positions.items()}
        self.ledger.snapshot_positions(self.clock.now(), positions, marks)
        account = self.broker.account()
        if math.isfinite(account.net_liquidation):
            self.ledger.record_equity(self.clock.now(), self.day(), account.cash, account.net_liquidation, "snapshot")

    # --- heartbeat and health ------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        rs = self.ledger.risk_state()
        connected = self.broker.is_connected()
        positions = {s: dataclasses.asdict(p) for s, p in self.broker.positions().items()} if connected else {}
        account = self.broker.account() if connected else None
        equity = account.net_liquidation if account else math.nan
        ref = rs.loss_ref_equity or rs.sod_equity
        lat = np.array(self.latencies_ms[-1000:]) if self.latencies_ms else np.array([])
        return {
            "run_id": self.run_id, "mode": self.cfg.mode, "dry_run": self.cfg.dry_run, "state": self.state, "connected": connected,
            "account": self.broker.account_id() if connected else "", "strategy": self.skey, "symbols": self.symbols,
            "positions": positions, "open_orders": [{k: r[k] for k in ("order_ref", "symbol", "side", "quantity", "order_type",
                                                                       "limit_price", "status", "filled")} for r in self.ledger.open_orders()],
            "equity": equity, "cash": account.cash if account else math.nan, "sod_equity": rs.sod_equity,
            "pnl_today": (equity - rs.sod_equity) if rs.sod_equity and math.isfinite(equity) else None,
            "loss_reference": ref, "kill_switch": rs.kill_switch, "halted": rs.halted, "halt_reason": rs.reason,
            "last_bars": {s: str(w.last_time) for s, w in self.windows.items()},
            "metrics": {**self.metrics, "latency_ms_p50": float(np.percentile(lat, 50)) if lat.size else None,
                        "latency_ms_p99": float(np.percentile(lat, 99)) if lat.size else None},
        }

    def health_view(self, status: dict[str, Any]) -> dict[str, Any]:
        now = self.clock.now()
        fresh = not self.stale
        if self.calendar.is_open(now):
            for sym in self.symbols:
                seen = self.last_update.get(sym)
                if seen is None or (now - seen).total_seconds() > self.max_age + self.interval.freq.total_seconds():
                    fresh = False
        checks = {"connected": status["connected"] and self.state == "ready", "data_fresh": fresh,
                  "kill_switch_clear": not status["kill_switch"], "not_halted": not status["halted"]}
        return {"ok": all(checks.values()), **checks, "stale": dict(self.stale), "state": self.state, "kill_switch": status["kill_switch"],
                "halt_reason": status["halt_reason"], "run_id": self.run_id, "at": str(now)}

    def _heartbeat(self, force: bool = False) -> None:
        mono = time.monotonic()
        if not force and mono < self._next_heartbeat:
            return
        self._next_heartbeat = mono + HEARTBEAT_EVERY
        try:
            status = self.status()
        except BridgeError:
            return
        self.ledger.heartbeat(self.run_id, pd.Timestamp.now(tz="UTC"), self.state, status)  # wall time: other processes read it
        if self.health is not None:
            self.health.publish(self.health_view(status), status)


def settle_memory() -> None:
    """After start-up: collect once and freeze the survivors (history, kernels, ib_async
    state) so later full garbage collections do not rescan them (shorter pauses)."""
    gc.collect()
    gc.freeze()


def deferred_bar(sym: str, bar: Bar) -> BarEvent:
    """A complete-bar event (for tests that drive a runner by hand)."""
    return BarEvent(sym, bar, True, time.perf_counter())
