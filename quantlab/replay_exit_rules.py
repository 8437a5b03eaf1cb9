"""Exit/entry rules and extra costs as the research reference reads them (issue 12).

Research-only: used by :mod:`quantlab.replay_exits`, never by the engine or the bridge.
These dataclasses are deliberately separate from the engine's own declaration of the same
parameters, so the reference replay shares no code with the kernel it checks; tests map
one onto the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from quantlab.errors import QuantlabError

#: Tick size of the optional limit fill-probability rule (US equities above $1).
TICK = 0.01


def _off(value: float) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == 0


@dataclass(frozen=True)
class ExitRules:
    """Protective exits and limit entries (NaN or 0 = rule off).

    Args:
        sl_stop: stop-loss fraction below the entry price (above for a short), in (0, 1).
        tp_stop: take-profit fraction above the entry price (below for a short), > 0.
        sl_trail: trailing-stop fraction below the high-water mark, in (0, 1).
        max_hold: bars a position is held before it is closed at an open (>= 1).
        entry_limit: a new entry is a limit this fraction through the signal close (>= 0).
        limit_expiry: bars the entry limit works after the signal bar (>= 1).
        limit_ticks: ticks the price must trade through the limit to fill it (>= 0).
    """

    sl_stop: float = math.nan
    tp_stop: float = math.nan
    sl_trail: float = math.nan
    max_hold: int = 0
    entry_limit: float = math.nan
    limit_expiry: int = 1
    limit_ticks: int = 0

    def __post_init__(self) -> None:
        for name, low, high in (("sl_stop", 0.0, 1.0), ("sl_trail", 0.0, 1.0)):
            v = getattr(self, name)
            if not _off(v) and not low < v < high:
                raise QuantlabError(f"{name} must be a fraction in (0, 1)", found=v, fix=f"e.g. {name}=0.05")
        if not _off(self.tp_stop) and not self.tp_stop > 0:
            raise QuantlabError("tp_stop must be > 0", found=self.tp_stop, fix="e.g. tp_stop=0.10")
        if self.max_hold < 0 or self.limit_expiry < 1 or self.limit_ticks < 0:
            raise QuantlabError(
                "max_hold >= 0, limit_expiry >= 1 and limit_ticks >= 0 are required",
                found=(self.max_hold, self.limit_expiry, self.limit_ticks),
                fix="use whole bar and tick counts",
            )
        if not _off(self.entry_limit) and not self.entry_limit >= 0:
            raise QuantlabError("entry_limit must be >= 0", found=self.entry_limit, fix="e.g. entry_limit=0.005")

    def on(self, name: str) -> bool:
        return not _off(getattr(self, name))

    @property
    def protective(self) -> bool:
        return self.on("sl_stop") or self.on("tp_stop") or self.on("sl_trail")

    @property
    def limit_entries(self) -> bool:
        return not (self.entry_limit is None or math.isnan(self.entry_limit))


@dataclass(frozen=True)
class ExtraCosts:
    """Costs beyond commission and slippage (all off by default; rates are inputs here).

    Args:
        sec_fee_rate: SEC Section 31 fee per dollar of sell notional.
        taf_per_share: FINRA TAF per share sold, ...
        taf_max: ... capped at this amount per trade.
        half_spread_bps: half the bid-ask spread, paid on every fill like slippage.
        borrow_rate: annual short borrow rate, charged at each close on the short notional
            for one bar (rate / bars per year).
    """

    sec_fee_rate: float = 0.0
    taf_per_share: float = 0.0
    taf_max: float = math.inf
    half_spread_bps: float = 0.0
    borrow_rate: float = 0.0

    def sell_fees(self, qty: float, fill_price: float) -> float:
        """SEC fee on the notional plus the capped TAF for one sell of ``qty`` shares."""
        return self.sec_fee_rate * qty * fill_price + min(self.taf_per_share * qty, self.taf_max)
