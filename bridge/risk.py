"""The risk gate: a pure function from (order, exposure, context, limits) to a Decision.

No I/O, no clock, no broker: the runner gathers the inputs (positions, prices, equity,
start-of-day equity, kill-switch state, order counts from the ledger, whether the
exchange calendar says the market is open) and calls :func:`check` for **every** order,
including flattening orders. Every decision, allowed or not, is logged with its reason.

Verdicts:
    allow: send it.
    needs_approval: notional above the approval threshold; held in the ledger, not sent.
    reject: a limit is hit; nothing is sent.
    flatten: the daily loss limit is breached; latch the kill switch, flatten, halt.

Rules, in order (the first that fires decides):
    1. malformed order (quantity/price not positive and finite)          -> reject
    2. kill switch latched or trading halted: only flattening orders     -> reject otherwise
       (a latched switch never asks to flatten twice)
    3. daily loss >= ``daily_loss_limit_pct`` of start-of-day equity     -> flatten
       (flattening orders themselves are exempt, they are the remedy)
    4. flattening orders (kill switch, stop, end of day)                 -> allow
    5. market closed (exchange calendar), when ``market_hours``          -> reject
    6. orders in the last minute / today at their maximum                -> reject
    7. limit price outside ``limit_band_pct`` of the last price          -> reject
    8. exits (reduce the position toward zero without crossing it)       -> allow
    9. entry stop: a stop on the wrong side of the entry, no stop when
       ``require_stop`` (or ``max_loss_per_trade``) is set, or
       opened quantity * |entry - stop| above ``max_loss_per_trade``      -> reject
    10. order notional above ``max_order_notional``                      -> reject
    11. resulting position above ``max_position_pct`` of equity          -> reject
    12. gross exposure after the order above ``max_gross_exposure``       -> reject
    13. opening a new position while ``max_positions`` are open           -> reject
    14. notional above ``approval_threshold`` (0 disables)                -> needs_approval
    15. otherwise                                                         -> allow
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Verdict = Literal["allow", "reject", "needs_approval", "flatten"]
Purpose = Literal["signal", "flatten", "timeout_market", "time_exit"]
#: Severity order: tightening any limit never moves a decision down this list.
SEVERITY: dict[str, int] = {"allow": 0, "needs_approval": 1, "reject": 2, "flatten": 3}
_EPS = 1e-9


@dataclass(frozen=True)
class RiskLimits:
    """Limits of the gate (``[risk]`` in bridge.toml). Fractions are of equity."""

    max_position_pct: float = 0.10
    max_gross_exposure: float = 1.0
    max_positions: int = 5
    max_order_notional: float = 50_000.0
    daily_loss_limit_pct: float = 0.02
    max_orders_per_minute: int = 10
    max_orders_per_day: int = 100
    market_hours: bool = True
    limit_band_pct: float = 0.03
    approval_threshold: float = 25_000.0
    #: every entry must carry a protective stop (``OrderIntent.stop_price``)
    require_stop: bool = False
    #: max loss of one entry if its stop fills at its level, in account currency (0 = off);
    #: a positive value also requires a stop, since without one the loss has no bound
    max_loss_per_trade: float = 0.0


@dataclass(frozen=True)
class OrderIntent:
    """An order about to be sent. ``quantity`` is positive; ``side`` gives the sign."""

    symbol: str
    side: Literal["BUY", "SELL"]
    quantity: float
    price: float  # reference price for notional and exposure (last known price)
    order_type: Literal["MKT", "LMT"] = "MKT"
    limit_price: float | None = None
    purpose: Purpose = "signal"
    stop_price: float | None = None  # the protective stop that will rest with this entry
    tif: str | None = None  # time in force when not [orders] tif (a limit entry working past the close: GTC)
    #: a market order's expected fill (the open of the bar it trades at, once known): its bracket
    #: and rule 9 are measured from it, as research measures them from the fill
    expected_fill: float | None = None

    @property
    def entry_price(self) -> float:
        """The price the stop distance is measured from: the limit for a limit order, else the
        expected fill, else the reference price."""
        if self.order_type == "LMT" and self.limit_price:
            return self.limit_price
        return self.expected_fill if self.expected_fill else self.price

    @property
    def signed(self) -> float:
        return self.quantity if self.side == "BUY" else -self.quantity

    @property
    def notional(self) -> float:
        return abs(self.quantity) * self.price


@dataclass(frozen=True)
class Exposure:
    """Account state before the order: positions (shares) and marks per symbol."""

    equity: float
    sod_equity: float
    positions: Mapping[str, float] = field(default_factory=dict)
    prices: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RiskContext:
    """Everything else the gate needs, gathered by the runner."""

    market_open: bool = True
    kill_switch: bool = False
    halted: bool = False
    halt_reason: str = ""
    orders_last_minute: int = 0
    orders_today: int = 0
    last_price: float | None = None


@dataclass(frozen=True)
class Decision:
    """The gate's answer: a verdict, the rule that decided it and a human reason."""

    verdict: Verdict
    reason: str
    rule: str

    @property
    def allowed(self) -> bool:
        return self.verdict == "allow"


def is_exit(position: float, signed_qty: float) -> bool:
    """True if the order only reduces ``|position|`` (never crosses through zero)."""
    new = position + signed_qty
    if position == 0 or signed_qty == 0:
        return False
    return abs(new) < abs(position) and (new == 0 or (new > 0) == (position > 0))


def opened_quantity(position: float, signed_qty: float) -> float:
    """Shares of new exposure an order opens: all of it when adding, the part past zero on a flip."""
    new = position + signed_qty
    if position == 0 or (position > 0) == (signed_qty > 0):
        return abs(signed_qty)
    return abs(new) if (new > 0) != (position > 0) else 0.0


def stop_decision(intent: OrderIntent, position: float, limits: RiskLimits) -> Decision | None:
    """Rule 9 for an entry: the stop is on the loss side and bounds the loss; None = passes.

    Why here: a bracket's stop is what limits the trade's loss while the bridge is down, so an
    entry whose stop is missing, inverted or too far is refused before anything is sent.
    """
    stop, entry = intent.stop_price, intent.entry_price
    need_stop = limits.require_stop or limits.max_loss_per_trade > 0
    if stop is None:
        if need_stop:
            why = (
                "require_stop is on"
                if limits.require_stop
                else f"max_loss_per_trade {limits.max_loss_per_trade:,.2f} needs a stop to bound the loss"
            )
            return Decision(
                "reject",
                f"entry without a protective stop ({why}); give the strategy an sl_stop or sl_trail",
                "stop_required",
            )
        return None
    long = intent.side == "BUY"
    if not (math.isfinite(stop) and stop > 0 and (stop < entry if long else stop > entry)):
        side = "below" if long else "above"
        return Decision(
            "reject", f"stop {stop!r} must be positive and {side} the entry {entry:g} of a {intent.side}", "stop_side"
        )
    if limits.max_loss_per_trade > 0:
        loss = opened_quantity(position, intent.signed) * abs(entry - stop)
        if loss > limits.max_loss_per_trade * (1 + _EPS):
            return Decision(
                "reject",
                f"loss at the stop {loss:,.2f} ({opened_quantity(position, intent.signed):g} x |{entry:g} - {stop:g}|) "
                f"above max_loss_per_trade {limits.max_loss_per_trade:,.2f}",
                "max_loss",
            )
    return None


def daily_loss_breached(exposure: Exposure, limits: RiskLimits) -> tuple[bool, float]:
    """Whether equity fell by at least the daily limit; returns (breached, loss fraction)."""
    if not (exposure.sod_equity > 0 and math.isfinite(exposure.equity)):
        return False, 0.0
    loss = (exposure.sod_equity - exposure.equity) / exposure.sod_equity
    return loss >= limits.daily_loss_limit_pct - _EPS, loss


def check(intent: OrderIntent, exposure: Exposure, ctx: RiskContext, limits: RiskLimits) -> Decision:
    """Decide one order. Pure: the same inputs always give the same Decision."""
    q, px = intent.quantity, intent.price
    if not (math.isfinite(q) and q > 0 and math.isfinite(px) and px > 0):
        return Decision("reject", f"malformed order: quantity {q!r}, price {px!r}", "malformed")
    if intent.order_type == "LMT" and not (intent.limit_price is not None and intent.limit_price > 0):
        return Decision("reject", f"limit order without a positive limit price ({intent.limit_price!r})", "malformed")
    flattening = intent.purpose == "flatten"
    if (ctx.kill_switch or ctx.halted) and not flattening:
        why = "kill switch latched" if ctx.kill_switch else "trading halted"
        return Decision(
            "reject", f"{why}{': ' + ctx.halt_reason if ctx.halt_reason else ''}; run `bridge resume`", "halted"
        )
    breached, loss = daily_loss_breached(exposure, limits)
    if breached and not flattening:
        return Decision(
            "flatten",
            f"daily loss {loss:.2%} of start-of-day equity {exposure.sod_equity:,.2f} reached the "
            f"{limits.daily_loss_limit_pct:.2%} limit: latch the kill switch, flatten and halt",
            "daily_loss",
        )
    position = float(exposure.positions.get(intent.symbol, 0.0))
    if flattening:
        if not is_exit(position, intent.signed) or abs(position + intent.signed) > _EPS:
            return Decision(
                "reject",
                f"flatten order does not close the position ({position:g} {intent.side} {q:g})",
                "flatten_mismatch",
            )
        return Decision("allow", "flattening order (closes the position): always allowed", "flatten")
    if limits.market_hours and not ctx.market_open:
        return Decision("reject", "market closed (exchange calendar)", "market_hours")
    if ctx.orders_last_minute >= limits.max_orders_per_minute:
        return Decision(
            "reject",
            f"{ctx.orders_last_minute} orders in the last minute (max {limits.max_orders_per_minute})",
            "rate_minute",
        )
    if ctx.orders_today >= limits.max_orders_per_day:
        return Decision("reject", f"{ctx.orders_today} orders today (max {limits.max_orders_per_day})", "rate_day")
    if intent.order_type == "LMT" and intent.limit_price is not None:
        last = ctx.last_price if ctx.last_price and ctx.last_price > 0 else px
        band = abs(intent.limit_price - last) / last
        if band > limits.limit_band_pct + _EPS:
            return Decision(
                "reject",
                f"limit {intent.limit_price:g} is {band:.2%} from the last price {last:g} (band {limits.limit_band_pct:.2%})",
                "limit_band",
            )
    if is_exit(position, intent.signed):
        return Decision(
            "allow", f"exit: reduces the position from {position:g} to {position + intent.signed:g}", "exit"
        )
    stop_verdict = stop_decision(intent, position, limits)
    if stop_verdict is not None:
        return stop_verdict
    notional = intent.notional
    if notional > limits.max_order_notional * (1 + _EPS):
        return Decision(
            "reject",
            f"order notional {notional:,.2f} above max_order_notional {limits.max_order_notional:,.2f}",
            "order_notional",
        )
    equity = exposure.equity
    if not (equity > 0 and math.isfinite(equity)):
        return Decision("reject", f"equity {equity!r} is not positive: cannot size exposure", "equity")
    new_position = position + intent.signed
    pos_value = abs(new_position) * px
    if pos_value > limits.max_position_pct * equity * (1 + _EPS):
        return Decision(
            "reject",
            f"{intent.symbol} position {pos_value:,.2f} would be {pos_value / equity:.2%} of equity (max {limits.max_position_pct:.2%})",
            "position_pct",
        )
    gross = pos_value
    for sym, qty in exposure.positions.items():
        if sym != intent.symbol and qty:
            gross += abs(qty) * float(exposure.prices.get(sym, 0.0) or 0.0)
    if gross > limits.max_gross_exposure * equity * (1 + _EPS):
        return Decision(
            "reject",
            f"gross exposure {gross:,.2f} would be {gross / equity:.2f}x equity (max {limits.max_gross_exposure:g}x)",
            "gross",
        )
    if position == 0 and new_position != 0:
        open_count = sum(1 for sym, qty in exposure.positions.items() if qty and sym != intent.symbol)
        if open_count >= limits.max_positions:
            return Decision(
                "reject",
                f"{open_count} positions open (max {limits.max_positions}); exits are always allowed",
                "max_positions",
            )
    if limits.approval_threshold > 0 and notional > limits.approval_threshold * (1 + _EPS):
        return Decision(
            "needs_approval",
            f"order notional {notional:,.2f} above approval_threshold {limits.approval_threshold:,.2f}: held, not sent",
            "approval",
        )
    return Decision(
        "allow", f"within limits (notional {notional:,.2f}, position {pos_value / equity:.2%} of equity)", "ok"
    )
