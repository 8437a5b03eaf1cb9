"""When a resting protective order fills within one bar: research's fill rules, for the sim broker.

One bar (O, H, L, C) against the working children of one bracket (issue 12, docs/research.md):
a level the open gaps through fills at the open; otherwise a stop (or trailing stop) fills at
its level when the low reaches it (high for a short's), a take-profit at its level when the high
reaches it; when stop and target are both touched inside the bar the stop wins (the order of
high and low inside a bar is unknown: the pessimistic one). A trailing stop's mark is the entry
and the highs of the bars strictly after the fill bar: it moves only after the bar's check. The
bridge sends its trailing role as a STP it moves itself (``fixed``): it rests where it was put.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Resting:
    """One working protective child: ``side`` is the child's (SELL protects a long)."""

    ref: str
    role: str  # protection.ROLES: stop / take_profit / trail
    side: str
    level: float  # stop, target, or the trailing stop's current level
    trail_pct: float | None = None
    mark: float = 0.0  # high-water (low-water for a short) mark of a trailing stop
    fixed: bool = False  # a trailing role sent as a STP: rests at ``level``, moved by the bridge only

    def trail_level(self) -> float:
        if self.fixed:
            return self.level
        pct = (self.trail_pct or 0.0) / 100.0
        return self.mark * (1 - pct) if self.side == "SELL" else self.mark * (1 + pct)


def first_fill(children: Sequence[Resting], o: float, h: float, low: float) -> tuple[Resting, float] | None:
    """The child that fills in this bar and its raw price (None: nothing fills). One OCA group."""

    def level(c: Resting) -> float:
        return c.trail_level() if c.role == "trail" else c.level

    def stop_like(c: Resting) -> bool:
        return c.role in ("stop", "trail")

    for c in children:  # 1. gaps at the open
        lv, long = level(c), c.side == "SELL"
        if stop_like(c) and (o <= lv if long else o >= lv):
            return c, o
        if c.role == "take_profit" and (o >= lv if long else o <= lv):
            return c, o
    stops = [
        (c, level(c)) for c in children if stop_like(c) and ((low <= level(c)) if c.side == "SELL" else (h >= level(c)))
    ]
    if stops:  # 2. the stop wins over a target touched in the same bar; the nearer stop first
        c, lv = max(stops, key=lambda t: t[1]) if stops[0][0].side == "SELL" else min(stops, key=lambda t: t[1])
        return c, lv
    for c in children:  # 3. targets
        if c.role == "take_profit" and ((h >= c.level) if c.side == "SELL" else (low <= c.level)):
            return c, c.level
    return None


def ratchet(children: Sequence[Resting], h: float, low: float) -> None:
    """After a bar (not the fill bar): trailing marks follow the bar's high (low for a short)."""
    for c in children:
        if c.role == "trail" and not c.fixed:
            c.mark = max(c.mark, h) if c.side == "SELL" else min(c.mark, low)
