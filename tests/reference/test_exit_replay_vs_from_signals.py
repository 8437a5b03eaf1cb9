"""The exits reference order function equals vectorbt's own stop engine where they can meet.

``replay_exits(..., vbt_timing=True)`` switches exactly the two timing rules where
vectorbt's ``from_signals`` differs from ours (no stop check in the fill bar; a stop hit
replaces that bar's signal); with them switched, every order (bar, size, price, fees) and
the value path must equal ``from_signals`` with ``sl_stop``/``sl_trail``/``tp_stop`` on
real daily and 1-minute bars, long and short. That checks the order function's gap
pricing, stop-before-target and trailing-mark update against vectorbt's implementation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantlab.engine.intervals import get_interval
from quantlab.engine.registry import get_strategy
from quantlab.engine.settings import Costs, SimConfig, Sizing
from quantlab.engine.signals import evaluate_arrays, price_arrays
from quantlab.errors import QuantlabError
from quantlab.replay_exit_rules import ExitRules
from quantlab.replay_exits import replay_exits, replay_stops_signals
from tests.reference._exit_data import read_daily, read_minute

RULES = [
    ExitRules(sl_stop=0.02),
    ExitRules(sl_stop=0.03, tp_stop=0.04),
    ExitRules(sl_trail=0.025),
    ExitRules(sl_trail=0.05, tp_stop=0.12),
]
MINUTE_RULES = [ExitRules(sl_stop=0.001, tp_stop=0.0015), ExitRules(sl_trail=0.0012)]


def _sim(short: bool) -> SimConfig:
    costs = Costs(model="percent", pct_fee=0.0005, fixed_fee=0.35, slippage_bps=3)
    return SimConfig(100_000, costs, Sizing("cash", 25_000, allow_short=short))


def _assert_same(ours, theirs, label: str) -> None:  # type: ignore[no-untyped-def]
    a, b = ours.pf.orders.records, theirs.orders.records
    assert len(a) == len(b) and len(a) > 4, f"{label}: {len(a)} vs {len(b)} orders"
    for field in ("idx", "side"):
        np.testing.assert_array_equal(a[field], b[field], err_msg=f"{label}: {field}")
    for field in ("size", "price", "fees"):
        np.testing.assert_allclose(a[field], b[field], rtol=1e-12, atol=1e-12, err_msg=f"{label}: {field}")
    np.testing.assert_allclose(ours.value.to_numpy(), theirs.value().to_numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    "strategy,params", [("sma_cross", {"fast": 10, "slow": 30}), ("ema_cross", {"fast": 8, "slow": 40})]
)
@pytest.mark.parametrize("short", [False, True], ids=["long", "short"])
def test_order_function_equals_from_signals_daily(real_data: Path, strategy: str, params: dict, short: bool) -> None:
    daily = get_interval("1d")
    for symbol in ("SPY", "AAPL"):
        prices = price_arrays(read_daily(real_data, symbol), symbol)
        target = evaluate_arrays(get_strategy(strategy), prices, params)
        if short:
            target = -target  # the same signal, mirrored: every stop and target on the high/low side
        for rules in RULES:
            ours = replay_exits(target, prices, _sim(short), daily, rules, start=300, vbt_timing=True)
            theirs = replay_stops_signals(target, prices, _sim(short), daily, rules, start=300)
            assert ours.exits, f"{strategy} {symbol} {rules}: no rule exit in the sample"
            _assert_same(ours, theirs, f"{strategy} {symbol} short={short} {rules}")


def test_order_function_equals_from_signals_minute(real_data: Path) -> None:
    minute = get_interval("1m")
    prices = price_arrays(read_minute(real_data), "SPY")
    target = evaluate_arrays(get_strategy("sma_cross"), prices, {"fast": 5, "slow": 20})
    for rules in MINUTE_RULES:
        ours = replay_exits(target, prices, _sim(False), minute, rules, vbt_timing=True)
        theirs = replay_stops_signals(target, prices, _sim(False), minute, rules)
        assert ours.exits
        _assert_same(ours, theirs, f"1m {rules}")


def test_our_timing_differs_from_from_signals_where_documented(real_data: Path) -> None:
    """Our rules (stop live in the fill bar; the open's order before an intrabar stop) do
    change fills on real data; the cross-check above is not vacuous about them."""
    prices = price_arrays(read_daily(real_data, "SPY"), "SPY")
    target = evaluate_arrays(get_strategy("sma_cross"), prices, {"fast": 10, "slow": 30})
    rules = ExitRules(sl_stop=0.01)
    ours = replay_exits(target, prices, _sim(False), get_interval("1d"), rules)
    theirs = replay_stops_signals(target, prices, _sim(False), get_interval("1d"), rules)
    entry_bars = set(ours.pf.orders.records["idx"][ours.pf.orders.records["side"] == 0].tolist())
    assert any(bar in entry_bars for bar, rule in ours.exits if rule == "stop"), "no fill-bar stop on SPY at 1%"
    assert not np.isclose(ours.value.iloc[-1], theirs.value().iloc[-1], rtol=1e-6)


def test_from_signals_refuses_what_it_cannot_express() -> None:
    prices_len = 10
    idx = pd.date_range("2024-01-01", periods=prices_len, freq="D", tz="UTC")
    bars = pd.DataFrame({"open": 10.0, "high": 11.0, "low": 9.0, "close": 10.0, "volume": 1.0}, index=idx)
    prices = price_arrays(bars, "X")
    with pytest.raises(QuantlabError, match="not representable") as err:
        replay_stops_signals(
            np.zeros(prices_len), prices, SimConfig(), get_interval("1d"), ExitRules(sl_stop=0.1, sl_trail=0.1)
        )
    assert "sl_stop with sl_trail" in str(err.value) and "ib_fixed" in str(err.value)


def test_gap_over_the_target_with_the_stop_touched_later_in_the_bar() -> None:
    """vectorbt checks the whole stop (open, then intrabar) before the target, so a bar that
    opens above the target and later trades down through the stop is priced at the stop.
    Ours takes the open first: out at the gapped open. vbt_timing reproduces vectorbt."""
    idx = pd.date_range("2024-01-02", periods=4, freq="B", tz="UTC")
    bars = pd.DataFrame(
        [(100, 100, 100, 100), (100, 101, 99, 100), (106, 107, 94, 100), (100, 100, 100, 100)],
        index=idx,
        columns=["open", "high", "low", "close"],
    ).assign(volume=1.0)
    prices = price_arrays(bars, "X")
    sim, rules, target = _sim(False), ExitRules(sl_stop=0.05, tp_stop=0.05), np.ones(4)
    theirs = replay_stops_signals(target, prices, sim, get_interval("1d"), rules)
    vbt_like = replay_exits(target, prices, sim, get_interval("1d"), rules, vbt_timing=True)
    ours = replay_exits(target, prices, sim, get_interval("1d"), rules)
    slip = 1 - 3e-4
    assert np.asarray(theirs.orders.records["price"])[-1] == pytest.approx(95 * slip, rel=1e-12)
    assert vbt_like.fills()[-1][1] == pytest.approx(95 * slip, rel=1e-12)
    assert ours.exits == [(2, "target-gap")] and ours.fills()[-1][1] == pytest.approx(106 * slip, rel=1e-12)
