"""A broker-rejected order (IB 201 and friends) is not "acted on".

The decision path stores the new target with the order intent, so that a restart never
re-trades an unchanged target. A rejection must undo that, or every later bar says "hold:
target unchanged" while the account and the strategy disagree for good (a rejected exit
left a position open forever). So a rejected strategy order rolls the symbol's last target
back to the one before it, and the next completed bar decides (and sizes) again.

Retries are bounded by ``orders.reject_retries`` consecutive rejections per (strategy,
symbol). An order that closes exposure (an exit) is a critical alert at every rejection;
once it cannot be placed any more (retries spent, or a flatten/end-of-day order, which no
bar retries) the bridge escalates: ``orders.on_exit_rejected`` = ``halt`` (trading halted
until ``bridge resume``) or ``kill_switch`` (latched; open orders cancelled). Never silence.
An exit's target is rolled back even then, so the first bar after the resume tries again.
An entry that used up its retries keeps its target (no endless retrying), with a critical
alert saying the account does not hold what the strategy wants.

A rejected **protective child** (a bracket's stop, take-profit or trailing stop, or a re-attached
one) of an entry that traded leaves its position unprotected. The first rejection of a role
refuses the symbol's new entries and alerts (critical): the next reconcile re-attaches it under
``<entry>:sl~N`` (:func:`bridge.runtime.protecting.mark_unprotected`), which covers transient
refusals. A **second rejection of the same role** (the re-attached child refused too) latches the kill switch and flattens: the
broker keeps refusing that protection (often because the market is already through the level,
where research would have exited), and a position must not sit unprotected for longer than
one reconcile. Flattening, not halting: a halt leaves the position without the protection the
strategy declared for as long as nobody looks; the flatten costs a spread, an unprotected gap
can cost anything. A child rejected with its never-traded entry (IB refuses the children of a
refused parent) protects nothing and is only recorded.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pandas as pd

from bridge.ledger.queries import signal_statuses
from bridge.ledger.store import Ledger, iso
from bridge.runtime.context import Context
from bridge.runtime.killswitch import kill
from bridge.runtime.protecting import Protector, mark_unprotected

log = logging.getLogger("bridge.runner")


def closes_exposure(position: float, signed_qty: float) -> bool:
    """True if the order sells a long or buys back a short (an exit, or the exit part of a flip)."""
    return position * signed_qty < 0


def consecutive_rejections(ledger: Ledger, strategy: str, symbol: str) -> int:
    """Strategy orders of ``symbol`` rejected in a row, newest first (the count includes the latest)."""
    n = 0
    for status in signal_statuses(ledger, strategy, symbol):
        if status != "rejected":
            break
        n += 1
    return n


def roll_back_target(
    ledger: Ledger,
    strategy: str,
    symbol: str,
    at: pd.Timestamp,
    rejected_target: float | None,
    prev_target: float | None,
) -> bool:
    """Set the last target acted on back to ``prev_target`` if it is still the rejected order's
    target (a later decision is never undone). The last bar stays: the next bar decides again."""
    return ledger.restore_target(strategy, symbol, at, prev_target, rejected_target)


def on_rejected(ctx: Context, ref: str, message: str, code: int = 0) -> None:
    """Apply a broker rejection of ``ref``: roll back, alert, escalate (see the module docstring)."""
    row = ctx.ledger.order(ref)
    if row is None:
        return
    if row.get("role") or row["purpose"] == "protect":
        on_protection_rejected(ctx, row, message, code)
        return
    now = ctx.clock.now()
    sym = str(row["symbol"])
    held = ctx.broker.positions().get(sym) if ctx.broker.is_connected() else None
    position = held.quantity if held is not None else _ledger_position(ctx, sym)
    signed = float(row["quantity"]) * (1 if row["side"] == "BUY" else -1)
    exit_ = closes_exposure(position, signed) or row["purpose"] in ("flatten", "timeout_market") and position != 0
    limit = ctx.cfg.orders.reject_retries
    n = consecutive_rejections(ctx.ledger, str(row["strategy"]), sym) if row["purpose"] == "signal" else 0
    retry = row["purpose"] == "signal" and n <= limit
    if row["purpose"] == "signal" and (retry or exit_):
        # an exit is always rolled back: once the escalation is resolved (`bridge resume`) the
        # next bar must try to close the position again, not "hold: target unchanged"
        roll_back_target(ctx.ledger, str(row["strategy"]), sym, now, row["target"], row["prev_target"])
    what = f"{row['side']} {float(row['quantity']):g} {sym} ({ref}) rejected by the broker: {message}"
    if retry:
        tail = f"the target is rolled back and the next bar decides again (retry {n} of {limit})"
    elif row["purpose"] == "signal" and n > limit:
        tail = f"{n} rejections in a row: no more retries (orders.reject_retries = {limit})"
    else:
        tail = "not retried"
    ctx.ledger.risk_event(now, "order_rejected", f"{what}; {tail}", ctx.run_id)
    if not exit_:
        if row["purpose"] == "signal" and n > limit:
            ctx.alert(
                "rejections_exhausted",
                f"{what}; {tail}: the strategy's target is kept but NOT held by the account",
                "critical",
                order_ref=ref,
                symbol=sym,
                code=code,
            )
        return
    ctx.alert(
        "exit_rejected",
        f"EXIT {what}; position {position:g} {sym} stays open; {tail}",
        "critical",
        order_ref=ref,
        symbol=sym,
        code=code,
    )
    if retry:
        return
    reason = (
        f"exit order {ref} rejected by the broker and cannot be placed ({message}): position {position:g} {sym} open"
    )
    ctx.alert(
        "exit_unplaceable", reason + f" -> {ctx.cfg.orders.on_exit_rejected}", "critical", order_ref=ref, symbol=sym
    )
    if ctx.cfg.orders.on_exit_rejected == "kill_switch":
        if not ctx.ledger.risk_state().kill_switch and ctx.broker.is_connected():
            kill(ctx, reason, flatten=False, kind="exit_rejected", tag=now)
        else:
            ctx.ledger.latch(now, reason, "exit_rejected", ctx.run_id)
    else:
        ctx.ledger.set_risk_state(now, halted=True, reason=reason, since=iso(now))
        ctx.ledger.risk_event(now, "halt", reason, ctx.run_id)
    log.critical(
        "exit cannot be placed",
        extra={"event": "exit_unplaceable", "order_ref": ref, "symbol": sym, "action": ctx.cfg.orders.on_exit_rejected},
    )


def _ledger_position(ctx: Context, sym: str) -> float:
    q = ctx.ledger.expected_positions().get(sym, 0.0)
    return float(q) if math.isfinite(q) else 0.0


def on_protection_rejected(ctx: Context, row: dict[str, Any], message: str, code: int = 0) -> None:
    """A bracket's (or a re-attached) child was rejected: the symbol is marked unprotected and the
    next reconcile re-attaches it; a second rejection of the same role latches the kill switch and
    flattens. Nothing happens for an entry that never traded (see the module docstring)."""
    now = ctx.clock.now()
    ref, sym, role = str(row["order_ref"]), str(row["symbol"]), str(row["role"]).replace("_", "-")
    parent = ctx.ledger.order(str(row["parent_ref"])) or {}
    what = f"protective {role} {ref} of entry {row['parent_ref']} rejected by the broker ({message})"
    if parent.get("status") in ("rejected", "void", "cancelled") and not float(parent.get("filled") or 0.0):
        ctx.ledger.risk_event(now, "order_rejected", f"{what}; its entry never traded: nothing to protect", ctx.run_id)
        return
    reason = f"{what}: {sym} would be held without it"
    if not _rejected_before(ctx.ledger, row):
        mark_unprotected(ctx, sym, f"{what}; it is re-attached now, a second rejection flattens")
        if float(parent.get("filled") or 0.0) > 0:  # the entry traded: re-attach at once (else at its fill)
            Protector(ctx).reprotect(f"protective order {ref} rejected")
        return
    reason += f" (the broker refused this {role} before)"
    ctx.ledger.risk_event(now, "protection_rejected", reason, ctx.run_id)
    ctx.alert(
        "protection_rejected",
        f"{reason} -> kill switch and flatten (`bridge resume` once the cause is fixed)",
        "critical",
        order_ref=ref,
        symbol=sym,
        code=code,
    )
    if ctx.ledger.risk_state().kill_switch:
        return
    if ctx.broker.is_connected():
        kill(ctx, reason, flatten=True, kind="protection_rejected", tag=now)
    else:  # latched now; the runner cancels and flattens once reconnected
        ctx.ledger.latch(now, reason, "protection_rejected", ctx.run_id)
        ctx.state.stop_pending = {"flatten": True, "reason": reason, "kind": "protection_rejected"}
    log.critical(
        "protective order rejected: kill switch and flatten",
        extra={"event": "protection_rejected", "order_ref": ref, "symbol": sym},
    )


def _rejected_before(ledger: Ledger, row: dict[str, Any]) -> bool:
    """Whether an earlier child of the same entry and role was rejected too (``row`` is the latest)."""
    return any(
        c["role"] == row["role"] and c["status"] == "rejected" and c["order_ref"] != row["order_ref"]
        for c in ledger.children(str(row["parent_ref"]))
    )
