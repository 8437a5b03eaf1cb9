"""The trailing stop's ratchet at each completed bar (research's rule 3; :mod:`bridge.trailing`).

The trailing role rests at the broker as a STP; after each completed bar of its symbol the runner
moves it (``Broker.modify``) to research's level from the entry and the bars since the fill bar,
only ever nearer the market. While the bridge is down the stop keeps resting at its last level:
the position stays protected, it just does not ratchet until the bridge is back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from bridge.ledger import queries
from bridge.runtime.context import Context
from bridge.trailing import tighter, trail_stop

log = logging.getLogger("bridge.runner")

#: Statuses of a child resting at the broker (one the broker can move).
MOVABLE = ("sent", "working", "partially_filled")


def filled_at(ctx: Context, ref: str) -> pd.Timestamp | None:
    """When the entry ``ref`` completed (its last fill: IB activates the children then)."""
    t = queries.last_fill_time(ctx.ledger, ref)
    return pd.Timestamp(t) if t else None


def trail_level(ctx: Context, entry: Mapping[str, Any], base: float) -> float | None:
    """Research's trailing level now for the filled ``entry`` (a ledger row) measured from ``base``
    (the raw fill of the position's first entry) and the bars since that entry's fill bar (research
    keeps the mark across an add); None without ``sl_trail``, a fill time, or bars back to the fill bar."""
    pct = ctx.exits.get("sl_trail")
    w = ctx.windows.get(str(entry["symbol"]))
    opening = queries.entry_order(ctx.ledger, str(entry["symbol"]))  # an add keeps the position's mark
    first = opening if opening is not None and opening["side"] == entry["side"] else entry
    when = filled_at(ctx, str(first["order_ref"]))
    if not pct or w is None or not len(w) or when is None:
        return None
    p = w.prices()
    return trail_stop(base, float(pct), entry["side"] == "BUY", w.index, p.high, p.low, when)


def ratchet(ctx: Context, sym: str, entry_base: Callable[[dict[str, Any]], float]) -> None:
    """Move each resting trailing stop of ``sym`` to research's level after the newest completed
    bar, if that is nearer the market (``entry_base``: the raw fill research measures from)."""
    if not ctx.exits.get("sl_trail"):
        return
    for child in ctx.ledger.open_orders(sym):
        if child["role"] != "trail" or child["status"] not in MOVABLE:
            continue
        entry = ctx.ledger.order(str(child["parent_ref"]))
        if entry is None or entry["status"] != "filled" or not entry["avg_fill_price"]:
            continue
        level = trail_level(ctx, entry, entry_base(entry))
        if level is None or not tighter(level, child["aux_price"], child["side"] == "SELL"):
            continue
        if ctx.broker.modify(str(child["order_ref"]), level=level):
            ctx.ledger.update_order(
                str(child["order_ref"]),
                ctx.clock.now(),
                kind="modified",
                detail=f"trailing stop ratcheted to {level:g} after the bar {ctx.windows[sym].last_time}",
                aux_price=level,
            )


def ratcheted(ctx: Context, kid: dict[str, Any], entry: Mapping[str, Any], base: float) -> dict[str, Any]:
    """A trailing child's row ``kid`` at its ratcheted level now (a re-attach must not put it back at
    entry x (1 - pct)); any other row, or one whose bars do not reach the fill bar, unchanged."""
    if kid["role"] != "trail":
        return kid
    level = trail_level(ctx, entry, base)
    return {**kid, "aux_price": level} if level is not None else kid
