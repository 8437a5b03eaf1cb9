"""Every strategy: causal (prefix == full, bit for bit) and equal to its slow twin."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantlab.engine.registry import get_strategy, list_strategies
from quantlab.engine.signals import evaluate_arrays, kernel_inputs, price_arrays
from quantlab.engine.strategy import StrategySpec
from tests.reference.kernels_ref import TWINS

NAMES = [s.name for s in list_strategies()]


def test_at_least_five_strategies_ship_with_docs() -> None:
    assert {"sma_cross", "ema_cross", "rsi_reversion", "donchian_atr", "bollinger_reversion", "tsmom_vol"} <= set(NAMES)
    for spec in list_strategies():
        assert 2 <= len(spec.doc.strip().splitlines()) <= 3, spec.name
        assert all(p.doc for p in spec.params), spec.name


def _params(spec: StrategySpec, data: st.DataObject) -> dict[str, float]:
    """Random valid parameters drawn from the spec's ranges, respecting constraints."""
    while True:
        params = {}
        for p in spec.params:
            if p.kind == "int":
                params[p.name] = float(data.draw(st.integers(int(p.low), int(min(p.high, 120))), label=p.name))
            else:
                params[p.name] = data.draw(st.floats(p.low, p.high, allow_nan=False), label=p.name)
        if spec.constraint_mask({k: np.array([v]) for k, v in params.items()})[0]:
            return params


@pytest.mark.parametrize("name", NAMES)
def test_causal_prefix_equals_full(name: str, daily: dict[str, pd.DataFrame]) -> None:
    """Output at bar i is identical whether the kernel saw bars[:i+1] or the whole series."""
    spec = get_strategy(name)

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        symbol = data.draw(st.sampled_from(sorted(daily)), label="symbol")
        prices = price_arrays(daily[symbol], symbol)
        params = _params(spec, data)
        full = evaluate_arrays(spec, prices, params)
        cuts = data.draw(st.lists(st.integers(1, len(prices) - 1), min_size=3, max_size=6), label="cuts")
        for cut in cuts:
            prefix = evaluate_arrays(spec, prices.slice(cut + 1), params)
            np.testing.assert_array_equal(prefix, full[: cut + 1], err_msg=f"{name} {params} cut {cut}")

    check()


@pytest.mark.parametrize("name", NAMES)
def test_kernel_equals_slow_twin(name: str, daily: dict[str, pd.DataFrame]) -> None:
    spec = get_strategy(name)
    twin = TWINS[name]
    rng = np.random.default_rng(11)
    for symbol in ("SPY", "AAPL"):
        prices = price_arrays(daily[symbol], symbol)
        for _ in range(4):
            while True:
                params = {
                    p.name: float(rng.integers(p.low, min(p.high, 150) + 1))
                    if p.kind == "int"
                    else float(np.round(rng.uniform(p.low, p.high), 3))
                    for p in spec.params
                }
                if spec.constraint_mask({k: np.array([v]) for k, v in params.items()})[0]:
                    break
            ours = evaluate_arrays(spec, prices, params)
            args = [int(params[p.name]) if p.kind == "int" else params[p.name] for p in spec.params]
            theirs = twin(*kernel_inputs(spec, prices), *args)
            np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg=f"{name} {params} warm-up")
            same = np.isnan(ours) | np.isclose(ours, theirs, rtol=1e-12, atol=0)
            assert same.all(), f"{name} {params} on {symbol}: first difference at bar {int(np.argmin(same))}"


def test_kernel_contract_checked_at_registration() -> None:
    from numba import njit

    from quantlab.engine.strategy import Param
    from quantlab.errors import StrategyError

    @njit(cache=False)
    def bad_nb(close, window):  # type: ignore[no-untyped-def]
        return close

    with pytest.raises(StrategyError, match="kernel arguments do not match"):
        StrategySpec("bad", bad_nb, ("close",), (Param("length", "int", 5, 1, 10),), "length", "x\ny")
    with pytest.raises(StrategyError, match="not a numba function"):
        StrategySpec(
            "bad", lambda close, window: close, ("close",), (Param("window", "int", 5, 1, 10),), "window", "x\ny"
        )


def test_lookback_is_enough_for_first_signal(daily: dict[str, pd.DataFrame]) -> None:
    """The first finite target appears no later than the declared lookback."""
    prices = price_arrays(daily["SPY"], "SPY")
    for spec in list_strategies():
        params = spec.defaults()
        target = evaluate_arrays(spec, prices, params)
        first = int(np.argmax(np.isfinite(target)))
        assert np.isfinite(target).any()
        assert first <= spec.lookback_bars(params), (spec.name, first, spec.lookback_bars(params))
