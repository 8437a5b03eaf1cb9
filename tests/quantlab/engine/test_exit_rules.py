"""Exit and entry rules, one hand-computed case per rule on tiny synthetic bars.

Costs are zero unless a case is about costs; sizing buys 100 shares at a signal close of
100 (``cash:10000``), so every expected fill can be read off the bars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlab.engine.intervals import get_interval
from quantlab.engine.settings import Costs, SimConfig, Sizing
from quantlab.engine.signals import PriceArrays
from quantlab.kernels import layout as L
from quantlab.replay import portfolio, simulate, vbt_metrics

FREE = Costs(model="percent", pct_fee=0.0, slippage_bps=0.0)
SIM = SimConfig(20_000.0, FREE, Sizing("cash", 10_000.0))
SHORT = SimConfig(20_000.0, FREE, Sizing("cash", 10_000.0, allow_short=True))
DAY = get_interval("1d")


def bars(rows: list[tuple[float, float, float, float]], symbol: str = "X") -> PriceArrays:
    a = np.array(rows, dtype=np.float64)
    index = pd.date_range("2024-01-01", periods=len(rows), freq="D", tz="UTC")
    return PriceArrays(symbol, index, *(np.ascontiguousarray(a[:, i]) for i in range(4)), np.ones(len(rows)))


def run(rows, target, sim=SIM, **rules):  # type: ignore[no-untyped-def]
    ex = np.full(L.EXIT_LEN, np.nan)
    for name, value in rules.items():
        ex[getattr(L, "X_" + name.upper())] = value
    prices = bars(rows)
    return simulate(np.asarray(target, dtype=np.float64), prices, sim, DAY, exits=ex), prices


def orders(record):  # type: ignore[no-untyped-def]
    """(bar, signed shares, raw price, reason) per order."""
    return [
        (int(o[L.O_BAR]), float(o[L.O_SIZE]), round(float(o[L.O_PRICE]), 10), L.REASON_NAMES[int(o[L.O_REASON])])
        for o in record.orders
    ]


FLAT = (100.0, 100.0, 100.0, 100.0)


def test_no_rules_trade_as_before() -> None:
    rec, _ = run([FLAT, (100, 101, 99, 100), (90, 92, 89, 91)], [1, 1, 1])
    assert orders(rec) == [(1, 100.0, 100.0, "signal")]


def test_gap_through_a_stop_fills_at_the_open() -> None:
    # stop at 95; bar 2 opens at 90, below it: the fill is the open, not the stop.
    rec, _ = run([FLAT, (100, 101, 99, 100), (90, 92, 89, 91), (91, 92, 90, 91)], [1, 1, 1, 1], sl_stop=0.05)
    assert orders(rec) == [(1, 100.0, 100.0, "signal"), (2, -100.0, 90.0, "stop")]
    assert rec.value[-1] == pytest.approx(20_000 - 100 * 10)


def test_stop_touched_intrabar_fills_at_the_stop_even_in_the_entry_bar() -> None:
    rec, _ = run([FLAT, (100, 101, 94, 99), FLAT], [1, 1, 1], sl_stop=0.05)
    assert orders(rec) == [(1, 100.0, 100.0, "signal"), (1, -100.0, 95.0, "stop")]


def test_stop_and_target_in_one_bar_the_stop_wins() -> None:
    rec, _ = run([FLAT, (100, 101, 99, 100), (100, 106, 94, 100)], [1, 1, 1], sl_stop=0.05, tp_stop=0.05)
    assert orders(rec)[-1] == (2, -100.0, 95.0, "stop")


def test_target_touched_fills_at_the_target_and_a_gap_fills_at_the_open() -> None:
    rec, _ = run([FLAT, (100, 101, 99, 100), (101, 111, 100, 104)], [1, 1, 1], tp_stop=0.10)
    assert orders(rec)[-1] == (2, -100.0, 110.0, "target")
    rec, _ = run([FLAT, (100, 101, 99, 100), (115, 116, 114, 115)], [1, 1, 1], tp_stop=0.10)
    assert orders(rec)[-1] == (2, -100.0, 115.0, "target")


def test_trailing_stop_ratchets_from_the_highs_after_the_fill_bar() -> None:
    rows = [
        FLAT,
        (100, 120, 99, 110),  # fill bar: its high (120) does not count
        (110, 110, 101, 105),  # level 90 (mark = entry 100); then mark 110
        (105, 112, 100, 106),  # level 99: holds; then mark 112
        (105, 106, 100, 101),  # level 100.8: triggers
    ]
    rec, _ = run(rows, [1] * 5, sl_trail=0.10)
    assert orders(rec) == [(1, 100.0, 100.0, "signal"), (4, -100.0, 100.8, "trail")]


def test_the_nearer_of_fixed_and_trailing_stop_binds() -> None:
    rows = [FLAT, (100, 101, 99, 100), (100, 130, 100, 125), (125, 126, 116, 120)]
    rec, _ = run(rows, [1] * 4, sl_stop=0.05, sl_trail=0.10)  # fixed 95, trail 130 * 0.9 = 117
    assert orders(rec)[-1] == (3, -100.0, 117.0, "trail")


def test_short_stop_mirrors_the_long_one() -> None:
    rows = [FLAT, (100, 101, 99, 100), (100, 106, 99, 104)]
    rec, _ = run(rows, [-1, -1, -1], sim=SHORT, sl_stop=0.05)
    assert orders(rec) == [(1, -100.0, 100.0, "signal"), (2, 100.0, 105.0, "stop")]


def test_max_hold_closes_at_the_open_max_hold_bars_after_entry() -> None:
    rows = [FLAT, (100, 101, 99, 100), (101, 102, 100, 101), (102, 103, 101, 102), FLAT]
    rec, _ = run(rows, [1] * 5, max_hold=2)
    assert orders(rec) == [(1, 100.0, 100.0, "signal"), (3, -100.0, 102.0, "time")]


def test_a_stopped_position_waits_for_a_fresh_entry() -> None:
    rows = [FLAT, (100, 101, 94, 99), FLAT, FLAT, FLAT, FLAT, FLAT]
    # stopped in bar 1; target stays long, then 0.5 (same side): no re-entry; 0 then 1: entry
    rec, _ = run(rows, [1, 1, 0.5, 0, 1, 1, 1], sl_stop=0.05)
    assert orders(rec) == [(1, 100.0, 100.0, "signal"), (1, -100.0, 95.0, "stop"), (5, 100.0, 100.0, "signal")]


def test_limit_entry_expires_unfilled() -> None:
    rows = [FLAT, (100, 101, 99, 100), (100, 101, 98.5, 100), (99, 100, 90, 95)]
    rec, _ = run(rows, [1, 1, 1, 1], entry_limit=0.02, limit_expiry=2)  # limit 98, bars 1-2 only
    assert orders(rec) == []


def test_limit_entry_fills_at_the_limit_or_a_better_open() -> None:
    rows = [FLAT, (100, 101, 99, 100), (100, 101, 98.5, 100), (99, 100, 90, 95)]
    rec, _ = run(rows, [1, 1, 1, 1], entry_limit=0.02, limit_expiry=3)
    assert orders(rec) == [(3, 100.0, 98.0, "signal")]
    rows[3] = (97, 100, 90, 95)
    rec, _ = run(rows, [1, 1, 1, 1], entry_limit=0.02, limit_expiry=3)
    assert orders(rec) == [(3, 100.0, 97.0, "signal")]


def test_limit_entry_needs_the_price_to_trade_through_by_the_ticks() -> None:
    rows = [FLAT, (100, 101, 97.99, 100), (100, 101, 97.98, 100)]
    rec, _ = run(rows, [1, 1, 1], entry_limit=0.02, limit_expiry=2, limit_ticks=2)
    assert orders(rec) == [(2, 100.0, 98.0, "signal")]


def test_stop_after_an_intrabar_limit_fill_starts_next_bar() -> None:
    # filled at 98 intrabar in bar 1; the bar's low 90 is below the 5% stop (93.1) but the
    # order of prices inside the bar is unknown, so the stop is checked from bar 2.
    rows = [FLAT, (100, 101, 90, 95), (95, 96, 92, 93)]
    rec, _ = run(rows, [1, 1, 1], entry_limit=0.02, sl_stop=0.05)
    assert orders(rec) == [(1, 100.0, 98.0, "signal"), (2, -100.0, 93.1, "stop")]


def test_limit_entry_is_cancelled_when_the_target_returns_to_zero() -> None:
    rows = [FLAT, (100, 101, 99, 100), (100, 101, 90, 100)]
    rec, _ = run(rows, [1, 0, 0], entry_limit=0.02, limit_expiry=5)
    assert orders(rec) == []


def test_sec_fee_and_taf_are_paid_on_sells_only() -> None:
    costs = Costs(
        model="percent", pct_fee=0.0, slippage_bps=0.0, sec_fee_rate=27.8e-6, taf_per_share=0.000166, taf_max=8.30
    )
    sim = SimConfig(20_000.0, costs, Sizing("cash", 10_000.0))
    rec, _ = run([FLAT, (100, 101, 99, 100), (110, 111, 109, 110), FLAT], [1, 0, 0, 0], sim=sim)
    assert rec.fee[1] == 0.0
    assert rec.fee[2] == pytest.approx(100 * 110 * 27.8e-6 + 100 * 0.000166, rel=1e-12)


def test_taf_is_capped_per_trade() -> None:
    costs = Costs(model="percent", pct_fee=0.0, slippage_bps=0.0, taf_per_share=0.000166, taf_max=0.01)
    sim = SimConfig(20_000.0, costs, Sizing("cash", 10_000.0))
    rec, _ = run([FLAT, (100, 101, 99, 100), (110, 111, 109, 110), FLAT], [1, 0, 0, 0], sim=sim)
    assert rec.fee[2] == pytest.approx(0.01)


def test_half_spread_and_per_symbol_spread_are_paid_on_every_fill() -> None:
    costs = Costs(model="percent", pct_fee=0.0, slippage_bps=1.0, half_spread_bps=4.0)
    sim = SimConfig(20_000.0, costs, Sizing("cash", 10_000.0))
    rec, _ = run([FLAT, (100, 101, 99, 100), (110, 111, 109, 110)], [1, 0, 0], sim=sim)
    # bought 100 at 100 * 1.0005, sold 100 at 110 * 0.9995
    assert rec.value[-1] == pytest.approx(20_000 - 100 * 100.05 + 100 * 109.945)
    per_symbol = SimConfig(
        20_000.0, Costs(model="percent", pct_fee=0.0, slippage_bps=1.0, spread_bps={"X": 8.0}), Sizing("cash", 10_000.0)
    )
    assert per_symbol.to_array("X")[L.C_SLIPPAGE] == pytest.approx(5e-4)
    assert per_symbol.to_array("Y")[L.C_SLIPPAGE] == pytest.approx(1e-4)
    rec2, _ = run([FLAT, (100, 101, 99, 100), (110, 111, 109, 110)], [1, 0, 0], sim=per_symbol)
    assert rec2.value[-1] == pytest.approx(rec.value[-1])


def test_borrow_is_charged_each_bar_on_the_short_notional() -> None:
    costs = Costs(model="percent", pct_fee=0.0, slippage_bps=0.0, borrow_rate=0.0252)
    sim = SimConfig(20_000.0, costs, Sizing("cash", 10_000.0, allow_short=True))
    rec, _ = run([FLAT, FLAT, FLAT, FLAT], [-1, -1, -1, -1], sim=sim)
    # short 100 at 100 from bar 1: 100 * 100 * 0.0252 / 252 = 1.00 per bar, bars 1-3
    assert rec.value[-1] == pytest.approx(20_000 - 3.0)
    assert rec.metrics["fees"] == pytest.approx(3.0)


def test_vectorbt_accounts_the_exit_orders_to_the_same_metrics() -> None:
    rows = [FLAT, (100, 101, 94, 99), FLAT, (100, 101, 99, 100), (100, 111, 99, 105), (104, 105, 103, 104)]
    rec, prices = run(rows, [1, 1, 0, 1, 1, 1], sl_stop=0.05, tp_stop=0.10)
    assert [o[3] for o in orders(rec)] == ["signal", "stop", "signal", "target"]
    theirs = vbt_metrics(portfolio(rec, prices, SIM, DAY), DAY).iloc[0]
    for name in ("total_return", "n_trades", "n_orders", "win_rate", "final_value"):
        assert rec.metrics[name] == pytest.approx(float(theirs[name]), rel=1e-9), name
