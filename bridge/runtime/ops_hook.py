"""The runner's issue-13 hooks, kept out of the runner modules so they stay small and mergeable.

* :func:`tick` (every second from ``PeriodicTasks.run``): measure the breakers, send the
  80%/90%/100% tier alerts, latch a tripped breaker (through ``kill``, the kill switch's
  own path, passed in: this module sits below it), let held orders whose approval window
  passed expire, and write the daily report once the market has closed.
* :func:`on_alert` (from ``Context.alert``): keep every alert in the ledger (the
  dashboard and the error-rate breaker read them) and rate-limit the noisy kinds.
* :func:`on_decision` (from ``Context.record``): every risk rejection is an alert.
* :func:`limits` publishes the usages in the runner's status (the dashboard's gauges).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from bridge.approvals import expire_held
from bridge.breakers import ACTION, Snapshot, Usage, tripped, usages
from bridge.ledger.store import iso
from bridge.ops.alerts import RateLimit, Tiers, tier_message

log = logging.getLogger("bridge.ops")
#: Alert kinds the error-rate breaker counts. Not ``broker_error``: IB sends one with every
#: rejection (counted once, as ``order_rejected``) and its connection codes are counted as
#: ``disconnected`` / ``connectivity_lost``.
ERROR_KINDS = (
    "order_rejected",
    "risk_rejected",
    "disconnected",
    "connectivity_lost",
    "stale_data",
    "missing_bars",
    "decision_error",
)
RATE_LIMITED = ("order_rejected", "risk_rejected", "broker_error", "stale_data")
TICK_EVERY = 1.0


class OpsState:
    """Per-runner state of the hooks (tiers alerted today, rate limits, last tick)."""

    def __init__(self, ctx: Any) -> None:
        self.tiers = Tiers.from_config(ctx.cfg.alerts)
        self.rate = RateLimit(ctx.cfg.alerts.rate_limit)
        self.next_tick = 0.0
        self.samples: list[tuple[pd.Timestamp, float]] = []
        self.usages: list[Usage] = []
        self.was_open = False
        self.latched = False
        self.resumed_at: pd.Timestamp | None = None
        self.report_done: str | None = None


def _state(ctx: Any) -> OpsState:
    st: OpsState | None = ctx.state.ops
    if st is None:
        st = ctx.state.ops = OpsState(ctx)
    return st


def on_alert(ctx: Any, kind: str, message: str, level: str) -> str | None:
    """Record the alert; returns the message to deliver (with a suppression note) or None."""
    st = _state(ctx)
    try:
        ctx.ledger.record_alert(ctx.clock.now(), kind, level, message, ctx.run_id)
    except Exception as err:  # noqa: BLE001 - an alert must never stop trading
        log.error("alert not recorded", extra={"event": "alert_record_failed", "detail": repr(err)})
    if kind not in RATE_LIMITED:
        return message
    send, skipped = st.rate.admit(kind, time.monotonic())
    if not send:
        log.info(message, extra={"event": "alert_suppressed", "alert": kind})
        return None
    return message + (f" (+{skipped} more {kind} suppressed in the last {st.rate.window:g} s)" if skipped else "")


def on_decision(ctx: Any, sym: str, verdict: str, rule: str, reason: str) -> None:
    if verdict == "reject":
        ctx.alert(
            "risk_rejected", f"{sym}: risk gate rejected the order ({rule}): {reason}", "warning", symbol=sym, rule=rule
        )


def snapshot(ctx: Any, now: pd.Timestamp) -> Snapshot | None:
    """The account as the breakers see it, from the broker, the bars and the ledger."""
    equity, cash = ctx.loss_equity()
    if not math.isfinite(equity):
        return None
    st = _state(ctx)
    b = ctx.cfg.breakers
    rs = ctx.ledger.risk_state()
    if st.latched and not rs.kill_switch:
        st.samples = []  # resumed: the breakers measure from the resume, or they would trip again at once
        st.resumed_at = now
    st.latched = rs.kill_switch
    recorded = ctx.ledger.last_resume_at()  # a resume before this process started
    marks_from = [
        t for t in (st.resumed_at, pd.Timestamp(recorded) if recorded else None) if t is not None and t <= now
    ]
    resumed = iso(max(marks_from)) if marks_from else None

    def since(seconds: float) -> pd.Timestamp:
        start = now - pd.Timedelta(seconds=seconds)
        return max(start, pd.Timestamp(resumed)) if resumed else start

    st.samples = [(t, e) for t, e in st.samples if (now - t).total_seconds() <= b.rapid_loss_window] + [(now, equity)]
    high = max([e for _, e in st.samples] + [ctx.ledger.equity_high_since(since(b.rapid_loss_window)) or equity])
    peak = max(ctx.ledger.peak_equity(resumed) or equity, equity)
    positions = ctx.broker.positions()
    marks = {
        s: (ctx.windows[s].last_price() if s in ctx.windows and len(ctx.windows[s]) else p.avg_cost)
        for s, p in positions.items()
    }
    day = ctx.day()
    sod_marks = ctx.ledger.first_marks_since(pd.Timestamp(day, tz="America/New_York"))
    realized = ctx.ledger.realized_today(day)
    pnl: dict[str, float] = dict(realized)
    for s, p in positions.items():
        if not p.quantity or not math.isfinite(marks.get(s, math.nan)):
            continue
        ref = sod_marks.get(s, p.avg_cost)
        pnl[s] = pnl.get(s, 0.0) + p.quantity * (marks[s] - ref)
    errors = ctx.ledger.count_alerts(since(b.error_window), ERROR_KINDS) if b.max_errors else 0
    return Snapshot(
        equity=equity,
        sod_equity=float(rs.loss_ref_equity or rs.sod_equity or 0.0),
        peak_equity=peak,
        window_high=high,
        cash=cash,
        errors=errors,
        notional={s: abs(p.quantity) * marks.get(s, 0.0) for s, p in positions.items() if p.quantity},
        symbol_pnl=pnl,
    )


def tick(ctx: Any, kill: Callable[..., Any]) -> None:
    """Once a second while ready: breakers, tier alerts, approval expiry, daily report."""
    st = _state(ctx)
    mono = time.monotonic()
    if mono < st.next_tick:
        return
    st.next_tick = mono + TICK_EVERY
    now = ctx.clock.now()
    expire_held(ctx, now)
    snap = snapshot(ctx, now)
    if snap is not None:
        st.usages = usages(snap, ctx.cfg.breakers, ctx.cfg.risk)
        for level, tier, u in st.tiers.crossings(st.usages, ctx.day()):
            ctx.alert(
                f"limit_{'critical' if level == 'critical' else 'warning'}",
                tier_message(tier, u),
                level,
                rule=u.rule,
                tier=tier,
            )
        if not ctx.ledger.risk_state().kill_switch:
            for u in tripped(snap, ctx.cfg.breakers, ctx.cfg.risk):
                if u.rule == "daily_loss_pct":
                    continue  # the runner's own daily loss check latches it
                kill(u.reason(), flatten=ACTION[u.rule] == "flatten", kind=f"breaker:{u.rule}", tag=now)
                break
    _report_after_close(ctx, st, now)


def _report_after_close(ctx: Any, st: OpsState, now: pd.Timestamp) -> None:
    if not ctx.cfg.ops.report_after_close:
        return
    is_open = ctx.calendar.is_open(now)
    if st.was_open and not is_open and st.report_done != ctx.day():
        st.report_done = ctx.day()
        from bridge.ops.report import write_report
        from quantlab.paths import reports_dir

        out = ctx.cfg.ops.report_dir
        try:
            jpath, _, _ = write_report(
                ctx.ledger, ctx.day(), Path(out).expanduser() if out else reports_dir() / "bridge"
            )
            ctx.alert("daily_report", f"daily report written: {jpath}", "info")
        except Exception as err:  # noqa: BLE001 - a report must never stop the bridge
            ctx.alert("daily_report_failed", f"daily report failed: {err!r}", "error")
    st.was_open = is_open


def limits(ctx: Any) -> list[dict[str, Any]]:
    """The usages for the status (dashboard gauges)."""
    st = ctx.state.ops
    if st is None:
        return []
    return [
        {**dataclasses.asdict(u), "fraction": u.fraction if math.isfinite(u.fraction) else 99.0, "tripped": u.tripped}
        for u in st.usages
    ]
