"""Exit rules through the sweep, the API and the CLI; their bad input; property tests of
the pure pieces of the fill rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from quantlab.cli import cli
from quantlab.engine.exits import (
    EXIT_NAMES,
    check_exits_for_run,
    exit_vector,
    parse_exits,
    with_exits,
)
from quantlab.engine.intervals import get_interval
from quantlab.engine.params import parse_grid
from quantlab.engine.registry import get_strategy
from quantlab.engine.settings import Costs, SimConfig, Sizing
from quantlab.engine.signals import evaluate_arrays, price_arrays
from quantlab.engine.sweep import run_sweep
from quantlab.errors import ParameterError
from quantlab.kernels import layout as L
from quantlab.kernels.costs import commission_nb, order_fee_nb, sell_fees_nb
from quantlab.kernels.sim import intrabar_exit_nb, limit_fill_nb, stop_level_nb
from quantlab.replay import simulate

DAILY = get_interval("1d")
EXITS = "sl_stop=0.02|0.05,tp_stop=0.1|0.3,sl_trail=0.04|0.5,max_hold=10|1000"


@pytest.fixture(scope="module")
def spy(daily: dict[str, pd.DataFrame]):  # type: ignore[no-untyped-def]
    return price_arrays(daily["SPY"], "SPY")


@pytest.mark.parametrize(
    ("sim", "exits"),
    [
        (SimConfig(), EXITS),
        (
            SimConfig(costs=Costs(slippage_bps=2, half_spread_bps=1, sec_fee_rate=27.8e-6, taf_per_share=0.000166)),
            "entry_limit=0|0.01,limit_expiry=1|3,limit_ticks=0|2,sl_stop=0.03",
        ),
        (
            SimConfig(costs=Costs(borrow_rate=0.05), sizing=Sizing("fraction", 0.8, allow_short=True)),
            "sl_trail=0.05,tp_stop=0.1",
        ),
    ],
)
def test_the_sweep_equals_the_recorded_simulation_with_every_rule(spy, sim, exits) -> None:  # type: ignore[no-untyped-def]
    spec, grid_exits = parse_exits(get_strategy("sma_cross"), exits)
    values = parse_grid(spec, "fast=10|30,slow=50|120," + grid_exits).values
    out = run_sweep(spec, spy, values, sim, DAILY)
    for k in range(values.shape[0]):
        params = dict(zip(spec.param_names, values[k], strict=True))
        record = simulate(evaluate_arrays(spec, spy, params), spy, sim, DAILY, exits=exit_vector(spec, params))
        np.testing.assert_array_equal(out.metrics[k], np.array([record.metrics[m] for m in L.METRIC_NAMES]))


def test_exits_change_results_and_no_exits_change_nothing(spy) -> None:  # type: ignore[no-untyped-def]
    base = get_strategy("sma_cross")
    values = parse_grid(base, "fast=10|30,slow=50|120").values
    plain = run_sweep(base, spy, values, SimConfig(), DAILY).metrics
    spec = with_exits(base, ["sl_stop"])
    off = run_sweep(spec, spy, np.column_stack([values, np.full(len(values), 0.99)]), SimConfig(), DAILY).metrics
    on = run_sweep(spec, spy, np.column_stack([values, np.full(len(values), 0.02)]), SimConfig(), DAILY).metrics
    np.testing.assert_array_equal(plain, off)  # a 99% stop never triggers on SPY
    assert not np.array_equal(plain, on)


def test_walkforward_stitches_per_fold_exit_rules(spy) -> None:  # type: ignore[no-untyped-def]
    spec = with_exits(get_strategy("sma_cross"), ["sl_stop"])
    params = {"fast": 10.0, "slow": 50.0, "sl_stop": 0.03}
    target = evaluate_arrays(spec, spy, params)
    one = simulate(target, spy, SimConfig(), DAILY, exits=exit_vector(spec, params))
    rows = np.tile(exit_vector(spec, params), (len(spy), 1))
    np.testing.assert_array_equal(simulate(target, spy, SimConfig(), DAILY, exits=rows).value, one.value)
    rows[len(spy) // 2 :, L.X_SL_STOP] = 0.5
    assert not np.array_equal(simulate(target, spy, SimConfig(), DAILY, exits=rows).value, one.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sl_stop=0", "must be in (0, 1)"),
        ("sl_stop=-0.02", "stop at or beyond the entry"),
        ("sl_trail=1.5", "trailing stop"),
        ("tp_stop=0", "below its stop"),
        ("entry_limit=-0.01", "crossing the market"),
        ("max_hold=0", "at least 1"),
        ("limit_expiry=3", "no entry_limit"),
        ("sl_stp=0.02", "did you mean sl_stop"),
    ],
)
def test_bad_exit_rules_are_refused_with_the_value_and_fix(text: str, message: str) -> None:
    with pytest.raises(ParameterError) as err:
        parse_exits(get_strategy("sma_cross"), text)
    assert message in str(err.value) and "Fix:" in str(err.value)


def test_exits_on_a_shorting_strategy_need_allow_short() -> None:
    spec = with_exits(get_strategy("sma_cross"), ["sl_stop"])
    with pytest.raises(ParameterError, match="goes short, but shorting is off"):
        check_exits_for_run(spec, [np.array([1.0, -1.0])], allow_short=False)
    with pytest.raises(ParameterError, match="tp_stop must be < 1"):
        check_exits_for_run(spec, [np.array([1.0, -1.0])], allow_short=True, tp_values=[1.5])
    check_exits_for_run(spec, [np.array([1.0, 0.0])], allow_short=False)


def test_every_rule_merges_into_any_strategy() -> None:
    for name in ("sma_cross", "rsi_reversion", "donchian_atr"):
        base = get_strategy(name)
        spec = with_exits(base, EXIT_NAMES)
        assert spec.param_names == base.param_names + EXIT_NAMES
        assert spec.kernel_params == base.params


def run_cli(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args))


def test_cli_backtest_takes_exit_params_and_shows_reasons(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run_cli(
        "backtest",
        "--strategy",
        "sma_cross",
        "--symbols",
        "SPY",
        "--params",
        "fast=20,slow=50,sl_stop=0.03",
        "--report",
        "none",
        "--reports",
        str(tmp_path),
        "--us-fees",
        "--half-spread-bps",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert "sl_stop=0.03" in result.output
    trades = pd.read_csv(next(tmp_path.glob("*/trades.csv")))
    assert {"stop", "signal"} <= set(trades["Exit Reason"].dropna())


def test_cli_optimize_searches_exits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run_cli(
        "optimize",
        "--strategy",
        "sma_cross",
        "--symbols",
        "SPY",
        "--grid",
        "fast=10|20,slow=50|100",
        "--exits",
        "sl_stop=0.02:0.06:0.02,tp_stop=0.1",
        "--top",
        "2",
        "--report",
        "none",
        "--reports",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert "12 combinations" in result.output and "sl_stop=" in result.output


def test_cli_bad_exit_is_a_clear_error() -> None:
    result = run_cli("optimize", "--strategy", "sma_cross", "--symbols", "SPY", "--exits", "sl_stop=-0.02:0.05:0.01")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "sl_stop" in result.output and "Fix:" in result.output


# --- properties of the pure pieces -----------------------------------------------------------

prices = st.floats(1.0, 1000.0)
fractions = st.floats(0.001, 0.99)


@settings(max_examples=200, deadline=None)
@given(entry=prices, up=st.floats(0.0, 2.0), sl=fractions, trail=fractions)
def test_stop_level_is_the_nearer_stop_and_below_a_long_entry(entry: float, up: float, sl: float, trail: float) -> None:
    mark = entry * (1 + up)
    level, reason = stop_level_nb(True, entry, mark, sl, trail)
    assert level == max(entry * (1 - sl), mark * (1 - trail))
    assert reason == (L.R_TRAIL if mark * (1 - trail) > entry * (1 - sl) else L.R_STOP)
    short, _ = stop_level_nb(False, entry, entry / (1 + up), sl, trail)
    assert short == min(entry * (1 + sl), entry / (1 + up) * (1 + trail))
    assert level < max(entry, mark) and short > min(entry, entry / (1 + up))


@settings(max_examples=200, deadline=None)
@given(o=prices, a=st.floats(0.0, 0.2), b=st.floats(0.0, 0.2), stop=prices, tp=prices)
def test_an_intrabar_exit_fills_inside_the_bar_and_the_stop_wins(
    o: float, a: float, b: float, stop: float, tp: float
) -> None:
    low, high = o * (1 - a), o * (1 + b)
    if not (low < stop < o < tp):
        return  # an open through a level is handled at the open
    reason, px = intrabar_exit_nb(True, low, high, stop, L.R_STOP, tp)
    if low <= stop:
        assert (reason, px) == (L.R_STOP, stop)
    elif high >= tp:
        assert (reason, px) == (L.R_TARGET, tp)
    else:
        assert reason == -1.0
    if reason >= 0:
        assert low <= px <= high


@settings(max_examples=200, deadline=None)
@given(o=prices, a=st.floats(0.0, 0.2), limit=prices, ticks=st.integers(0, 5))
def test_a_buy_limit_never_fills_above_its_limit_or_below_the_low(o: float, a: float, limit: float, ticks: int) -> None:
    low = o * (1 - a)
    px = limit_fill_nb(True, o, low, o, limit, ticks)
    if low <= limit - ticks * L.TICK:
        assert low <= px <= limit and px == min(o, limit)
    else:
        assert np.isnan(px)


@settings(max_examples=200, deadline=None)
@given(qty=st.floats(1, 1e6), price=prices, rate=st.floats(0, 1e-4), taf=st.floats(0, 1e-3), cap=st.floats(0.01, 10))
def test_regulatory_fees_are_sells_only_monotone_and_capped(
    qty: float, price: float, rate: float, taf: float, cap: float
) -> None:
    cfg = SimConfig(costs=Costs(sec_fee_rate=rate, taf_per_share=taf, taf_max=cap)).to_array()
    assert order_fee_nb(qty, price, True, cfg) == commission_nb(qty, price, cfg)
    fees = sell_fees_nb(qty, price, cfg)
    assert fees == pytest.approx(qty * price * rate + min(qty * taf, cap), rel=1e-12)
    assert sell_fees_nb(qty * 2, price, cfg) >= fees
    assert order_fee_nb(qty, price, False, cfg) == pytest.approx(commission_nb(qty, price, cfg) + fees, rel=1e-12)
