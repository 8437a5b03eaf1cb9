"""Exit rules in a shared-cash group (issue 12 item 1 for ``--shared-cash``).

- The group simulator (:mod:`quantlab.kernels.group_exits`) equals the independent vectorbt
  reference (:func:`quantlab.replay_exits_group.replay_exits_group`: ``from_order_func``
  with ``cash_sharing=True``) order for order and on every metric to 1e-9, on real daily
  SPY+QQQ (tests/fixtures), long and long/short, for each rule and all together.
- Two-symbol cases worked out by hand: cash a gap exit frees at the open funds the other
  symbol's entry at that open; cash an intrabar stop frees does not fund a limit entry in
  the same bar.
- A one-symbol group is the single-symbol simulator: every hand case of exit_cases.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import quantlab
from quantlab.engine.exits import exit_slot, no_exits
from quantlab.engine.intervals import get_interval
from quantlab.engine.registry import get_strategy
from quantlab.engine.settings import Costs, SimConfig, Sizing
from quantlab.engine.signals import PriceArrays, evaluate_arrays, price_arrays
from quantlab.engine.sizing import sizing_vol
from quantlab.kernels.layout import O_BAR, O_PRICE, O_SIZE
from quantlab.replay import group_portfolio_from_orders, vbt_metrics
from quantlab.replay_exit_rules import ExitRules, ExtraCosts
from quantlab.replay_exits_group import replay_exits_group
from quantlab.shared_cash import GroupArrays, simulate_group
from tests.reference._exit_data import read_daily
from tests.reference.exit_cases import CASES, Case

DAILY = get_interval("1d")
SYMBOLS = ("SPY", "QQQ")
REG = {"sec_fee_rate": 27.8e-6, "taf_per_share": 0.000166, "taf_max": 8.30}
SIMS = {
    "ib_all_whole": SimConfig(),
    # 0.6 of equity per symbol: two entries need 1.2x, so cash binds and exits free it
    "pct_fraction_frac_spread": SimConfig(
        50_000,
        Costs(model="percent", pct_fee=0.001, fixed_fee=0.5, slippage_bps=5, half_spread_bps=2.5),
        Sizing("fraction", 0.6, whole_shares=False),
    ),
    "ib_cash_reg": SimConfig(20_000, Costs(slippage_bps=2, **REG), Sizing("cash", 12_000)),
    "ib_voltarget": SimConfig(100_000, Costs(), Sizing("vol_target", 0.12, vol_window=30)),
}
RULE_SETS: dict[str, dict[str, float]] = {
    "sl_stop": {"sl_stop": 0.03},
    "tp_stop": {"tp_stop": 0.05},
    "sl_trail": {"sl_trail": 0.04},
    "max_hold": {"max_hold": 7},
    "limit": {"entry_limit": 0.005, "limit_expiry": 3, "limit_ticks": 1},
    "all": {
        "sl_stop": 0.04,
        "tp_stop": 0.08,
        "sl_trail": 0.06,
        "max_hold": 25,
        "entry_limit": 0.002,
        "limit_expiry": 2,
    },
}


@pytest.fixture(scope="module")
def group(real_data: Path) -> tuple[pd.DatetimeIndex, list[PriceArrays]]:
    frames = {s: read_daily(real_data, s) for s in SYMBOLS}
    index = frames["SPY"].index.intersection(frames["QQQ"].index)
    return index, [price_arrays(frames[s].loc[index], s) for s in SYMBOLS]


def _exit_vector(rules: dict[str, float]) -> np.ndarray:
    ex = no_exits()
    for name, value in rules.items():
        ex[exit_slot(name)] = value
    return ex


def _extra(sim: SimConfig) -> ExtraCosts:
    c = sim.costs
    return ExtraCosts(c.sec_fee_rate, c.taf_per_share, c.taf_max, c.half_spread_bps)


def _ours(
    index: pd.DatetimeIndex, prices: list[PriceArrays], target: np.ndarray, sim: SimConfig, rules: dict[str, float]
):  # type: ignore[no-untyped-def]
    vol = np.column_stack([sizing_vol(p, sim, DAILY) for p in prices])
    cols = [np.column_stack([getattr(p, f) for p in prices]) for f in ("open", "high", "low", "close")]
    arrays = GroupArrays(index, [p.symbol for p in prices], *cols, target, vol)
    orders, value = simulate_group(arrays, sim, _exit_vector(rules))
    close = pd.DataFrame(cols[3], index=index, columns=arrays.symbols)
    pf = group_portfolio_from_orders(close, orders[:, :-1], orders[:, -1].astype(np.int64), sim, DAILY)
    return orders, value, pf


def _assert_equal(orders: np.ndarray, value: np.ndarray, pf, ref, sim: SimConfig, interval=DAILY) -> None:  # type: ignore[no-untyped-def]
    fills = ref.fills()
    assert len(orders) == len(fills) > 0
    conc = sim.costs.concession()
    for o, (bar, col, price, qty) in zip(orders, fills, strict=True):
        assert (int(o[O_BAR]), int(o[-1])) == (bar, col)
        assert o[O_SIZE] == pytest.approx(qty, rel=1e-12)
        assert o[O_PRICE] * (1 + conc if o[O_SIZE] > 0 else 1 - conc) == pytest.approx(price, rel=1e-12)
    theirs = ref.pf.value().to_numpy()
    assert np.max(np.abs(value - theirs) / np.abs(theirs)) <= 1e-9
    if pf is None:
        return
    ours_m, ref_m = vbt_metrics(pf, interval).iloc[0], vbt_metrics(ref.pf, interval).iloc[0]
    for name in ours_m.index:
        assert np.isclose(ours_m[name], ref_m[name], rtol=1e-9, atol=1e-12, equal_nan=True), name


@pytest.mark.parametrize("rules", list(RULE_SETS), ids=list(RULE_SETS))
@pytest.mark.parametrize("sim_name", list(SIMS))
def test_group_equals_reference_on_real_daily_bars(group, sim_name: str, rules: str) -> None:  # type: ignore[no-untyped-def]
    index, prices = group
    sim = SIMS[sim_name]
    spec = get_strategy("sma_cross")
    target = np.column_stack([evaluate_arrays(spec, p, {"fast": 10, "slow": 40}) for p in prices])
    orders, value, pf = _ours(index, prices, target, sim, RULE_SETS[rules])
    ref = replay_exits_group(target, prices, sim, DAILY, ExitRules(**RULE_SETS[rules]), _extra(sim))
    _assert_equal(orders, value, pf, ref, sim)
    # the rule under test fired on both symbols
    if rules != "limit":
        assert {c for _, c, _ in ref.exits} == {0, 1}


@pytest.mark.parametrize(
    "rules",
    [
        {"sl_stop": 0.03, "tp_stop": 0.05},
        {"sl_trail": 0.04, "max_hold": 10},
        {"entry_limit": 0.003, "limit_expiry": 2, "sl_stop": 0.05},
    ],
    ids=["sl_tp", "trail_hold", "limit_stop"],
)
def test_group_equals_reference_long_short(group, rules: dict[str, float]) -> None:  # type: ignore[no-untyped-def]
    """Targets that flip between long and short (reversals at the open, short stops above
    the entry, covers cut by nothing): the group sizes a reversal after a gap exit from the
    decision close, as the reference does."""
    index, prices = group
    sim = SimConfig(costs=Costs(slippage_bps=3, **REG), sizing=Sizing("fraction", 0.45, allow_short=True))
    spec = get_strategy("sma_cross")
    target = np.column_stack([2.0 * evaluate_arrays(spec, p, {"fast": 10, "slow": 40}) - 1.0 for p in prices])
    orders, value, pf = _ours(index, prices, target, sim, rules)
    ref = replay_exits_group(target, prices, sim, DAILY, ExitRules(**rules), _extra(sim))
    _assert_equal(orders, value, pf, ref, sim)
    assert (orders[:, O_SIZE] < 0).any() and any(r for _, _, r in ref.exits)


def test_backtest_shared_cash_equals_reference(group) -> None:  # type: ignore[no-untyped-def]
    """The public backtest (targets, volatility and bars aligned by the wrapper) gives the
    reference's portfolio."""
    index, prices = group
    sim = SIMS["pct_fraction_frac_spread"]
    rules = RULE_SETS["all"]
    params = "fast=10,slow=40," + ",".join(f"{k}={v}" for k, v in rules.items())
    result = quantlab.backtest("sma_cross", ",".join(SYMBOLS), params, sim=sim, shared_cash=True, save=False)
    assert result.portfolio.wrapper.index.equals(index)
    target = np.column_stack([result.targets[s].reindex(index).to_numpy() for s in SYMBOLS])
    ref = replay_exits_group(target, prices, sim, DAILY, ExitRules(**rules), _extra(sim))
    np.testing.assert_allclose(result.portfolio.value().to_numpy(), ref.pf.value().to_numpy(), rtol=1e-9)
    assert len(result.portfolio.orders.records) == len(ref.fills())
    assert result.summary["replay_check"]["ok"]


# -- hand-computed two-symbol cases -------------------------------------------------------
# 10,000 cash, `cash` sizing of 9,000 per symbol, whole shares, no costs. A target at bar i
# trades at bar i + 1's open.


def _two(bars_a, bars_b, target_a, target_b, rules, sizing=("cash", 9_000.0), short=False):  # type: ignore[no-untyped-def]
    idx = pd.date_range("2024-01-02", periods=len(bars_a), freq="B", tz="UTC", name="time")
    prices = []
    for name, bars in (("A", bars_a), ("B", bars_b)):
        frame = pd.DataFrame(bars, index=idx, columns=["open", "high", "low", "close"], dtype=np.float64)
        frame["volume"] = 1e6
        prices.append(price_arrays(frame, name))
    sim = SimConfig(
        10_000, Costs(model="percent", pct_fee=0.0, fixed_fee=0.0, slippage_bps=0.0), Sizing(*sizing, allow_short=short)
    )
    target = np.column_stack([target_a, target_b]).astype(np.float64)
    orders, value, _ = _ours(idx, prices, target, sim, rules)
    ref = replay_exits_group(target, prices, sim, DAILY, ExitRules(**rules))
    ours = [(int(o[O_BAR]), int(o[-1]), float(o[O_PRICE]), float(o[O_SIZE])) for o in orders]
    return ours, float(value[-1]), ref


def test_gap_exit_at_the_open_frees_cash_for_the_other_symbols_entry() -> None:
    """A enters 90 @ 100 at bar 1 (cash 1,000 left), stop 95. B's target turns on at bar 1's
    close (50: 9,000 / 50 = 180 shares). Bar 2: A opens at 90, through its stop: sold 90 @ 90
    (+8,100, cash 9,100) first, then B buys 180 @ 50 = 9,000 with that cash (without it,
    1,000 would buy 20). Close: cash 100 + 180 x 50 = 9,100."""
    flat_a, flat_b = (100, 100, 100, 100), (50, 50, 50, 50)
    fills, equity, ref = _two(
        [flat_a, flat_a, (90, 91, 89, 90), (90, 90, 90, 90)],
        [flat_b, flat_b, flat_b, flat_b],
        [1, 1, 1, 1],
        [0, 1, 1, 1],
        {"sl_stop": 0.05},
    )
    want = [(1, 0, 100.0, 90.0), (2, 0, 90.0, -90.0), (2, 1, 50.0, 180.0)]
    assert fills == want
    assert [(b, c, p, q) for b, c, p, q in ref.fills()] == want
    assert equity == pytest.approx(9_100.0, rel=1e-12)
    assert float(ref.pf.value().iloc[-1]) == pytest.approx(9_100.0, rel=1e-12)
    assert ref.exits == [(2, 0, "stop-gap")]


def test_time_exit_frees_cash_for_the_other_symbols_entry_at_the_same_open() -> None:
    """max_hold=2: A (90 @ 100 at bar 1) closes at bar 3's open, 90 @ 101 = 9,090 (cash
    10,090); B's entry at that open buys 180 @ 50 in full. Close: 1,090 + 180 x 51 = 10,270."""
    a, b = (100, 100, 100, 100), (50, 50, 50, 50)
    fills, equity, ref = _two(
        [a, a, a, (101, 101, 101, 101)],
        [b, b, b, (50, 51, 50, 51)],
        [1, 1, 1, 1],
        [0, 0, 1, 1],
        {"max_hold": 2},
    )
    want = [(1, 0, 100.0, 90.0), (3, 0, 101.0, -90.0), (3, 1, 50.0, 180.0)]
    assert fills == want and [tuple(f) for f in ref.fills()] == want
    assert equity == pytest.approx(10_270.0, rel=1e-12)
    assert ref.exits == [(3, 0, "max_hold")]


def test_intrabar_stop_does_not_fund_a_limit_entry_in_the_same_bar() -> None:
    """entry_limit=0 (a limit at the signal close), sl_stop=0.05. A's limit 100 fills at bar
    1's open (100): 90 shares, cash 1,000, stop 95. B's target turns on at bar 1's close 50:
    a buy limit at 50 for 180 shares, working in bar 2. Bar 2: A trades 99..94, B 51..49.
    Limits fill before intrabar stops: B buys what 1,000 affords, 20 @ 50 (cash 0); then
    A's stop sells 90 @ 95 (+8,550). Close (A 96, B 50): 8,550 + 20 x 50 = 9,550."""
    a, b = (100, 100, 100, 100), (50, 50, 50, 50)
    fills, equity, ref = _two(
        [a, a, (99, 100, 94, 96), (96, 96, 96, 96)],
        [b, b, (51, 51, 49, 50), b],
        [1, 1, 1, 1],
        [0, 1, 1, 1],
        {"entry_limit": 0.0, "sl_stop": 0.05},
    )
    want = [(1, 0, 100.0, 90.0), (2, 1, 50.0, 20.0), (2, 0, 95.0, -90.0)]
    assert fills == want and [tuple(f) for f in ref.fills()] == want
    assert equity == pytest.approx(9_550.0, rel=1e-12)
    assert ref.exits == [(2, 0, "stop")]


def test_the_budget_is_the_decision_close_equity_not_what_a_gap_exit_left() -> None:
    """`fraction` 0.5 sizing. A buys 50 @ 100 at bar 1 (cash 5,000), stop 95. B's target
    turns on at bar 1's close: the group's equity there is 5,000 + 50 x 100 = 10,000, so B
    wants 0.5 x 10,000 / 50 = 100 shares. Bar 2: A opens at 80 through its stop, out 50 @ 80
    (cash 9,000); B still buys 100 @ 50 (sizing from the 9,000 left after the exit would
    give 90). Close: 4,000 + 100 x 50 = 9,000."""
    a, b = (100, 100, 100, 100), (50, 50, 50, 50)
    fills, equity, ref = _two(
        [a, a, (80, 80, 80, 80), (80, 80, 80, 80)],
        [b, b, b, b],
        [1, 1, 1, 1],
        [0, 1, 1, 1],
        {"sl_stop": 0.05},
        sizing=("fraction", 0.5),
    )
    want = [(1, 0, 100.0, 50.0), (2, 0, 80.0, -50.0), (2, 1, 50.0, 100.0)]
    assert fills == want and [tuple(f) for f in ref.fills()] == want
    assert equity == pytest.approx(9_000.0, rel=1e-12)


def test_a_shorts_protective_cover_beyond_the_cash_drives_the_cash_negative() -> None:
    """`cash` sizing 15,000, shorts allowed. Bar 1: A shorts 150 @ 100 (cash 25,000), then B
    buys 300 @ 50 with the proceeds (cash 10,000). A's stop 105 is gapped at bar 2 (open
    120): covered in full, 150 @ 120 = 18,000, cash -8,000 (an exit is never cut). Close:
    -8,000 + 300 x 50 = 7,000. vectorbt's simulator cannot replay negative cash."""
    from quantlab._exit_orders_group import NegativeCashError

    a, b = (100, 100, 100, 100), (50, 50, 50, 50)
    bars_a = [a, a, (120, 120, 120, 120), (120, 120, 120, 120)]
    with pytest.raises(NegativeCashError, match="no negative cash"):
        _two(bars_a, [b, b, b, b], [-1, -1, -1, -1], [1, 1, 1, 1], {"sl_stop": 0.05}, ("cash", 15_000.0), True)
    idx = pd.date_range("2024-01-02", periods=4, freq="B", tz="UTC", name="time")
    prices = [
        price_arrays(
            pd.DataFrame(bars, index=idx, columns=["open", "high", "low", "close"], dtype=float).assign(volume=1e6), s
        )
        for s, bars in (("A", bars_a), ("B", [b, b, b, b]))
    ]
    sim = SimConfig(
        10_000,
        Costs(model="percent", pct_fee=0.0, fixed_fee=0.0, slippage_bps=0.0),
        Sizing("cash", 15_000.0, allow_short=True),
    )
    target = np.array([[-1.0, 1.0]] * 4)
    orders, value, _ = _ours(idx, prices, target, sim, {"sl_stop": 0.05})
    fills = [(int(o[O_BAR]), int(o[-1]), float(o[O_PRICE]), float(o[O_SIZE])) for o in orders]
    assert fills == [(1, 0, 100.0, -150.0), (1, 1, 50.0, 300.0), (2, 0, 120.0, 150.0)]
    assert list(value) == [10_000.0, 10_000.0, 7_000.0, 7_000.0]


# -- a one-symbol group is the single-symbol simulator --------------------------------------

GROUP_CASES = [c for c in CASES if not c.costs.get("borrow_rate")]


@pytest.mark.parametrize("case", GROUP_CASES, ids=[c.name for c in GROUP_CASES])
def test_one_symbol_group_matches_hand_computed_cases(case: Case) -> None:
    """Every hand case of exit_cases.py (borrow aside: refused for groups) as a one-symbol
    group, by the group simulator and the group reference. The case the single-symbol
    kernel gets wrong (``kernel_differs``: a reversal after a gap exit sized from the cash
    left) the group gets right: its budget is the equity at the decision close."""
    sim = case.sim()
    sim = dataclasses.replace(sim, costs=dataclasses.replace(sim.costs, **case.costs))
    prices = [price_arrays(case.frame(), "X")]
    target = case.target_array()[:, None]
    orders, value, _ = _ours(prices[0].index, prices, target, sim, case.rules)
    conc = sim.costs.concession()
    fills = [
        (int(o[O_BAR]), float(o[O_PRICE] * (1 + conc if o[O_SIZE] > 0 else 1 - conc)), float(o[O_SIZE])) for o in orders
    ]
    assert [f[0] for f in fills] == [f[0] for f in case.fills], fills
    for got, want in zip(fills, case.fills, strict=True):
        assert list(got[1:]) == pytest.approx(list(want[1:]), rel=1e-9)
    assert value[-1] == pytest.approx(case.equity, rel=1e-9)
    ref = replay_exits_group(target, prices, sim, DAILY, ExitRules(**case.rules), ExtraCosts(**case.costs))
    theirs = ref.fills()
    assert [(b, c) for b, c, _, _ in theirs] == [(f[0], 0) for f in fills]
    np.testing.assert_allclose([(p, q) for _, _, p, q in theirs], [f[1:] for f in fills], rtol=1e-12)


@pytest.mark.parametrize("rules", list(RULE_SETS), ids=list(RULE_SETS))
def test_one_symbol_group_equals_the_single_symbol_simulator(group, rules: str) -> None:  # type: ignore[no-untyped-def]
    """Same orders (bar, size, price, fee, reason), bit for bit, as quantlab.kernels.sim on
    real SPY bars: the group reuses its fill rules."""
    from quantlab.replay import simulate

    index, prices = group
    sim = SIMS["ib_all_whole"]
    spec = get_strategy("sma_cross")
    target = evaluate_arrays(spec, prices[0], {"fast": 10, "slow": 40})
    single = simulate(target, prices[0], sim, DAILY, exits=_exit_vector(RULE_SETS[rules]))
    orders, value, _ = _ours(index, prices[:1], target[:, None], sim, RULE_SETS[rules])
    np.testing.assert_array_equal(orders[:, :-1], single.orders)
    np.testing.assert_array_equal(value, single.value)


MINUTE = get_interval("1m")


@pytest.mark.parametrize(
    "rules",
    [
        {"sl_stop": 0.002, "tp_stop": 0.004},
        {"sl_trail": 0.0015, "max_hold": 30},
        {"entry_limit": 0.0002, "limit_expiry": 3, "limit_ticks": 1, "sl_stop": 0.003},
    ],
    ids=["sl_tp", "trail_hold", "limit_stop"],
)
def test_group_equals_reference_on_real_minute_bars(real_data: Path, rules: dict[str, float]) -> None:
    """SPY+QQQ 1-minute bars (stops scaled to the bar's range), long/short flips."""
    from tests.reference._exit_data import read_minute

    frames = {"SPY": read_minute(real_data, "SPY_1min"), "QQQ": read_minute(real_data, "QQQ_1min")}
    index = frames["SPY"].index.intersection(frames["QQQ"].index)
    prices = [price_arrays(frames[s].loc[index], s) for s in SYMBOLS]
    sim = SimConfig(25_000, Costs(slippage_bps=1, **REG), Sizing("fraction", 0.7, allow_short=True))
    spec = get_strategy("sma_cross")
    target = np.column_stack([2.0 * evaluate_arrays(spec, p, {"fast": 5, "slow": 20}) - 1.0 for p in prices])
    vol = np.column_stack([sizing_vol(p, sim, MINUTE) for p in prices])
    cols = [np.column_stack([getattr(p, f) for p in prices]) for f in ("open", "high", "low", "close")]
    arrays = GroupArrays(index, list(SYMBOLS), *cols, target, vol)
    orders, value = simulate_group(arrays, sim, _exit_vector(rules))
    close = pd.DataFrame(cols[3], index=index, columns=list(SYMBOLS))
    pf = group_portfolio_from_orders(close, orders[:, :-1], orders[:, -1].astype(np.int64), sim, MINUTE)
    ref = replay_exits_group(target, prices, sim, MINUTE, ExitRules(**rules), _extra(sim))
    _assert_equal(orders, value, pf, ref, sim, MINUTE)
    assert ref.exits and set(orders[:, -1]) == {0.0, 1.0}


# -- random small groups: every rule, cash binding, flips --------------------------------------


def _random_group(seed: int):  # type: ignore[no-untyped-def]
    """2-3 random-walk symbols over 60 bars with gaps, random targets (long-only or
    long/short, NaN gaps), sizing that over-commits the cash, and random rules."""
    rng = np.random.default_rng(seed)
    n, m = 60, int(rng.integers(2, 4))
    idx = pd.date_range("2024-01-02", periods=n, freq="B", tz="UTC", name="time")
    prices = []
    for c in range(m):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
        open_ = close * np.exp(rng.normal(0, 0.02, n))
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.03, n))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.03, n))
        frame = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": 1e6}, index=idx)
        prices.append(price_arrays(frame, f"S{c}"))
    short = bool(rng.integers(0, 2))
    choices = [-1.0, -0.5, 0.0, 0.5, 1.0] if short else [0.0, 0.5, 1.0]
    target = np.repeat(rng.choice(choices, size=(n // 3 + 1, m)), 3, axis=0)[:n]
    target[rng.random((n, m)) < 0.1] = np.nan
    mode = ["all", "fraction", "cash"][int(rng.integers(0, 3))]
    sizing = Sizing(
        mode,
        {"all": 1.0, "fraction": 0.8, "cash": 6000.0}[mode],
        allow_short=short,
        whole_shares=bool(rng.integers(0, 2)),
    )
    costs = Costs(model="percent", pct_fee=0.001, fixed_fee=0.3, slippage_bps=float(rng.integers(0, 5)))
    rules: dict[str, float] = {}
    if rng.random() < 0.6:
        rules["sl_stop"] = float(rng.uniform(0.01, 0.06))
    if rng.random() < 0.5:
        rules["tp_stop"] = float(rng.uniform(0.01, 0.08))
    if rng.random() < 0.5:
        rules["sl_trail"] = float(rng.uniform(0.01, 0.06))
    if rng.random() < 0.4:
        rules["max_hold"] = int(rng.integers(1, 6))
    if rng.random() < 0.4:
        rules.update(
            entry_limit=float(rng.uniform(0, 0.02)),
            limit_expiry=int(rng.integers(1, 4)),
            limit_ticks=int(rng.integers(0, 3)),
        )
    return idx, prices, target, SimConfig(10_000, costs, sizing), rules or {"sl_stop": 0.02}


def test_random_groups_equal_the_reference() -> None:
    """80 random groups. The only runs vectorbt cannot replay are those where a short's
    protective cover costs more than the cash left (other symbols spent its proceeds): the
    simulator fills it anyway and the cash goes negative (an exit always closes)."""
    from quantlab._exit_orders_group import NegativeCashError

    compared = 0
    for seed in range(80):
        index, prices, target, sim, rules = _random_group(seed)
        orders, value, _ = _ours(index, prices, target, sim, rules)
        try:
            ref = replay_exits_group(target, prices, sim, DAILY, ExitRules(**rules), _extra(sim))
        except NegativeCashError:
            conc = sim.costs.concession()
            size, price, fee = orders[:, O_SIZE], orders[:, O_PRICE], orders[:, 3]
            flow = -size * price * np.where(size > 0, 1 + conc, 1 - conc) - fee
            assert sim.sizing.allow_short and (sim.init_cash + np.cumsum(flow)).min() < 0, seed
            continue
        _assert_equal(orders, value, None, ref, sim)  # fills and value (metrics: the tests above)
        compared += 1
    assert compared >= 72


@pytest.mark.parametrize("short", [False, True], ids=["long", "long_short"])
def test_group_reference_with_ample_cash_is_the_single_symbol_reference(group, short: bool) -> None:  # type: ignore[no-untyped-def]
    """With `cash` sizing and cash that never binds, the group's symbols do not interact: the
    group reference's fills per symbol are the single-symbol reference's (quantlab.replay_exits,
    held to vectorbt's from_signals and the hand cases), and the group's value is their sum."""
    from quantlab.replay_exits import replay_exits

    index, prices = group
    rules = RULE_SETS["all"]
    sim = SimConfig(1_000_000, Costs(slippage_bps=2, **REG), Sizing("cash", 10_000, allow_short=short))
    spec = get_strategy("sma_cross")
    raw = [evaluate_arrays(spec, p, {"fast": 10, "slow": 40}) for p in prices]
    target = np.column_stack([2.0 * t - 1.0 if short else t for t in raw])
    ref = replay_exits_group(target, prices, sim, DAILY, ExitRules(**rules), _extra(sim))
    total = np.zeros(len(index))
    for c, p in enumerate(prices):
        single = replay_exits(target[:, c], p, sim, DAILY, ExitRules(**rules), _extra(sim))
        ours = [(b, px, q) for b, col, px, q in ref.fills() if col == c]
        assert len(ours) == len(single.fills()) > 0
        np.testing.assert_allclose(np.array(ours), np.array(single.fills()), rtol=1e-12)
        total += single.value.to_numpy() - sim.init_cash
    np.testing.assert_allclose(ref.pf.value().to_numpy(), total + sim.init_cash, rtol=1e-12)
