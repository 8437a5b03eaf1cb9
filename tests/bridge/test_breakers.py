"""Circuit breakers (bridge/breakers.py): each trips exactly at its threshold and not before."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.breakers import Snapshot, pre_trade, tripped, usages
from bridge.config import BreakersConfig
from bridge.risk import OrderIntent, RiskLimits

OFF = BreakersConfig(max_drawdown_pct=0, rapid_loss_pct=0, max_errors=0)
RISK = RiskLimits(daily_loss_limit_pct=0.999)  # far away unless a test sets it
BASE = Snapshot(
    equity=100_000.0, sod_equity=100_000.0, peak_equity=100_000.0, window_high=100_000.0, cash=50_000.0, errors=0
)

limits = st.floats(0.001, 0.9)
below = st.floats(0.0, 0.999)
money = st.floats(10.0, 1e6)


def rules(s: Snapshot, b: BreakersConfig, r: RiskLimits = RISK) -> list[str]:
    return [u.rule for u in tripped(s, b, r)]


@settings(max_examples=60, deadline=None)
@given(limit=limits, f=below)
def test_drawdown_from_the_peak_across_days(limit: float, f: float) -> None:
    b = replace(OFF, max_drawdown_pct=limit)
    peak = 120_000.0  # an earlier day's high: the day's start does not reset it
    assert rules(replace(BASE, peak_equity=peak, equity=peak * (1 - limit)), b) == ["drawdown"]
    assert rules(replace(BASE, peak_equity=peak, equity=peak * (1 - limit * f)), b) == []


@settings(max_examples=60, deadline=None)
@given(limit=limits, f=below)
def test_rapid_loss_within_the_window(limit: float, f: float) -> None:
    b = replace(OFF, rapid_loss_pct=limit)
    high = 104_000.0
    assert rules(replace(BASE, window_high=high, equity=high * (1 - limit)), b) == ["rapid_loss"]
    assert rules(replace(BASE, window_high=high, equity=high * (1 - limit * f)), b) == []


@settings(max_examples=60, deadline=None)
@given(limit=st.integers(1, 500), seen=st.integers(0, 1000))
def test_error_rate(limit: int, seen: int) -> None:
    b = replace(OFF, max_errors=limit)
    assert (rules(replace(BASE, errors=seen), b) == ["error_rate"]) == (seen >= limit)


@settings(max_examples=60, deadline=None)
@given(limit=money, f=below)
def test_daily_loss_in_currency(limit: float, f: float) -> None:
    b = replace(OFF, daily_loss_limit=limit)
    sod = 2e6
    assert rules(replace(BASE, sod_equity=sod, equity=sod - limit), b) == ["daily_loss"]
    assert rules(replace(BASE, sod_equity=sod, equity=sod - limit * f), b) == []


@settings(max_examples=60, deadline=None)
@given(limit=limits, f=below)
def test_daily_loss_in_percent(limit: float, f: float) -> None:
    r = RiskLimits(daily_loss_limit_pct=limit)
    assert rules(replace(BASE, equity=100_000.0 * (1 - limit)), OFF, r) == ["daily_loss_pct"]
    assert rules(replace(BASE, equity=100_000.0 * (1 - limit * f)), OFF, r) == []


@settings(max_examples=60, deadline=None)
@given(limit=money, f=below)
def test_symbol_notional_and_daily_loss(limit: float, f: float) -> None:
    b = replace(OFF, symbol_max_notional=limit)
    assert rules(replace(BASE, notional={"SPY": limit, "QQQ": 1.0}), b) == ["symbol_notional"]
    assert rules(replace(BASE, notional={"SPY": limit * f}), b) == []
    b = replace(OFF, symbol_daily_loss=limit)
    hit = tripped(replace(BASE, symbol_pnl={"SPY": 5.0, "QQQ": -limit}), b, RISK)
    assert [u.rule for u in hit] == ["symbol_daily_loss"] and "QQQ" in hit[0].reason()
    assert rules(replace(BASE, symbol_pnl={"QQQ": -limit * f}), b) == []


@settings(max_examples=60, deadline=None)
@given(reserve=money, f=st.floats(1.001, 100.0))
def test_cash_reserve(reserve: float, f: float) -> None:
    b = replace(OFF, cash_reserve=reserve)
    assert rules(replace(BASE, cash=reserve), b) == ["cash_reserve"]
    assert rules(replace(BASE, cash=reserve * f), b) == []


def test_usage_fractions_feed_the_gauges_and_the_tiers() -> None:
    b = replace(OFF, max_drawdown_pct=0.10, daily_loss_limit=1_000.0)
    got = {
        u.rule: round(u.fraction, 6)
        for u in usages(replace(BASE, equity=99_200.0), b, RiskLimits(daily_loss_limit_pct=0.02))
    }
    assert got == {"daily_loss_pct": 0.4, "daily_loss": 0.8, "drawdown": 0.08}
    assert all(u.tripped is False for u in usages(BASE, b, RISK))
    assert "reached the limit" in tripped(replace(BASE, equity=99_000.0), b, RISK)[0].reason()


def test_pre_trade_caps_reject_entries_but_never_exits() -> None:
    b = replace(OFF, symbol_max_notional=10_000.0, cash_reserve=5_000.0)
    buy = OrderIntent("SPY", "BUY", 30, 400.0)
    d = pre_trade(buy, 0.0, 50_000.0, b)
    assert d is not None and d.rule == "symbol_notional" and "10,000.00" in d.reason
    d = pre_trade(OrderIntent("SPY", "BUY", 20, 400.0), 0.0, 12_000.0, b)
    assert d is not None and d.rule == "cash_reserve"
    assert pre_trade(OrderIntent("SPY", "BUY", 20, 400.0), 0.0, 13_000.0, b) is None
    assert pre_trade(OrderIntent("SPY", "SELL", 10, 400.0), 100.0, 0.0, b) is None  # an exit always passes
