"""The runner: on every completed bar, kernel -> target -> size -> risk gate -> order.

One thread, one loop (``step``): poll the broker for events (bars, order statuses,
fills with commissions, connection changes), handle them, then run the periodic tasks
(control requests from ``bridge stop``/``resume``, the daily loss check, limit-order
timeouts, end-of-day rules, reconnects with exponential backoff, heartbeat and health).

Composition, calls pointing one way: ``Runner`` -> ``PeriodicTasks`` (``tasks``) ->
``Session`` (connect, events, reconnects) -> ``DecisionPath`` (``decision``) ->
``Reconciler`` (``reconciling``) -> ``Oversight``, ``rejections``, ``killswitch`` ->
``Context`` (wiring and shared helpers) -> ``RunnerState`` (the one mutable state object).

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
import signal
from collections.abc import Callable
from typing import Any

from bridge.brokers.protocol import Broker
from bridge.clock import Clock
from bridge.config import BridgeConfig
from bridge.control import runner_alive
from bridge.errors import BrokerDisconnected, LedgerError
from bridge.feed import BarWindow
from bridge.ledger.lease import LedgerLease
from bridge.ledger.store import Ledger
from bridge.market import MarketCalendar
from bridge.ops.health import HealthState
from bridge.ops.logs import CONTEXT
from bridge.ops.notify import Notifier
from bridge.runtime.context import (
    CONTROL_EVERY,
    CRASH_ENV,
    DEFAULT_MAX_AGE,
    HEARTBEAT_EVERY,
    Context,
)
from bridge.runtime.decision import DecisionPath
from bridge.runtime.oversight import Oversight
from bridge.runtime.reconciling import Reconciler
from bridge.runtime.recovery import TRANSIENT, transient
from bridge.runtime.session import Session
from bridge.runtime.tasks import PeriodicTasks
from quantlab.engine.strategy import StrategySpec

log = logging.getLogger("bridge.runner")
__all__ = ["CONTROL_EVERY", "CRASH_ENV", "DEFAULT_MAX_AGE", "HEARTBEAT_EVERY", "Runner", "settle_memory"]


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
        self.ctx = Context(
            cfg,
            broker,
            ledger,
            clock=clock,
            notifier=notifier,
            spec=spec,
            calendar=calendar,
            health=health,
            run_id=run_id,
        )
        self.reconciler = Reconciler(self.ctx, Oversight(self.ctx))
        self.decision = DecisionPath(self.ctx, self.reconciler)
        self.session = Session(self.ctx, self.decision, self.reconciler)
        self.tasks = PeriodicTasks(self.ctx, self.session, self.decision, self.reconciler)
        self.ctx.pump = self.session.pump  # the one call back up: waiting lower down handles events
        self.lease: LedgerLease | None = None  # the ledger's lock, taken by claim_ledger

    # --- read-only views for the app, the replay and tests ------------------------------
    @property
    def state(self) -> str:
        """``init``, ``ready``, ``lost``, ``disconnected``, ``resyncing`` or ``resubscribing``."""
        return self.ctx.state.phase

    @property
    def cfg(self) -> BridgeConfig:
        return self.ctx.cfg

    @property
    def broker(self) -> Broker:
        return self.ctx.broker

    @property
    def ledger(self) -> Ledger:
        return self.ctx.ledger

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    @property
    def calendar(self) -> MarketCalendar:
        return self.ctx.calendar

    @property
    def notifier(self) -> Notifier:
        return self.ctx.notifier

    @property
    def run_id(self) -> str:
        return self.ctx.run_id

    @property
    def skey(self) -> str:
        return self.ctx.skey

    @property
    def symbols(self) -> list[str]:
        return self.ctx.symbols

    @property
    def windows(self) -> dict[str, BarWindow]:
        return self.ctx.windows

    @property
    def metrics(self) -> dict[str, float]:
        return self.ctx.state.metrics

    def day(self) -> str:
        return self.ctx.day()

    def status(self) -> dict[str, Any]:
        return self.ctx.status()

    def health_view(self, status: dict[str, Any]) -> dict[str, Any]:
        return self.ctx.health_view(status)

    def start(self) -> None:
        """Connect (with retries), check the account, qualify, reconcile, seed history."""
        CONTEXT.run_id = self.ctx.run_id
        self.claim_ledger()  # before connecting: a second runner never reaches the gateway
        other = runner_alive(self.ctx.ledger, self.ctx.clock.now())
        if other is not None:
            raise LedgerError(
                "another bridge is running on this ledger",
                found=f"run {other['run_id']} (pid {other['pid']})",
                fix="stop it first (`bridge stop --shutdown`) or use another --ledger",
            )
        self.session.connect_with_retries()
        self.session.check_account()
        self.ctx.broker.qualify(self.ctx.symbols)
        now = self.ctx.clock.now()
        self.ctx.ledger.start_run(
            self.ctx.run_id,
            now,
            self.ctx.cfg.mode + ("-dry" if self.ctx.cfg.dry_run else ""),
            self.ctx.spec.name,
            self.ctx.symbols,
            self.ctx.skey,
            self.ctx.broker.account_id(),
            self.ctx.cfg.public_dict(),
        )
        log.info(
            "bridge starting",
            extra={
                "event": "start",
                "mode": self.ctx.cfg.mode,
                "dry_run": self.ctx.cfg.dry_run,
                "strategy": self.ctx.skey,
                "symbols": self.ctx.symbols,
                "bar": self.ctx.interval.name,
                "account": self.ctx.broker.account_id(),
                "ledger": str(self.ctx.ledger.path),
            },
        )
        try:
            self.reconciler.run("start")
            self.decision.relevel_open()
            self.session.subscribe_all()
        except TRANSIENT as err:  # e.g. IB 162 on the history: retried like after a reconnect
            transient(self.ctx, err, "start")
        self.tasks.loss_check()
        if self.ctx.state.phase == "init":
            self.ctx.state.phase = "ready"
        self.ctx.heartbeat(force=True)
        self.decision.decide_pending()

    def claim_ledger(self) -> None:
        """Take the ledger's lock (``bridge.ledger.lease``) or raise naming its holder; idempotent."""
        if self.lease is None:
            self.lease = LedgerLease(self.ctx.ledger.path)
        self.lease.acquire(self.ctx.run_id)

    def run(self, until: Callable[[], bool] | None = None, poll: float = 0.25) -> None:
        """Loop until stopped (``stop()``, SIGTERM/SIGINT, ``until()``, or the replay ends)."""
        while not self.ctx.state.stop:
            self.step(poll)
            if until is not None and until():
                break
            if getattr(self.ctx.broker, "finished", False):
                break

    def step(self, timeout: float = 0.25) -> None:
        """One loop iteration: handle broker events, then the periodic tasks. A transient broker
        or data error, or a drop, never escapes: the runner only exits by command."""
        try:
            self.session.handle_polled(timeout)
            self.tasks.run()
        except TRANSIENT as err:
            transient(self.ctx, err, "loop")
        except BrokerDisconnected as err:
            self.ctx.disconnected(err.what)

    def stop(self) -> None:
        self.ctx.state.stop = True

    def close(self, state: str = "stopped") -> None:
        """Record the end of the run and disconnect."""
        try:
            if self.ctx.broker.is_connected():
                self.ctx.snapshot_positions()
            self.ctx.heartbeat(force=True)
            self.ctx.ledger.end_run(self.ctx.run_id, self.ctx.clock.now(), state)
        finally:
            try:
                self.ctx.broker.disconnect()
                self.ctx.notifier.close()
            finally:
                if self.lease is not None:
                    self.lease.release()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: Any) -> None:
            log.warning("signal received: stopping", extra={"event": "signal", "signal": signum})
            self.ctx.state.stop = True

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def settle_memory() -> None:
    """After start-up: collect once and freeze the survivors (history, kernels, ib_async
    state) so later full garbage collections do not rescan them (shorter pauses)."""
    gc.collect()
    gc.freeze()
