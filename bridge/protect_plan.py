"""What a reconcile does about protective orders: a pure plan from the ledger, the broker and positions.

Called on start and after every reconnect (issue 12 item 5). The broker is the truth about
what rests there; the ledger is the truth about what the bridge meant. The rules:

- a child the broker holds is **adopted** (ledger updated, never voided, never sent again),
  also when the ledger does not know it (a crash between placeOrder and the ledger write);
- a child the ledger thinks open but the broker does not hold is **gone** (filled or cancelled
  while the bridge was away: the fills decide which);
- a position whose entry asks for protection and lacks a role at the broker gets it
  **re-attached** (a new ref ``<entry>:sl~N``, same OCA group, levels from the entry's fill);
- a child resting for a symbol that is flat (or on the wrong side) is **cancelled** first: a
  stop left behind after an exit would open a position;
- a child whose quantity differs from the position is **resized** (partial exits).

The plan only lists actions; the runtime performs them (cancels before anything is placed).
Refs and levels are main's (:mod:`bridge.protection`): ``<entry>:sl|:tp|:tr``, ``<entry>:oca``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from bridge.protection import children, oca_group, split_ref

ActionKind = Literal["cancel", "adopt", "gone", "resize", "attach"]
_ORDER = {"cancel": 0, "gone": 1, "adopt": 2, "resize": 3, "attach": 4}


@dataclass(frozen=True)
class Entry:
    """The entry a position came from: its ref, side and raw fill price."""

    ref: str
    side: str
    price: float


@dataclass(frozen=True)
class HeldChild:
    """A protective order as the broker reports it (open orders), identified by its ref."""

    ref: str
    symbol: str
    side: str
    quantity: float


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    ref: str
    symbol: str
    quantity: float = 0.0
    detail: str = ""


def _role(ref: str) -> str:
    parsed = split_ref(ref)
    return parsed[1] if parsed else ""


def _attempt(ref: str) -> int:
    tail = ref.rpartition(":")[2]
    return int(tail.split("~", 1)[1]) if "~" in tail else 0


def plan(
    rules: Mapping[str, float],
    positions: Mapping[str, float],
    entries: Mapping[str, Entry],
    ledger_open: Mapping[str, str],
    held: Sequence[HeldChild],
    known_refs: Sequence[str] = (),
) -> list[Action]:
    """The actions that leave every position protected and nothing protecting a flat symbol.

    ``rules``: the exit rules (``sl_stop``...); ``ledger_open``: child ref -> symbol, the children the
    ledger thinks open; ``held``: children the broker holds; ``known_refs``: every child ref the
    ledger ever recorded (a re-attach never reuses one).
    """
    out: list[Action] = []
    held_refs = {h.ref for h in held}
    for ref in sorted(set(ledger_open) - held_refs):
        out.append(Action("gone", ref, ledger_open[ref], detail="the broker no longer holds it"))
    covered: dict[str, set[str]] = {}
    for h in sorted(held, key=lambda h: h.ref):
        pos = float(positions.get(h.symbol, 0.0))
        if pos == 0 or (pos > 0) != (h.side == "SELL"):
            out.append(Action("cancel", h.ref, h.symbol, detail=f"position {pos:g}: a resting {h.side} would open one"))
            continue
        out.append(
            Action(
                "adopt",
                h.ref,
                h.symbol,
                h.quantity,
                detail="held at the broker" + ("" if h.ref in ledger_open else "; unknown to the ledger"),
            )
        )
        covered.setdefault(h.symbol, set()).add(_role(h.ref))
        if abs(h.quantity - abs(pos)) > 1e-9:
            out.append(Action("resize", h.ref, h.symbol, abs(pos), detail=f"{h.quantity:g} -> {abs(pos):g} shares"))
    used = set(known_refs) | held_refs | set(ledger_open)
    for sym in sorted(positions):
        pos, entry = float(positions[sym]), entries.get(sym)
        if pos == 0 or entry is None or not rules:
            continue
        parent = {"order_ref": entry.ref, "symbol": sym, "side": "BUY" if pos > 0 else "SELL", "quantity": abs(pos)}
        for child in children(parent, rules, entry.price):
            role = str(child["role"])
            if role in covered.get(sym, set()):
                continue
            n = max([_attempt(r) for r in used if split_ref(r) == (entry.ref, role)], default=-1) + 1
            ref = child["order_ref"] if n == 0 else f"{child['order_ref']}~{n}"
            level = child["limit_price"] if role == "take_profit" else child["aux_price"]
            at = f"at {level:g}" if level is not None else f"{child['trail_pct']:g}% trail"
            out.append(
                Action("attach", ref, sym, abs(pos), detail=f"{child['order_type']} {at} in {oca_group(entry.ref)}")
            )
    return sorted(out, key=lambda a: (_ORDER[a.kind], a.symbol, a.ref))
