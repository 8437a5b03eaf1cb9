"""Approving and rejecting orders held as ``needs_approval`` (``bridge approve|reject ID``, dashboard).

An order above ``[risk] approval_threshold`` is held in the ledger, not sent. It expires one
bar after it was held (its signal is stale by then): :func:`expire_held` voids it. Approval
goes through the control table, like ``bridge stop``: the running bridge re-checks the
order with the risk gate (every rule except the approval threshold itself) at the current
price and sends it; no running bridge, no approval. A rejection only needs the ledger.
Every action is recorded in the ``control`` table with who asked and when.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from bridge.control import runner_alive, wait_for_control
from bridge.errors import ControlError
from bridge.ledger.store import Ledger, iso
from bridge.risk import OrderIntent
from quantlab.engine.intervals import get_interval

HELD = "needs_approval"


def expires_at(row: dict[str, Any], bar: str) -> pd.Timestamp:
    """When a held order stops being approvable: one bar after it was held."""
    return pd.Timestamp(row["created_at"]) + get_interval(bar).freq


def held_view(ledger: Ledger, bar: str, now: pd.Timestamp) -> list[dict[str, Any]]:
    """Held orders with their expiry and the seconds left (negative: expired)."""
    out = []
    for r in ledger.held_orders():
        exp = expires_at(r, bar)
        out.append(
            {
                k: r[k]
                for k in (
                    "order_ref",
                    "symbol",
                    "side",
                    "quantity",
                    "order_type",
                    "limit_price",
                    "reason",
                    "created_at",
                )
            }
            | {"expires_at": iso(exp), "seconds_left": (exp - now).total_seconds()}
        )
    return out


def _held(ledger: Ledger, ref: str) -> dict[str, Any]:
    row = ledger.order(ref)
    if row is None:
        raise ControlError(
            "unknown order id", found=repr(ref), fix="use an order_ref listed under held orders (`bridge status`)"
        )
    if row["status"] != HELD:
        raise ControlError(
            "the order is not held for approval",
            found=f"{ref}: status {row['status']}",
            fix="only orders with status needs_approval can be approved or rejected",
        )
    return row


def request_approval(
    ledger: Ledger, ref: str, by: str, now: pd.Timestamp, bar: str, timeout: float = 15.0
) -> dict[str, Any]:
    """``bridge approve ID``: ask the running bridge to check and send a held order."""
    row = _held(ledger, ref)
    exp = expires_at(row, bar)
    if runner_alive(ledger, now) is None:
        if exp <= now:
            raise ControlError(
                "the approval window has passed",
                found=f"{ref} expired at {iso(exp)}",
                fix="nothing to do: the signal is stale",
            )
        raise ControlError(
            "no running bridge to send the order",
            found=ref,
            fix="start `bridge run`, then approve again before it expires",
        )
    cid = ledger.request_control("approve", {"order_ref": ref, "by": by}, now, by)
    answer = wait_for_control(ledger, cid, timeout)
    if answer is None and ledger.claim_control(cid, pd.Timestamp.now(tz="UTC"), by):
        # withdrawn: a bridge that gets round to it later must not send what we reported as not approved
        ledger.finish_control(cid, json.dumps({"error": "withdrawn: the running bridge did not answer in time"}))
        raise ControlError(
            "the running bridge did not answer the approval",
            found=f"control {cid} (withdrawn, the order stays held)",
            fix="check `bridge status`, then approve again",
        )
    if answer is None:  # the bridge claimed it just now: its answer follows
        answer = wait_for_control(ledger, cid, timeout)
    if answer is None:
        raise ControlError(
            "the running bridge took the approval but did not answer",
            found=f"control {cid}",
            fix="check `bridge status` and the order's status before approving again",
        )
    result: dict[str, Any] = json.loads(answer["result"])
    if result.get("error"):
        raise ControlError(result["error"], found=ref, fix=result.get("fix"))
    return result


def reject_held(ledger: Ledger, ref: str, by: str, now: pd.Timestamp) -> dict[str, Any]:
    """``bridge reject ID``: void a held order (recorded with who and when)."""
    with ledger.tx():
        _held(ledger, ref)
        ledger.update_order(
            ref, now, kind="rejected_by_operator", detail=f"rejected by {by}", status="void", reason=f"rejected by {by}"
        )
        result = {"rejected": True, "order_ref": ref}
        ledger.record_control(now, "reject", {"order_ref": ref, "by": by}, by, result)
    return result


def approve_in_runner(
    runner: Any,
    place: Callable[[OrderIntent, str, float | None], None],
    args: dict[str, Any],
    stop_of: Callable[[OrderIntent], float | None] | None = None,
) -> dict[str, Any]:
    """The runner's side of an approval: re-check with the gate (minus the threshold), then send
    with ``place`` (the decision path's). ``runner`` is the runtime's ``Context``; ``stop_of`` gives
    the protective stop the order will carry (the gate's rule 9)."""
    ref = str(args.get("order_ref", ""))
    now = runner.clock.now()
    row = runner.ledger.order(ref)
    if row is None or row["status"] != HELD:
        return {"error": "the order is not held for approval", "order_ref": ref}
    if expires_at(row, runner.cfg.strategy.bar) <= now:
        _void(runner, row, now, "approval window expired")
        return {
            "error": f"the approval window has passed (expired {iso(expires_at(row, runner.cfg.strategy.bar))})",
            "order_ref": ref,
        }
    if runner.state.phase != "ready":
        return {"error": f"the bridge is {runner.state.phase}: try again when it is connected", "order_ref": ref}
    sym = row["symbol"]
    w = runner.windows.get(sym)
    price = w.last_price() if w is not None and len(w) else float(row["limit_price"] or 0.0)
    intent = OrderIntent(
        sym, row["side"], float(row["quantity"]), price, row["order_type"], row["limit_price"], "signal", tif=row["tif"]
    )
    stop = stop_of(intent) if stop_of is not None else None
    if stop is not None:
        intent = dataclasses.replace(intent, stop_price=stop)
    positions = {s: p.quantity for s, p in runner.broker.positions().items()}
    decision = runner.gate(intent, positions, runner.marks(positions), runner.marked_equity(at_close=False)[0], price)
    by = str(args.get("by", "operator"))
    if decision.verdict not in ("allow", "needs_approval"):
        runner.record(
            sym,
            pd.Timestamp(row["bar_time"]) if row["bar_time"] else now,
            decision.verdict,
            f"approved by {by} but {decision.reason}",
            decision.rule,
            order_ref=ref,
            quantity=intent.signed,
        )
        return {"error": f"the risk gate refuses it now: {decision.reason}", "order_ref": ref, "rule": decision.rule}
    with runner.ledger.tx():
        current = runner.ledger.order(ref)  # a reject may have landed while the gate ran: it wins
        if current is None or current["status"] != HELD:
            return {
                "error": f"the order is not held for approval any more (status {current['status'] if current else 'gone'})",
                "order_ref": ref,
            }
        runner.ledger.update_order(
            ref,
            now,
            kind="approved",
            detail=f"approved by {by}",
            status="intent",
            reason=f"{row['reason']}; approved by {by}",
        )
        if row["target"] is not None and math.isfinite(float(row["target"])):
            runner.ledger.set_strategy_state(runner.skey, sym, now, last_target=float(row["target"]))
    runner.alert("approved", f"order {ref} approved by {by}: sending", "warning", order_ref=ref)
    place(intent, ref, None)
    return {"approved": True, "order_ref": ref, "sent": True}


def _void(runner: Any, row: dict[str, Any], now: pd.Timestamp, why: str) -> None:
    runner.ledger.update_order(
        row["order_ref"], now, kind="expired", detail=why, status="void", reason=f"{row['reason']}; {why}"
    )
    runner.alert(
        "approval_expired", f"held order {row['order_ref']} voided: {why}", "warning", order_ref=row["order_ref"]
    )


def expire_held(runner: Any, now: pd.Timestamp) -> None:
    for row in runner.ledger.held_orders():
        if row["run_id"] == runner.run_id or row["strategy"] == runner.skey:
            if expires_at(row, runner.cfg.strategy.bar) <= now:
                _void(runner, row, now, "approval window expired")
