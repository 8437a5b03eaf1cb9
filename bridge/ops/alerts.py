"""Tiered alerts: warning tiers per loss limit, rate-limited rejections, routing and payload formats.

* :class:`Tiers` turns limit usages (``bridge/breakers.py``) into one alert per tier
  crossed per day: warnings at ``[alerts] warn_at`` (80% and 90% by default), critical at
  100%. A tier alerts once a day; falling back and rising again does not repeat it.
* :class:`RateLimit` lets the first alert of a kind through, counts the next ones within
  ``rate_limit`` seconds, and puts "N more suppressed" on the next one it lets through
  (every rejection is alerted, floods are summarised).
* :func:`wants` routes by kind and minimum level per channel; :func:`webhook_body` shapes
  the generic JSON, Slack (``text``) or Discord (``content``) payload.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge.breakers import LOSS_RULES, Usage
from bridge.config import AlertsConfig

RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}


@dataclass
class Tiers:
    """Which tier of which limit has already alerted today."""

    warn_at: tuple[float, ...] = (0.8, 0.9)
    day: str = ""
    done: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: AlertsConfig) -> Tiers:
        return cls(tuple(sorted(float(x) for x in cfg.warn_at)))

    def crossings(self, usages: Iterable[Usage], day: str) -> list[tuple[str, float, Usage]]:
        """(level, tier, usage) for every tier newly reached today, the highest tier per limit."""
        if day != self.day:
            self.day, self.done = day, {}
        out: list[tuple[str, float, Usage]] = []
        for u in usages:
            if u.rule not in LOSS_RULES or u.limit <= 0:
                continue
            frac = 1.0 if u.tripped else u.fraction
            reached = [t for t in (*self.warn_at, 1.0) if frac >= t - 1e-12]
            if not reached or max(reached) <= self.done.get(u.rule, 0.0):
                continue
            tier = max(reached)
            self.done[u.rule] = tier
            out.append(("critical" if tier >= 1.0 else "warning", tier, u))
        return out


def tier_message(tier: float, u: Usage) -> str:
    what = "LIMIT REACHED" if tier >= 1.0 else f"{tier:.0%} of the limit"
    return f"{u.label}: {what} ({u.value:,.4g} of {u.limit:,.4g}, {u.fraction:.0%})"


@dataclass
class RateLimit:
    """At most one alert per kind per ``window`` seconds; the rest are counted and summarised."""

    window: float = 60.0
    last: dict[str, float] = field(default_factory=dict)
    suppressed: dict[str, int] = field(default_factory=dict)

    def admit(self, kind: str, now: float) -> tuple[bool, int]:
        """(send it?, how many of this kind were suppressed since the last one sent)."""
        if self.window <= 0:
            return True, 0
        seen = self.last.get(kind)
        if seen is not None and now - seen < self.window:
            self.suppressed[kind] = self.suppressed.get(kind, 0) + 1
            return False, 0
        self.last[kind] = now
        return True, self.suppressed.pop(kind, 0)


def wants(channel: str, payload: Mapping[str, Any], cfg: AlertsConfig) -> bool:
    """Does ``channel`` (webhook or email) take this alert? Critical ones always go out."""
    level = str(payload.get("level", "warning"))
    if level == "critical":
        return True
    kinds = cfg.webhook_kinds if channel == "webhook" else cfg.email_kinds
    floor = cfg.webhook_min_level if channel == "webhook" else cfg.email_min_level
    if kinds and str(payload.get("kind")) not in kinds:
        return False
    return RANK.get(level, 1) >= RANK.get(floor, 1)


def webhook_body(payload: Mapping[str, Any], fmt: str) -> dict[str, Any]:
    """The JSON body for the webhook: generic (the payload), Slack or Discord."""
    icon = {"info": "ℹ️", "warning": "⚠️", "error": "❗", "critical": "🚨"}.get(str(payload.get("level")), "")
    line = f"{icon} [bridge] {str(payload.get('level', '')).upper()} {payload.get('kind')}: {payload.get('message')}"
    if fmt == "slack":
        return {"text": line}
    if fmt == "discord":
        return {"content": line[:2000]}
    return dict(payload)
