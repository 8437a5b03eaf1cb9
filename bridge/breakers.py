"""Circuit breakers: pure functions from an account snapshot and limits to usages and trips.

The per-order gate (``bridge/risk.py``) judges one order; the breakers judge the account.
:func:`usages` measures every configured limit as ``value / limit`` (the dashboard's gauges
and the 80%/90% alert tiers use the same numbers); :func:`tripped` lists the usages at or
above 1. A trip latches the kill switch through the same path as ``bridge stop``, says
which rule fired, survives a restart (the ledger keeps it) and clears only on
``bridge resume``. :func:`pre_trade` holds the two per-order caps (per-symbol notional,
cash reserve) that reject an order before it can breach them.

No I/O, no clock: ``bridge/breaker_hook.py`` gathers the snapshot from the runner and ledger.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from bridge.config import BreakersConfig
from bridge.risk import Decision, OrderIntent, RiskLimits

_EPS = 1e-9
#: What a trip does: flatten (losses: get out) or halt (cancel orders, keep positions).
ACTION = {
    "daily_loss_pct": "flatten",
    "daily_loss": "flatten",
    "drawdown": "flatten",
    "rapid_loss": "flatten",
    "symbol_daily_loss": "flatten",
    "error_rate": "halt",
    "symbol_notional": "halt",
    "cash_reserve": "halt",
}
#: The loss limits (80%/90% warning tiers apply to these).
LOSS_RULES = ("daily_loss_pct", "daily_loss", "drawdown", "rapid_loss", "symbol_daily_loss")


@dataclass(frozen=True)
class Snapshot:
    """The account as the breakers see it (currency amounts in the account's currency)."""

    equity: float
    sod_equity: float
    peak_equity: float
    window_high: float  # highest equity within the rapid-loss window
    cash: float
    errors: int  # rejections, disconnects and data errors within the error window
    notional: Mapping[str, float] = field(default_factory=dict)  # |position| * mark per symbol
    symbol_pnl: Mapping[str, float] = field(default_factory=dict)  # today's P&L per symbol


@dataclass(frozen=True)
class Usage:
    """One limit: the measured value, the limit and how much of it is used (1.0 = at the limit)."""

    rule: str
    value: float
    limit: float
    label: str
    floor: bool = False  # the value must stay ABOVE the limit (cash reserve)

    @property
    def fraction(self) -> float:
        if self.limit <= 0:
            return 0.0
        if self.floor:
            return math.inf if self.value <= 0 else self.limit / self.value
        return self.value / self.limit

    @property
    def tripped(self) -> bool:
        if self.limit <= 0:
            return False
        if self.floor:
            return self.value <= self.limit * (1 + _EPS)
        return self.value >= self.limit * (1 - _EPS)

    def reason(self) -> str:
        verb = "fell to" if self.floor else "reached"
        return f"breaker {self.rule}: {self.label} {self.value:,.6g} {verb} the limit {self.limit:,.6g}"


def _loss(ref: float, now: float) -> float:
    """Loss from ``ref`` to ``now`` as a fraction of ``ref`` (0 when not measurable or a gain)."""
    if not (ref > 0 and math.isfinite(ref) and math.isfinite(now)):
        return 0.0
    return max(0.0, (ref - now) / ref)


def usages(s: Snapshot, b: BreakersConfig, risk: RiskLimits) -> list[Usage]:
    """Every enabled limit measured against the snapshot, in a fixed order."""
    out = [
        Usage(
            "daily_loss_pct",
            _loss(s.sod_equity, s.equity),
            risk.daily_loss_limit_pct,
            "daily loss (fraction of start-of-day equity)",
        )
    ]
    if b.daily_loss_limit > 0:
        cash_loss = max(0.0, s.sod_equity - s.equity) if s.sod_equity > 0 and math.isfinite(s.equity) else 0.0
        out.append(Usage("daily_loss", cash_loss, b.daily_loss_limit, "daily loss (currency)"))
    if b.max_drawdown_pct > 0:
        out.append(
            Usage("drawdown", _loss(s.peak_equity, s.equity), b.max_drawdown_pct, "drawdown from the equity peak")
        )
    if b.rapid_loss_pct > 0:
        out.append(
            Usage(
                "rapid_loss", _loss(s.window_high, s.equity), b.rapid_loss_pct, f"loss within {b.rapid_loss_window:g} s"
            )
        )
    if b.max_errors > 0:
        out.append(Usage("error_rate", float(s.errors), float(b.max_errors), f"errors within {b.error_window:g} s"))
    if b.symbol_daily_loss > 0:
        worst = min(s.symbol_pnl.items(), key=lambda kv: (kv[1], kv[0]), default=("", 0.0))
        out.append(
            Usage("symbol_daily_loss", max(0.0, -worst[1]), b.symbol_daily_loss, f"{worst[0] or 'symbol'} loss today")
        )
    if b.symbol_max_notional > 0:
        top = max(s.notional.items(), key=lambda kv: (kv[1], kv[0]), default=("", 0.0))
        out.append(Usage("symbol_notional", top[1], b.symbol_max_notional, f"{top[0] or 'symbol'} position notional"))
    if b.cash_reserve > 0 and math.isfinite(s.cash):
        out.append(Usage("cash_reserve", s.cash, b.cash_reserve, "cash", floor=True))
    return out


def tripped(s: Snapshot, b: BreakersConfig, risk: RiskLimits) -> list[Usage]:
    """The limits at or above their threshold (empty: nothing trips)."""
    return [u for u in usages(s, b, risk) if u.tripped]


def pre_trade(intent: OrderIntent, position: float, cash: float, b: BreakersConfig) -> Decision | None:
    """Per-order caps: a reject Decision, or None to let the gate decide.

    Exits (orders that shrink the position) always pass: they are the remedy.
    """
    new = position + intent.signed
    if abs(new) < abs(position) - _EPS:
        return None
    if b.symbol_max_notional > 0:
        notional = abs(new) * intent.price
        if notional > b.symbol_max_notional * (1 + _EPS):
            return Decision(
                "reject",
                f"{intent.symbol} position notional {notional:,.2f} would exceed breakers.symbol_max_notional "
                f"{b.symbol_max_notional:,.2f}",
                "symbol_notional",
            )
    if b.cash_reserve > 0 and intent.side == "BUY" and math.isfinite(cash):
        after = cash - intent.notional
        if after < b.cash_reserve * (1 - _EPS):
            return Decision(
                "reject",
                f"cash after the buy {after:,.2f} would fall below breakers.cash_reserve {b.cash_reserve:,.2f}",
                "cash_reserve",
            )
    return None
