"""Where resting orders trigger and fill along a price move. Pure functions, no state.

A price change reaches the order engine as a ``Move`` from ``start`` to ``end``:

- ``path``: the price traded continuously from start to end, every price in between
  (a segment of a bar's intrabar path). A level crossed inside the segment is hit
  exactly at the level; a level already beyond at ``start`` is hit at ``start``.
- ``gap``: only ``end`` traded (a bar's open after the previous price, or an order
  arriving at the market). A stop gapped through fills at ``end``, the first price
  beyond it; a limit gapped through fills at ``end``, the better price.
- ``set``: ``FakeGateway.set_price``, a jump whose path is unknown. The fake takes the
  harsher fill for each side: a stop fills at ``end`` (slippage), a limit at its limit
  (no price improvement).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["path", "gap", "set"]
#: Intrabar orders: ``auto`` is O-L-H-C for a bar closing at or above its open and
#: O-H-L-C for a bar closing below it; ``low_first``/``high_first`` force one order.
INTRABAR = ("auto", "low_first", "high_first")


@dataclass(frozen=True)
class Move:
    start: float | None
    end: float
    kind: Kind = "path"

    def rest_from(self, price: float) -> Move:
        """The part of this move after ``price`` traded (an order activated mid-move)."""
        return Move(price, self.end, self.kind)


def split_at(move: Move, levels: list[float]) -> list[Move]:
    """Cut a continuous move at the ``levels`` strictly inside it, in path order."""
    if move.kind != "path" or move.start is None:
        return [move]
    lo, hi = sorted((move.start, move.end))
    inside = sorted({x for x in levels if lo < x < hi}, reverse=move.end < move.start)
    points = [*inside, move.end]
    out, cur = [], move.start
    for p in points:
        out.append(Move(cur, p, "path"))
        cur = p
    return out


def _beyond(price: float, level: float, up: bool) -> bool:
    return price >= level if up else price <= level


def first_reaching(level: float, up: bool, move: Move) -> float | None:
    """First traded price at or beyond ``level`` (``>=`` if ``up``) along ``move``, or None."""
    if move.kind == "path" and move.start is not None:
        if _beyond(move.start, level, up):
            return move.start
        return level if _beyond(move.end, level, up) else None
    return move.end if _beyond(move.end, level, up) else None


def stop_hit(stop: float, buy: bool, move: Move) -> float | None:
    """Trigger (and STP fill) price of a stop: a buy stop triggers at or above, a sell stop at or below."""
    return first_reaching(stop, buy, move)


def limit_hit(limit: float, buy: bool, move: Move) -> float | None:
    """Fill price of a resting limit: a buy at or below ``limit``, a sell at or above."""
    hit = first_reaching(limit, not buy, move)
    if hit is not None and move.kind == "set":
        return limit
    return hit


def trail_offset(price: float, amount: float | None, percent: float | None) -> float | None:
    """The trailing distance at ``price``: ``trailingPercent`` of it, else the ``auxPrice`` amount."""
    if percent is not None and percent > 0:
        return price * percent / 100.0
    if amount is not None and amount > 0:
        return amount
    return None


def trail_level(
    buy: bool, anchor: float, floor: float | None, amount: float | None, percent: float | None
) -> float | None:
    """Current stop of a trailing order: ``offset`` behind the best price seen (``anchor``).

    ``floor`` is the client's ``trailStopPrice``: the starting stop, which the trail
    only ever moves in the favourable direction (up for a sell, down for a buy).
    """
    off = trail_offset(anchor, amount, percent)
    if off is None:
        return floor
    level = anchor + off if buy else anchor - off
    if floor is None:
        return level
    return min(level, floor) if buy else max(level, floor)


def trail_step(buy: bool, anchor: float, move: Move, level_at: object) -> tuple[float, float | None]:
    """Walk a trailing stop along ``move``: ``(new anchor, fill price or None)``.

    ``level_at(anchor)`` gives the stop for an anchor. A sell trail ratchets up while the
    price rises and triggers when it falls to the stop (a buy trail mirrors it). Inside
    a continuous segment the stop is hit at its level; after a gap, at the gapped price.
    """
    start = move.start if move.kind == "path" else None
    if start is not None:
        anchor = min(anchor, start) if buy else max(anchor, start)
    level = level_at(anchor)  # type: ignore[operator]
    if start is not None:
        if level is not None and _beyond(start, level, buy):
            return anchor, start
        favourable = move.end < start if buy else move.end > start
        if not favourable:
            if level is not None and _beyond(move.end, level, buy):
                return anchor, level
            return anchor, None
    elif level is not None and _beyond(move.end, level, buy):
        return anchor, move.end
    best = min(anchor, move.end) if buy else max(anchor, move.end)
    return best, None


def bar_points(o: float, h: float, low: float, c: float, mode: str) -> list[float]:
    """The intrabar path of one bar: open, the two extremes in path order, close."""
    if mode not in INTRABAR:
        raise ValueError(f"intrabar path mode {mode!r} is not one of {INTRABAR}")
    low_first = mode == "low_first" or (mode == "auto" and c >= o)
    return [o, low, h, c] if low_first else [o, h, low, c]


def bar_moves(prev: float | None, points: list[float]) -> list[Move]:
    """Moves for a new bar: a gap from the previous price to the first point, then segments."""
    moves = [Move(prev, points[0], "gap")]
    moves += [Move(a, b, "path") for a, b in zip(points, points[1:], strict=False) if a != b]
    return moves


def extension_points(
    old: tuple[float, float], new_low: float, new_high: float, close: float, low_first: bool
) -> list[float]:
    """Path of a forming bar that was replaced: only its new extremes, then the new close.

    ``old`` is ``(low, high)`` of the bar before the update; the part of the range that
    already traded is not walked again.
    """
    lo = [new_low] if new_low < old[0] else []
    hi = [new_high] if new_high > old[1] else []
    return (lo + hi if low_first else hi + lo) + [close]


def path_moves(prev: float | None, points: list[float]) -> list[Move]:
    """Continuous moves from ``prev`` through ``points`` (no gap)."""
    out: list[Move] = []
    cur = prev
    for p in points:
        out.append(Move(cur, p, "path") if cur is not None else Move(None, p, "gap"))
        cur = p
    return out


def check_ticks(ticks: list[float], o: float, h: float, low: float, c: float) -> list[float]:
    """Validate an explicit tick list for a bar: it starts at the open, ends at the close, stays in range."""
    pts = [float(t) for t in ticks]
    if not pts:
        raise ValueError("ticks is empty; give at least [open, close] or leave ticks=None for the O-L-H-C path")
    if pts[0] != o or pts[-1] != c:
        raise ValueError(f"ticks must start at the open {o} and end at the close {c}; found {pts[0]} .. {pts[-1]}")
    bad = [p for p in pts if p < low or p > h]
    if bad:
        raise ValueError(f"ticks {bad} lie outside the bar's range [{low}, {h}]; widen the bar or fix the ticks")
    return pts
