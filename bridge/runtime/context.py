"""The runner's wiring and the helpers every part of the runtime uses.

``Context`` holds what does not change after start-up (config, broker, ledger, clock,
strategy, windows, ledger sync) and the one mutable :class:`~bridge.runtime.state.RunnerState`.
Its helpers (recording decisions, the risk-gate call, orderRefs, equity marking, status and
health snapshots) are what the session, the decision path and the periodic tasks share. It
imports none of them: calls point from ``runner`` down to ``session`` / ``tasks``, to
``decision``, ``reconciling``, ``oversight``, ``killswitch`` and finally here. The one
call back up, pumping broker events while waiting (a cancel, the kill switch), goes
through :attr:`Context.pump`, which the runner points at its session.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from bridge.breakers import pre_trade
from bridge.brokers.protocol import Broker
from bridge.clock import Clock, WallClock
from bridge.config import BridgeConfig
from bridge.control import LedgerSync
from bridge.errors import BridgeError
from bridge.feed import BarWindow
from bridge.ledger import queries
from bridge.ledger.store import Ledger, iso
from bridge.live_signal import lookback
from bridge.market import MarketCalendar
from bridge.ops.health import HealthState
from bridge.ops.notify import Notifier
from bridge.ops.sysinfo import system_checks
from bridge.orders import order_ref, strategy_key
from bridge.protection import exits_for_run, rules_of
from bridge.risk import Decision, Exposure, OrderIntent, RiskContext, check, is_exit
from bridge.runtime import ops_hook
from bridge.runtime.state import RunnerState
from quantlab.engine.intervals import get_interval
from quantlab.engine.params import resolve_params
from quantlab.engine.registry import get_strategy
from quantlab.engine.strategy import StrategySpec

log = logging.getLogger("bridge.runner")
#: Seconds between the runner's control-table polls and heartbeats (real time).
CONTROL_EVERY = 0.25
HEARTBEAT_EVERY = 1.0
DEFAULT_MAX_AGE = {0: 1800.0, 60: 600.0, 30: 300.0, 15: 180.0, 5: 90.0, 1: 30.0}
CRASH_ENV = "BRIDGE_TEST_CRASH_AFTER_PLACE"


class Context:
    """One strategy on a set of symbols, against one broker and one ledger: wiring, state, shared helpers."""

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
        # exit rules in [strategy] params become the entries' brackets (issue 12; replay only for now)
        need_stop = cfg.risk.require_stop or cfg.risk.max_loss_per_trade > 0
        self.spec = exits_for_run(
            spec or get_strategy(cfg.strategy.name),
            cfg.strategy.params,
            cfg.mode,
            require_stop=need_stop,
            limit_orders=cfg.orders.type == "limit",
            allow_short=cfg.sizing.allow_short,
            limit_band=cfg.risk.limit_band_pct,
        )
        self.params = resolve_params(self.spec, cfg.strategy.params or None, get_interval(cfg.strategy.bar))
        self.exits = rules_of(self.spec, self.params)
        self.skey = strategy_key(self.spec.name, self.params)
        self.interval = get_interval(cfg.strategy.bar)
        self.symbols = [s.strip().upper() for s in cfg.strategy.symbols if s.strip()]
        self.calendar = calendar or MarketCalendar(cfg.data.calendar)
        self.health = health
        self.run_id = run_id or f"{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        self.sim = cfg.sim_config()
        self.cfg_array = self.sim.to_array()
        #: Per-symbol cost vectors (the symbol's spread from ``costs.spread_bps``), as the sweep uses.
        self.cost_vectors = {s: self.sim.to_array(s) for s in self.symbols}
        self.need = lookback(self.spec, self.params)
        hold = int(self.params.get("max_hold", 0))  # the window must reach back to a held position's entry bar
        self.capacity = cfg.data.history_bars or max(2 * self.need, self.need + 50, hold + 2)
        self.max_age = cfg.data.max_bar_age or DEFAULT_MAX_AGE.get(self.interval.minutes, 600.0)
        self.windows = {s: BarWindow(s, self.interval, self.calendar, self.capacity) for s in self.symbols}
        self.sync = LedgerSync(ledger, self.clock.now, self.day)
        self.state = RunnerState()
        self.crash_after_place = os.environ.get(CRASH_ENV, "") == "1" and cfg.mode != "live"
        #: Handle broker events for up to ``timeout`` seconds (bars deferred); the runner
        #: points it at its session, so lower layers can wait without importing it.
        self.pump: Callable[[float], None] = _no_session

    def day(self) -> str:
        return str(self.calendar.trading_day(self.clock.now()))

    def alert(self, kind: str, message: str, level: str = "warning", **fields: Any) -> None:
        text = ops_hook.on_alert(self, kind, message, level)  # issue 13: kept in the ledger, noisy kinds rate-limited
        if text is not None:
            self.notifier.alert(kind, text, level, run_id=self.run_id, **fields)

    def processed(self, sym: str, bar_time: pd.Timestamp) -> tuple[float, bool]:
        last_target, last_bar = self.ledger.strategy_state(self.skey, sym)
        return last_target, last_bar is not None and pd.Timestamp(last_bar) >= bar_time

    def mark(self, sym: str, bar_time: pd.Timestamp, target: float | None = None) -> None:
        self.ledger.set_strategy_state(
            self.skey, sym, self.clock.now(), last_target=target, last_bar=iso(bar_time), keep_target=target is None
        )

    def record(
        self, sym: str, bar_time: pd.Timestamp, verdict: str, reason: str, rule: str = "", **fields: Any
    ) -> None:
        self.state.metrics["decisions"] += 1
        self.ledger.record_decision(
            self.clock.now(),
            run_id=self.run_id,
            bar_time=iso(bar_time),
            symbol=sym,
            strategy=self.skey,
            verdict=verdict,
            rule=rule,
            reason=reason,
            **fields,
        )
        log.info(
            "decision",
            extra={
                "event": "decision",
                "symbol": sym,
                "bar_time": iso(bar_time),
                "verdict": verdict,
                "rule": rule,
                "reason": reason,
                **{k: v for k, v in fields.items() if v is not None},
            },
        )
        ops_hook.on_decision(self, sym, verdict, rule, reason)  # issue 13: every risk rejection is an alert

    def refuse(self, sym: str, bar_time: pd.Timestamp, rule: str, reason: str) -> None:
        self.state.metrics["refused_stale"] += 1
        self.state.stale[sym] = f"{rule}: {reason}"
        self.record(sym, bar_time, "refused", reason, rule)
        self.ledger.risk_event(self.clock.now(), "stale_data", f"{sym} {bar_time}: {reason}", self.run_id)
        self.alert("stale_data", f"{sym}: refusing to trade on bar {bar_time}: {reason}", "error", symbol=sym)

    def marks(self, positions: dict[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        held = self.broker.positions()
        for s in positions:
            w = self.windows.get(s)
            out[s] = w.last_close if w is not None and len(w) else held[s].avg_cost
        return out

    def gate(
        self, intent: OrderIntent, positions: dict[str, float], marks: dict[str, float], equity: float, last: float
    ) -> Decision:
        now = self.clock.now()
        rs = self.ledger.risk_state()
        sod = rs.loss_ref_equity or rs.sod_equity or equity
        ctx = RiskContext(
            market_open=self.calendar.is_open(now),
            kill_switch=rs.kill_switch,
            halted=rs.halted,
            halt_reason=rs.reason,
            orders_last_minute=self.ledger.orders_since(now - pd.Timedelta(minutes=1)),
            orders_today=self.ledger.orders_on_day(self.day()),
            last_price=last,
        )
        decision = check(intent, Exposure(equity, sod, positions, marks), ctx, self.cfg.risk)
        if decision.verdict in ("allow", "needs_approval"):  # issue 13: per-symbol notional cap, cash reserve
            decision = (
                pre_trade(intent, positions.get(intent.symbol, 0.0), self.broker.account().cash, self.cfg.breakers)
                or decision
            )
        why = self.state.unprotected.get(intent.symbol)
        if (
            why
            and decision.verdict in ("allow", "needs_approval")
            and not is_exit(positions.get(intent.symbol, 0.0), intent.signed)
        ):  # issue 12: no new exposure beside a position the bridge could not protect
            decision = Decision(
                "reject",
                f"{intent.symbol} holds a position without its protective orders ({why}); entries wait until a "
                "reconcile re-protects it",
                "unprotected",
            )
        log.info(
            "risk decision",
            extra={
                "event": "risk",
                "symbol": intent.symbol,
                "side": intent.side,
                "quantity": intent.quantity,
                "purpose": intent.purpose,
                "verdict": decision.verdict,
                "rule": decision.rule,
                "reason": decision.reason,
            },
        )
        return decision

    def new_ref(self, sym: str, when: pd.Timestamp, purpose: str) -> str:
        base = order_ref(self.spec.name, self.skey, sym, when, purpose)
        return order_ref(self.spec.name, self.skey, sym, when, purpose, attempt=self.ledger.count_refs(base))

    def order_row(
        self,
        intent: OrderIntent,
        ref: str,
        bar_time: pd.Timestamp | None,
        status: str,
        target: float | None,
        prev_target: float | None,
        reason: str,
        parent: str | None = None,
    ) -> dict[str, Any]:
        prev_bar = None
        if intent.purpose == "signal":
            prev_bar = self.ledger.strategy_state(self.skey, intent.symbol)[1]
        return {
            "order_ref": ref,
            "run_id": self.run_id,
            "strategy": self.skey,
            "symbol": intent.symbol,
            "bar_time": iso(bar_time),
            "purpose": intent.purpose,
            "side": intent.side,
            "quantity": intent.quantity,
            "order_type": intent.order_type,
            "limit_price": intent.limit_price,
            "tif": intent.tif or self.cfg.orders.tif,
            "status": status,
            "reason": reason,
            "parent_ref": parent,
            "target": None if target is None or not math.isfinite(target) else target,
            "prev_target": None if prev_target is None or not math.isfinite(prev_target) else prev_target,
            "prev_bar": prev_bar,
            "day": self.day(),
        }

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

    def snapshot_positions(self) -> None:
        self.state.positions_dirty = False
        positions = self.broker.positions()
        marks = {
            s: (self.windows[s].last_price() if s in self.windows and len(self.windows[s]) else p.avg_cost)
            for s, p in positions.items()
        }
        self.ledger.snapshot_positions(self.clock.now(), positions, marks)
        account = self.broker.account()
        if math.isfinite(account.net_liquidation):
            self.ledger.record_equity(self.clock.now(), self.day(), account.cash, account.net_liquidation, "snapshot")

    def status(self) -> dict[str, Any]:
        rs = self.ledger.risk_state()
        connected = self.broker.is_connected()
        positions = {s: dataclasses.asdict(p) for s, p in self.broker.positions().items()} if connected else {}
        account = self.broker.account() if connected else None
        equity = account.net_liquidation if account else math.nan
        ref = rs.loss_ref_equity or rs.sod_equity
        lat = np.array(self.state.latencies_ms[-1000:]) if self.state.latencies_ms else np.array([])
        return {
            "run_id": self.run_id,
            "mode": self.cfg.mode,
            "dry_run": self.cfg.dry_run,
            "state": self.state.phase,
            "connected": connected,
            "account": self.broker.account_id() if connected else "",
            "strategy": self.skey,
            "symbols": self.symbols,
            "positions": positions,
            "open_orders": [
                {
                    k: r[k]
                    for k in (
                        "order_ref",
                        "symbol",
                        "side",
                        "quantity",
                        "order_type",
                        "limit_price",
                        "status",
                        "filled",
                    )
                }
                for r in self.ledger.open_orders()
            ],
            "equity": equity,
            "cash": account.cash if account else math.nan,
            "sod_equity": rs.sod_equity,
            "pnl_today": (equity - rs.sod_equity) if rs.sod_equity and math.isfinite(equity) else None,
            "loss_reference": ref,
            "kill_switch": rs.kill_switch,
            "halted": rs.halted,
            "halt_reason": rs.reason,
            "last_bars": {s: str(w.last_time) for s, w in self.windows.items()},
            "clock": iso(self.clock.now()),
            "limits": ops_hook.limits(self),
            "stale": dict(self.state.stale),
            "marks": {s: w.last_price() for s, w in self.windows.items() if len(w)},
            "protection": queries.protection(
                self.ledger
            ),  # issue 12: each position's protective orders  # issue 13: dashboard gauges and approval expiry
            "unprotected": dict(self.state.unprotected),  # issue 12: symbols whose entries wait for protection
            "metrics": {
                **self.state.metrics,
                "latency_ms_p50": float(np.percentile(lat, 50)) if lat.size else None,
                "latency_ms_p99": float(np.percentile(lat, 99)) if lat.size else None,
            },
        }

    def health_view(self, status: dict[str, Any]) -> dict[str, Any]:
        now = self.clock.now()
        fresh = not self.state.stale
        if self.calendar.is_open(now):
            for sym in self.symbols:
                seen = self.state.last_update.get(sym)
                if seen is None or (now - seen).total_seconds() > self.max_age + self.interval.freq.total_seconds():
                    fresh = False
        checks = {
            "connected": status["connected"] and self.state.phase == "ready",
            "data_fresh": fresh,
            "kill_switch_clear": not status["kill_switch"],
            "not_halted": not status["halted"],
        }
        machine = system_checks(
            self.ledger.path, self.cfg.ops.min_free_disk_mb, self.cfg.ops.max_memory_pct
        )  # issue 13
        checks.update(disk_ok=machine.pop("disk_ok"), memory_ok=machine.pop("memory_ok"))
        return {
            "ok": all(checks.values()),
            **checks,
            **machine,
            "stale": dict(self.state.stale),
            "state": self.state.phase,
            "kill_switch": status["kill_switch"],
            "halt_reason": status["halt_reason"],
            "run_id": self.run_id,
            "at": str(now),
        }

    def heartbeat(self, force: bool = False) -> None:
        mono = time.monotonic()
        if not force and mono < self.state.next_heartbeat:
            return
        self.state.next_heartbeat = mono + HEARTBEAT_EVERY
        try:
            status = self.status()
        except BridgeError:
            return
        self.ledger.heartbeat(
            self.run_id, pd.Timestamp.now(tz="UTC"), self.state.phase, status
        )  # wall time: other processes read it
        if self.health is not None:
            self.health.publish(self.health_view(status), status)

    def disconnected(self, message: str) -> None:
        """The gateway connection is gone: stop trading, schedule the reconnect (the session's
        ``reconnect`` task), record and alert once per episode."""
        if self.state.phase == "disconnected":
            return
        self.state.phase = "disconnected"
        self.state.metrics["disconnects"] += 1
        self.state.reconnect_attempt = 0
        self.state.reconnect_at = time.monotonic() + min(self.cfg.gateway.backoff_initial, 1.0)
        self.ledger.risk_event(self.clock.now(), "disconnect", message, self.run_id)
        self.alert("disconnected", f"lost the gateway connection ({message}): orders stopped, reconnecting", "error")


def _no_session(timeout: float) -> None:
    raise RuntimeError("Context.pump is not wired: the Runner sets it to its session's pump")
