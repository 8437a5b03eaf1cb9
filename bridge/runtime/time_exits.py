"""Rules the runner times itself (issue 12): ``max_hold`` exits and limit entries' expiry.

Research (``quantlab/kernels/sim.py``, docs/research.md "Exit and entry rules") closes a
position entered in bar *e* at bar *e + max_hold*'s open, before the strategy's next order, and
works a limit entry at the signal close x (1 - entry_limit) (x (1 + entry_limit) for a sell)
from the bar after its signal for ``limit_expiry`` bars; an expired limit is simply gone (no
market replacement). The runner decides when bar *i* completes, which is bar *i + 1*'s open:
at the decision on bar *i* a position entered in bar *e* has been held *i + 1 - e* bars and a
limit sent on signal bar *s* has worked *i - s* bars.

Both counts come from the ledger (the fill that opened the position, the limit's signal bar)
and the window's bars, never from memory, so a restarted runner exits and expires at the bar
research does. A time exit has a deterministic ref per (symbol, bar): it is never sent twice.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from bridge.feed import BarWindow
from bridge.ledger import queries
from bridge.ledger.store import OPEN
from bridge.orders import order_ref
from bridge.protection import TIMED_RULES, ProtectionError
from bridge.risk import OrderIntent
from bridge.runtime.context import Context
from quantlab.engine.strategy import StrategySpec

log = logging.getLogger("bridge.runner")


def timed_rules(spec: StrategySpec, params: Mapping[str, float]) -> dict[str, float]:
    """The timed rules among resolved ``params`` (``limit_expiry`` 1 and ``limit_ticks`` 0 unless given)."""
    out = {p.name: float(params[p.name]) for p in spec.exit_params if p.name in TIMED_RULES and p.name in params}
    if "entry_limit" in out:
        out.setdefault("limit_expiry", 1.0)
        out.setdefault("limit_ticks", 0.0)
    return out


def research_limit(side: str, close: float, offset: float) -> float:
    """Research's limit price, on the cent grid, rounded so it never crosses research's price
    (a buy's down, a sell's up): on cent-priced bars it trades exactly when research's does."""
    raw = close * (1 - offset) if side == "BUY" else close * (1 + offset)
    scaled = raw * 100.0
    return (math.floor(scaled + 1e-9) if side == "BUY" else math.ceil(scaled - 1e-9)) / 100.0


def bar_position(index: pd.DatetimeIndex, when: pd.Timestamp) -> int:
    """Position of the bar ``when`` falls in (the last bar starting at or before it; -1: before the window)."""
    return int(index.searchsorted(when, side="right")) - 1


class TimeRules:
    """``max_hold`` exits and limit-entry expiry for one run; called by the decision path."""

    def __init__(
        self,
        ctx: Context,
        place: Callable[[OrderIntent, str, float | None], None],
        clear_working: Callable[[str], bool],
    ) -> None:
        self.ctx = ctx
        rules = timed_rules(ctx.spec, ctx.params)
        self.max_hold = int(rules["max_hold"]) if "max_hold" in rules else None
        self.entry_limit = rules.get("entry_limit")
        self.expiry = int(rules.get("limit_expiry", 1.0))
        self._place = place
        self._clear = clear_working
        self._untimed: set[str] = set()  # symbols alerted once: a position whose entry the ledger never saw
        if self.max_hold is not None and ctx.cfg.mode != "replay" and ctx.capacity < self.max_hold + 2:
            raise ProtectionError(
                "[data] history_bars is too short for max_hold: the window must reach back to a held "
                "position's entry bar to count it",
                found=f"history_bars={ctx.capacity}, max_hold={self.max_hold}",
                fix=f"set [data] history_bars to at least {self.max_hold + 2}, or 0 (auto)",
            )
        ticks = rules.get("limit_ticks", 0.0)
        if ticks and ctx.cfg.mode != "replay":
            log.warning(
                "limit_ticks is research's fill model: the broker fills live limits by its own rules",
                extra={"event": "limit_ticks_live", "limit_ticks": ticks},
            )

    @property
    def limits_by_bars(self) -> bool:
        """Limit orders are research's limit entries: they expire by bars, not ``[orders] limit_timeout``."""
        return self.entry_limit is not None

    def before_decision(self, sym: str, w: BarWindow, bar_time: pd.Timestamp) -> bool:
        """Expire limit entries, then send a due time exit (research: exits before the strategy's
        order). False while that exit is still working: the strategy's order waits a bar."""
        self.expire_limits(sym, w, bar_time)
        return self.time_exit(sym, w, bar_time)

    def waits_for_fresh_entry(self, sym: str, target: float) -> bool:
        """Research's fresh-entry rule: after an exit by a rule (time, stop, target, trail) a flat
        symbol is not re-entered on the same side until the target has gone to 0 or flipped; a
        changed target on that side only becomes the last target acted on."""
        if not (self.ctx.exits or self.max_hold) or target == 0:
            return False
        held = self.ctx.broker.positions().get(sym)
        if held is not None and held.quantity:
            return False
        side = queries.fresh_entry_block(self.ctx.ledger, self.ctx.skey, sym)
        return side != 0 and (target > 0) == (side > 0)

    def limit_entry(
        self, side: str, close: float, position: float, desired: float, bar_time: pd.Timestamp
    ) -> tuple[float, str] | None:
        """(limit, tif) when this order is research's limit entry (it opens from flat); None for a
        market order (no entry_limit, an add, a resize or an exit: research keeps those at market)."""
        if self.entry_limit is None or desired == 0 or position != 0:
            return None
        return research_limit(side, close, self.entry_limit), self._tif(bar_time)

    def research_entry(self, row: Mapping[str, Any], fill: float) -> float:
        """The entry price research measures exit levels from: for a limit entry filled at its
        limit, research's own (unrounded) limit, so the children sit within one tick of research's
        levels rather than two; otherwise the raw fill."""
        limit = row.get("limit_price")
        w = self.ctx.windows.get(str(row.get("symbol")))
        if self.entry_limit is None or row.get("order_type") != "LMT" or not limit or not row.get("bar_time"):
            return fill
        if abs(fill - float(limit)) > 1e-9 or w is None or not len(w):
            return fill
        i = bar_position(w.index, pd.Timestamp(row["bar_time"]))
        if i < 0:
            return fill
        close = float(w.prices().close[i])
        return close * (1 - self.entry_limit) if row.get("side") == "BUY" else close * (1 + self.entry_limit)

    def expire_limits(self, sym: str, w: BarWindow, bar_time: pd.Timestamp) -> None:
        """Cancel (with its children) a limit entry that has worked ``limit_expiry`` bars unfilled."""
        if self.entry_limit is None:
            return
        index = w.index
        now_pos = bar_position(index, bar_time)
        for r in self.ctx.ledger.open_orders(sym):
            if r["order_type"] != "LMT" or r["role"] or r["purpose"] != "signal" or not r["bar_time"]:
                continue
            ref = str(r["order_ref"])
            worked = now_pos - bar_position(index, pd.Timestamp(r["bar_time"]))
            if worked < self.expiry or ref in self.ctx.state.cancel_reason:
                continue
            self.ctx.state.cancel_reason[ref] = "limit_expiry"
            self.ctx.ledger.update_order(
                ref,
                self.ctx.clock.now(),
                kind="expired",
                detail=f"limit_expiry {self.expiry} bars: unfilled after {worked} bars, cancelled (no market replacement)",
            )
            self.ctx.broker.cancel(ref)
            self._children_after_expiry(ref, float(r["filled"] or 0.0))
            log.info("limit entry expired", extra={"event": "limit_expired", "order_ref": ref, "bars": worked})

    def _children_after_expiry(self, ref: str, filled: float) -> None:
        """An unfilled limit's children go with it (IB cancels them with the parent; say so to any
        broker). A partly filled one (live only: research fills whole) keeps them, resized to the
        shares it bought, so the part held stays protected and a stop never sells more."""
        modify = getattr(self.ctx.broker, "modify", None)
        for child in self.ctx.ledger.children(ref):
            cref = str(child["order_ref"])
            if child["status"] not in OPEN:
                continue
            if filled > 0 and modify is not None:
                if float(child["quantity"]) != filled and modify(cref, quantity=filled):
                    self.ctx.ledger.update_order(
                        cref,
                        self.ctx.clock.now(),
                        kind="modified",
                        detail=f"resized to the {filled:g} shares the expired limit bought",
                        quantity=filled,
                    )
                continue
            self.ctx.state.cancel_reason.setdefault(cref, "limit_expiry")
            self.ctx.broker.cancel(cref)

    def time_exit(self, sym: str, w: BarWindow, bar_time: pd.Timestamp) -> bool:
        """Close ``sym`` at market once held ``max_hold`` bars; True when the strategy may decide."""
        if self.max_hold is None:
            return True
        held = self.ctx.broker.positions().get(sym)
        qty = held.quantity if held is not None else 0.0
        if not qty:
            return True
        entry = queries.entry_fill_time(self.ctx.ledger, sym)
        if entry is None:
            if sym not in self._untimed:
                self._untimed.add(sym)
                self.ctx.alert(
                    "max_hold_untimed",
                    f"{sym}: the position's entry predates the ledger's fills: max_hold does not time it",
                    "warning",
                    symbol=sym,
                )
            return True
        index = w.index
        bars = bar_position(index, bar_time) - bar_position(index, pd.Timestamp(entry)) + 1
        if bars < self.max_hold:
            return True
        # one time exit per (symbol, bar): a restart finds it; one voided unsent (a crash before
        # placeOrder, proven absent at the reconnect) is sent again as ~N
        base = order_ref(self.ctx.spec.name, self.ctx.skey, sym, bar_time, "max_hold")
        n = self.ctx.ledger.count_refs(base)
        last = order_ref(self.ctx.spec.name, self.ctx.skey, sym, bar_time, "max_hold", attempt=n - 1) if n else None
        row = self.ctx.ledger.order(last) if last else None
        if row is not None and row["status"] != "void":
            return self._settled(str(last))
        ref = order_ref(self.ctx.spec.name, self.ctx.skey, sym, bar_time, "max_hold", attempt=n)
        if not self._send(sym, w, bar_time, ref, qty, bars, entry):
            return True
        return self._settled(ref)

    def _send(
        self, sym: str, w: BarWindow, bar_time: pd.Timestamp, ref: str, qty: float, bars: int, entry: str
    ) -> bool:
        """Record and send the time exit (children cancelled first); False if nothing was sent."""
        why = f"max_hold {self.max_hold} bars (held {bars}, entered {entry})"
        if not self._clear(sym):  # its bracket children must not fill after it
            self.ctx.record(sym, bar_time, "blocked", f"{why}: an earlier order is still working", "working_order")
            return False
        intent = OrderIntent(sym, "SELL" if qty > 0 else "BUY", abs(qty), w.last_close, "MKT", None, "time_exit")
        positions = {s: p.quantity for s, p in self.ctx.broker.positions().items()}
        fill_est = w.forming.open if w.forming is not None else w.last_close
        decision = self.ctx.gate(
            intent, positions, self.ctx.marks(positions), self.ctx.marked_equity(at_close=True)[0], fill_est
        )
        self.ctx.record(
            sym,
            bar_time,
            decision.verdict,
            f"{why}: {decision.reason}",
            decision.rule,
            order_ref=ref if decision.allowed else None,
            quantity=intent.signed,
            position=qty,
            desired=0.0,
        )
        if not decision.allowed:
            return False
        status = "dry_run" if self.ctx.cfg.dry_run else "intent"
        self.ctx.ledger.insert_order(
            self.ctx.order_row(intent, ref, bar_time, status, None, None, why), self.ctx.clock.now()
        )
        if not self.ctx.cfg.dry_run:
            self._place(intent, ref, None)
        return True

    def _settled(self, ref: str) -> bool:
        """Wait (``[orders] cancel_wait``) for the time exit to finish; False while it still works."""
        deadline = time.monotonic() + self.ctx.cfg.orders.cancel_wait
        row: dict[str, Any] | None = self.ctx.ledger.order(ref)
        while row is not None and row["status"] in OPEN and time.monotonic() < deadline:
            self.ctx.pump(0.05)
            row = self.ctx.ledger.order(ref)
        return row is None or row["status"] not in OPEN

    def _tif(self, bar_time: pd.Timestamp) -> str:
        """DAY when the limit's last working bar ends by today's close, else GTC (the runner cancels it)."""
        if not self.ctx.interval.minutes:
            return self.ctx.cfg.orders.tif if self.expiry == 1 else "GTC"
        now = self.ctx.clock.now()
        close = self.ctx.calendar.session_close_of(now)
        ends = now + pd.Timedelta(minutes=self.ctx.interval.minutes * self.expiry)
        return self.ctx.cfg.orders.tif if close is not None and ends <= close else "GTC"
