"""Which open orders a kill switch without flatten cancels, and which it keeps (issue 12 item 5).

A kill switch is there so a bridge never strands a position. Since entries go out as brackets,
cancelling "every open order" would also cancel the stop and target that protect the positions
it leaves open. So a stop without flatten keeps the **protective children of open positions**
(refs ``<entry>:sl|:tp|:tr[~N]``, :func:`bridge.protection.split_ref`, under an entry this ledger
recorded) and cancels everything else. A child is kept only if it can do nothing but close
(part of) the position: on the opposite side of a non-zero position and no larger than it. A
child resting on a flat symbol, on the wrong side, or larger than the position would open one,
so it is cancelled.

Orders of another API client id cannot be cancelled one by one (IB lets only the placing client,
except the global cancel): this ledger's are listed apart (``foreign``) for the caller to report;
another ledger's (a second strategy on the same account) or a hand-typed order are not this
bridge's and are left alone.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from bridge.brokers.protocol import OrderState
from bridge.protection import split_ref

_TOL = 1e-9


@dataclass(frozen=True)
class StopPlan:
    """``keep``: protective children of open positions; ``cancel``: this client's other open
    orders; ``foreign``: this ledger's other open orders another client id owns (only their owner
    or a global cancel reaches them)."""

    keep: list[OrderState] = field(default_factory=list)
    cancel: list[OrderState] = field(default_factory=list)
    foreign: list[OrderState] = field(default_factory=list)


def keeps(order: OrderState, positions: Mapping[str, float], known_refs: Collection[str]) -> bool:
    """True if ``order`` protects an open position of this ledger and can only reduce it."""
    parsed = split_ref(order.order_ref)
    if parsed is None or parsed[0] not in known_refs:
        return False
    pos = float(positions.get(order.symbol, 0.0))
    if abs(pos) < _TOL or (pos > 0) != (order.side == "SELL"):
        return False
    remaining = float(order.quantity) - float(order.filled)
    return remaining <= abs(pos) + _TOL


def plan_stop(orders: Iterable[OrderState], positions: Mapping[str, float], known_refs: Collection[str]) -> StopPlan:
    """Split the broker's open ``orders`` for a kill switch without flatten (sorted by ref)."""
    out = StopPlan()
    for o in sorted(orders, key=lambda o: o.order_ref):
        if o.done or not o.order_ref:
            continue
        if keeps(o, positions, known_refs):
            out.keep.append(o)
        elif o.foreign:
            if _ours(o.order_ref, known_refs):  # another ledger's (a second strategy's) are not ours to cancel
                out.foreign.append(o)
        else:
            out.cancel.append(o)
    return out


def _ours(ref: str, known_refs: Collection[str]) -> bool:
    parsed = split_ref(ref)
    return ref in known_refs or (parsed is not None and parsed[0] in known_refs)


def kept_text(kept: Iterable[OrderState]) -> str:
    """``kept protective orders: <ref> (SELL 10 SPY), ...`` for the result, the ledger and the alert."""
    items = [f"{o.order_ref} ({o.side} {float(o.quantity) - float(o.filled):g} {o.symbol})" for o in kept]
    return "kept protective orders: " + (", ".join(items) if items else "none")
