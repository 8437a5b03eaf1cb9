"""The pure risk gate: every rule on its own, then property-style invariants."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.risk import (
    SEVERITY,
    Exposure,
    OrderIntent,
    RiskContext,
    RiskLimits,
    check,
    daily_loss_breached,
    is_exit,
)

LIMITS = RiskLimits()
EQ = 100_000.0


def gate(
    intent: OrderIntent,
    positions: dict[str, float] | None = None,
    prices: dict[str, float] | None = None,
    equity: float = EQ,
    sod: float = EQ,
    limits: RiskLimits = LIMITS,
    **ctx: object,
):  # noqa: ANN201
    pos = positions or {}
    px = {s: 100.0 for s in pos} | (prices or {})
    return check(intent, Exposure(equity, sod, pos, px), RiskContext(**ctx), limits)  # type: ignore[arg-type]


def buy(qty: float, sym: str = "SPY", price: float = 100.0, **kw: object) -> OrderIntent:
    return OrderIntent(sym, "BUY", qty, price, **kw)  # type: ignore[arg-type]


def sell(qty: float, sym: str = "SPY", price: float = 100.0, **kw: object) -> OrderIntent:
    return OrderIntent(sym, "SELL", qty, price, **kw)  # type: ignore[arg-type]


def test_defaults_match_the_seed_documents() -> None:
    assert (LIMITS.max_position_pct, LIMITS.max_positions, LIMITS.daily_loss_limit_pct) == (0.10, 5, 0.02)
    assert LIMITS.market_hours is True


def test_allows_an_order_within_limits() -> None:
    d = gate(buy(100))  # $10,000 = 10% of equity: at the cap, allowed
    assert (d.verdict, d.rule) == ("allow", "ok") and d.reason


@pytest.mark.parametrize(
    ("intent", "kwargs", "rule"),
    [
        (buy(0), {}, "malformed"),
        (buy(float("nan")), {}, "malformed"),
        (buy(10, order_type="LMT", limit_price=None), {}, "malformed"),
        (buy(101), {}, "position_pct"),
        (buy(10), {"market_open": False}, "market_hours"),
        (buy(10), {"orders_last_minute": 10}, "rate_minute"),
        (buy(10), {"orders_today": 100}, "rate_day"),
        (buy(10, order_type="LMT", limit_price=104.0), {"last_price": 100.0}, "limit_band"),
        (buy(10), {"kill_switch": True}, "halted"),
        (buy(10), {"kill_switch": True, "halt_reason": "daily loss"}, "halted"),
        (buy(10), {"halted": True, "halt_reason": "mismatch"}, "halted"),
    ],
)
def test_each_rule_rejects_with_its_reason(intent: OrderIntent, kwargs: dict[str, object], rule: str) -> None:
    d = gate(intent, **kwargs)
    assert (d.verdict, d.rule) == ("reject", rule), d
    assert d.reason


def test_max_order_notional() -> None:
    d = gate(buy(60, price=1000.0), equity=1e6, sod=1e6)
    assert (d.verdict, d.rule) == ("reject", "order_notional")


def test_gross_exposure_counts_other_positions() -> None:
    limits = dataclasses.replace(LIMITS, max_gross_exposure=0.25)
    d = gate(buy(100), positions={"QQQ": 100, "IWM": 100}, limits=limits)  # 10k + 20k > 25k
    assert (d.verdict, d.rule) == ("reject", "gross")
    assert gate(buy(50), positions={"QQQ": 100}, limits=limits).verdict == "allow"


def test_max_concurrent_positions_blocks_new_entries_only() -> None:
    held = {s: 10.0 for s in ("A", "B", "C", "D", "E")}
    assert gate(buy(10), positions=held).rule == "max_positions"
    assert gate(buy(10, "A"), positions=held).verdict == "allow"  # adding to an open position
    assert gate(sell(10, "A"), positions=held).verdict == "allow"  # exits always allowed


def test_approval_threshold_holds_big_orders() -> None:
    limits = dataclasses.replace(LIMITS, approval_threshold=5_000.0)
    d = gate(buy(60), limits=limits)
    assert (d.verdict, d.rule) == ("needs_approval", "approval")
    assert gate(buy(40), limits=limits).verdict == "allow"
    assert gate(buy(60), limits=dataclasses.replace(LIMITS, approval_threshold=0.0)).verdict == "allow"  # 0 disables


def test_daily_loss_says_flatten() -> None:
    d = gate(buy(10), equity=97_999.0, sod=100_000.0)
    assert (d.verdict, d.rule) == ("flatten", "daily_loss") and "2.00%" in d.reason
    assert daily_loss_breached(Exposure(98_000.0, 100_000.0), LIMITS)[0]
    assert not daily_loss_breached(Exposure(98_001.0, 100_000.0), LIMITS)[0]


def test_flatten_orders_pass_a_latched_kill_switch_and_closed_market() -> None:
    d = gate(
        sell(50, purpose="flatten"),
        positions={"SPY": 50},
        kill_switch=True,
        market_open=False,
        orders_today=10_000,
        equity=50_000.0,
        sod=100_000.0,
    )
    assert (d.verdict, d.rule) == ("allow", "flatten")
    assert gate(sell(40, purpose="flatten"), positions={"SPY": 50}).rule == "flatten_mismatch"  # must close it exactly
    assert gate(buy(50, purpose="flatten"), positions={"SPY": 50}).rule == "flatten_mismatch"


def test_is_exit() -> None:
    assert is_exit(100, -100) and is_exit(100, -40) and is_exit(-10, 5)
    assert not is_exit(100, -150) and not is_exit(0, 10) and not is_exit(10, 5)


# --- properties ---------------------------------------------------------------------------------
symbols = st.sampled_from(["SPY", "QQQ", "IWM", "DIA", "AAPL", "MSFT", "TLT"])
qty = st.floats(min_value=1, max_value=5_000, allow_nan=False).map(round)
prices = st.floats(min_value=5, max_value=1_000, allow_nan=False)
positions = st.dictionaries(
    symbols, st.floats(min_value=-2_000, max_value=2_000, allow_nan=False).map(round), max_size=7
)
contexts = st.builds(
    RiskContext,
    market_open=st.booleans(),
    kill_switch=st.booleans(),
    halted=st.booleans(),
    orders_last_minute=st.integers(0, 15),
    orders_today=st.integers(0, 150),
    last_price=st.one_of(st.none(), prices),
)
limit_sets = st.builds(
    RiskLimits,
    max_position_pct=st.floats(0.01, 1.0),
    max_gross_exposure=st.floats(0.1, 3.0),
    max_positions=st.integers(1, 8),
    max_order_notional=st.floats(1e3, 1e6),
    daily_loss_limit_pct=st.floats(0.001, 0.2),
    max_orders_per_minute=st.integers(1, 20),
    max_orders_per_day=st.integers(1, 200),
    market_hours=st.booleans(),
    limit_band_pct=st.floats(0.001, 0.1),
    approval_threshold=st.floats(0, 1e6),
    require_stop=st.booleans(),
    max_loss_per_trade=st.sampled_from([0.0, 50.0, 500.0, 5_000.0]),
)


@st.composite
def orders(draw: st.DrawFn) -> OrderIntent:
    kind = draw(st.sampled_from(["MKT", "LMT"]))
    px = draw(prices)
    lmt = px * draw(st.floats(0.9, 1.1)) if kind == "LMT" else None
    stop = draw(st.one_of(st.none(), st.floats(0.8, 1.2).map(lambda f: px * f)))
    return OrderIntent(draw(symbols), draw(st.sampled_from(["BUY", "SELL"])), draw(qty), px, kind, lmt, "signal", stop)  # type: ignore[arg-type]


@st.composite
def tighter(draw: st.DrawFn, limits: RiskLimits) -> RiskLimits:
    """Limits at least as strict as ``limits`` in every field."""

    def shrink(x: float) -> float:
        return x * draw(st.floats(0.1, 1.0))

    return RiskLimits(
        max_position_pct=shrink(limits.max_position_pct),
        max_gross_exposure=shrink(limits.max_gross_exposure),
        max_positions=draw(st.integers(1, limits.max_positions)),
        max_order_notional=shrink(limits.max_order_notional),
        daily_loss_limit_pct=shrink(limits.daily_loss_limit_pct),
        max_orders_per_minute=draw(st.integers(1, limits.max_orders_per_minute)),
        max_orders_per_day=draw(st.integers(1, limits.max_orders_per_day)),
        market_hours=limits.market_hours or draw(st.booleans()),
        limit_band_pct=shrink(limits.limit_band_pct),
        approval_threshold=shrink(limits.approval_threshold)
        if limits.approval_threshold > 0
        else draw(st.floats(0, 1e6)),
        require_stop=limits.require_stop or draw(st.booleans()),
        max_loss_per_trade=shrink(limits.max_loss_per_trade)
        if limits.max_loss_per_trade > 0
        else draw(st.sampled_from([0.0, 100.0])),
    )


@settings(max_examples=400, deadline=None)
@given(orders(), positions, st.floats(1e4, 1e6), st.floats(0.8, 1.2), contexts, limit_sets, st.data())
def test_tightening_any_limit_never_relaxes_a_decision(
    intent: OrderIntent,
    pos: dict[str, float],
    equity: float,
    drift: float,
    ctx: RiskContext,
    limits: RiskLimits,
    data: st.DataObject,
) -> None:
    strict = data.draw(tighter(limits))
    exposure = Exposure(equity, equity / drift, pos, {s: 100.0 for s in pos})
    loose_d, strict_d = check(intent, exposure, ctx, limits), check(intent, exposure, ctx, strict)
    assert SEVERITY[strict_d.verdict] >= SEVERITY[loose_d.verdict], (loose_d, strict_d)


@settings(max_examples=400, deadline=None)
@given(
    symbols,
    st.floats(1, 5_000).map(round),
    st.floats(0.01, 1.0),
    prices,
    positions,
    st.floats(1e4, 1e6),
    limit_sets,
    st.integers(0, 10),
    st.integers(0, 10),
)
def test_exits_are_always_allowed_while_trading_is_allowed(
    sym: str,
    held: float,
    part: float,
    px: float,
    others: dict[str, float],
    equity: float,
    limits: RiskLimits,
    per_min: int,
    per_day: int,
) -> None:
    """However tight the exposure limits, an order that only reduces a position is allowed when
    the market is open, the kill switch is clear, rate limits are not exhausted and the daily loss
    limit is not breached."""
    qty_out = max(1.0, math.floor(held * part))
    pos = {**others, sym: held}
    limits = dataclasses.replace(
        limits,
        max_orders_per_minute=max(limits.max_orders_per_minute, per_min + 1),
        max_orders_per_day=max(limits.max_orders_per_day, per_day + 1),
    )
    ctx = RiskContext(market_open=True, orders_last_minute=per_min, orders_today=per_day, last_price=px)
    d = check(OrderIntent(sym, "SELL", qty_out, px), Exposure(equity, equity, pos, {s: px for s in pos}), ctx, limits)
    assert d.verdict == "allow", d
    short = {**pos, sym: -held}
    d = check(
        OrderIntent(sym, "BUY", qty_out, px), Exposure(equity, equity, short, {s: px for s in short}), ctx, limits
    )
    assert d.verdict == "allow", d


@settings(max_examples=200, deadline=None)
@given(orders(), positions, st.floats(1e4, 1e6), contexts, limit_sets)
def test_gate_is_pure_and_always_gives_a_reason(
    intent: OrderIntent, pos: dict[str, float], equity: float, ctx: RiskContext, limits: RiskLimits
) -> None:
    exposure = Exposure(equity, equity, pos, {s: 50.0 for s in pos})
    a, b = check(intent, exposure, ctx, limits), check(intent, exposure, ctx, limits)
    assert a == b and a.reason and a.verdict in SEVERITY


def test_a_latched_kill_switch_never_asks_to_flatten_again() -> None:
    d = gate(buy(10), equity=90_000.0, sod=100_000.0, kill_switch=True)
    assert (d.verdict, d.rule) == ("reject", "halted")


# --- entry stops (issue 12 item 7) ----------------------------------------------------------------
STOPS = RiskLimits(require_stop=True, max_loss_per_trade=300.0, approval_threshold=0)


def test_stop_rules_are_off_by_default() -> None:
    assert gate(buy(10)).verdict == "allow"


def test_require_stop_rejects_an_entry_without_a_stop_but_not_an_exit() -> None:
    limits = RiskLimits(require_stop=True)
    d = gate(buy(10), limits=limits)
    assert (d.verdict, d.rule) == ("reject", "stop_required") and "sl_stop" in d.reason
    assert gate(sell(5), positions={"SPY": 10.0}, limits=limits).verdict == "allow"
    assert gate(buy(10, stop_price=95.0), limits=limits).verdict == "allow"


def test_max_loss_alone_also_needs_a_stop() -> None:
    d = gate(buy(10), limits=RiskLimits(max_loss_per_trade=500.0))
    assert (d.verdict, d.rule) == ("reject", "stop_required") and "max_loss_per_trade" in d.reason


@pytest.mark.parametrize(
    "intent",
    [
        buy(10, stop_price=101.0),
        buy(10, stop_price=100.0),
        sell(10, stop_price=99.0),
        buy(10, stop_price=-1.0),
        buy(10, stop_price=math.nan),
    ],
)
def test_a_stop_on_the_wrong_side_is_rejected(intent: OrderIntent) -> None:
    d = gate(intent)
    assert (d.verdict, d.rule) == ("reject", "stop_side")


def test_max_loss_is_quantity_times_stop_distance() -> None:
    assert gate(buy(100, stop_price=97.0), limits=STOPS).verdict == "allow"  # 100 x 3 = 300
    d = gate(buy(101, stop_price=97.0), limits=STOPS)  # 303 > 300
    assert (d.verdict, d.rule) == ("reject", "max_loss") and "303.00" in d.reason
    assert gate(sell(100, stop_price=103.5), limits=STOPS).rule == "max_loss"  # short: 350
    # a limit entry measures from its limit, not from the last price
    lmt = buy(100, order_type="LMT", limit_price=98.0, stop_price=95.5)  # 100 x 2.5
    assert gate(lmt, limits=STOPS, last_price=100.0).verdict == "allow"


def test_a_flip_counts_only_the_shares_past_zero() -> None:
    # long 50, sell 150 -> short 100; the stop risks 100 x 3 = 300
    assert gate(sell(150, stop_price=103.0), positions={"SPY": 50.0}, limits=STOPS).verdict == "allow"
    assert gate(sell(151, stop_price=103.0), positions={"SPY": 50.0}, limits=STOPS).rule == "max_loss"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["BUY", "SELL"]), qty, prices, st.floats(0.001, 0.2), st.floats(1.0, 1e5), positions)
def test_an_allowed_entry_never_risks_more_than_max_loss(
    side: str, q: float, px: float, dist: float, cap: float, pos: dict[str, float]
) -> None:
    """Whatever the order, an entry the gate allows loses at most max_loss_per_trade at its stop."""
    stop = px * (1 - dist) if side == "BUY" else px * (1 + dist)
    limits = RiskLimits(
        max_loss_per_trade=cap,
        max_order_notional=1e12,
        max_position_pct=1.0,
        max_gross_exposure=1e6,
        max_positions=100,
        approval_threshold=0,
    )
    intent = OrderIntent("SPY", side, q, px, stop_price=stop)  # type: ignore[arg-type]
    held = pos.get("SPY", 0.0)
    d = gate(intent, positions=pos, equity=1e12, sod=1e12, limits=limits)
    if d.verdict == "allow" and d.rule != "exit":
        from bridge.risk import opened_quantity

        assert opened_quantity(held, intent.signed) * abs(px - stop) <= cap * (1 + 1e-9)
