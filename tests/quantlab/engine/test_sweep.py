"""Sweep invariants: chunking, thread count, determinism, block statistics, memory shape."""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
import pytest

from quantlab.engine.intervals import get_interval
from quantlab.engine.params import parse_grid
from quantlab.engine.registry import get_strategy
from quantlab.engine.settings import SimConfig
from quantlab.engine.signals import evaluate_arrays, price_arrays
from quantlab.engine.sweep import block_starts, run_sweep
from quantlab.errors import ParameterError
from quantlab.kernels.layout import METRIC_NAMES
from quantlab.overfit import block_bounds
from quantlab.replay import simulate

DAILY = get_interval("1d")


@pytest.fixture(scope="module")
def setup(daily: dict[str, pd.DataFrame]):  # type: ignore[no-untyped-def]
    spec = get_strategy("sma_cross")
    prices = price_arrays(daily["SPY"], "SPY")
    grid = parse_grid(spec, "fast=5:60:5,slow=20:200:20")
    return spec, prices, grid.values


def test_chunking_and_threads_do_not_change_results(setup) -> None:  # type: ignore[no-untyped-def]
    spec, prices, values = setup
    one = run_sweep(spec, prices, values, SimConfig(), DAILY, n_blocks=8)
    chunked = run_sweep(spec, prices, values, SimConfig(), DAILY, n_blocks=8, chunk_size=7)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = run_sweep(spec, prices, values, SimConfig(), DAILY, n_blocks=8)
    finally:
        numba.set_num_threads(before)
    for other in (chunked, single):
        np.testing.assert_array_equal(one.metrics, other.metrics)
        np.testing.assert_array_equal(one.block_sum, other.block_sum)
        np.testing.assert_array_equal(one.block_sumsq, other.block_sumsq)


def test_block_statistics_match_the_recorded_returns(setup) -> None:  # type: ignore[no-untyped-def]
    spec, prices, values = setup
    start = 250
    out = run_sweep(spec, prices, values[:5], SimConfig(), DAILY, start=start, n_blocks=10)
    edges = block_bounds(len(prices) - start, 10)
    np.testing.assert_array_equal(out.block_count, np.diff(edges))
    for k in range(5):
        target = evaluate_arrays(spec, prices, dict(zip(spec.param_names, values[k], strict=True)))
        record = simulate(target, prices, SimConfig(), DAILY, start)
        returns = record.value / np.concatenate(([1e5], record.value[:-1])) - 1
        sums = np.add.reduceat(returns, edges[:-1])
        np.testing.assert_allclose(out.block_sum[k], sums, rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(out.block_sumsq[k], np.add.reduceat(returns**2, edges[:-1]), rtol=1e-9, atol=1e-15)


def test_outputs_are_sized_by_combinations_not_bars(setup) -> None:  # type: ignore[no-untyped-def]
    """Memory bound: nothing bars x combinations comes back (the kernel keeps O(bars) per thread)."""
    spec, prices, values = setup
    out = run_sweep(spec, prices, values, SimConfig(), DAILY, n_blocks=16)
    assert out.metrics.shape == (len(values), len(METRIC_NAMES))
    assert out.block_sum.shape == (len(values), 16)
    assert out.metrics.nbytes + out.block_sum.nbytes * 2 < 100 * len(values) * 8 + 16 * 16 * len(values)


def test_combination_that_never_trades_is_reported_with_nan_sharpe(setup) -> None:  # type: ignore[no-untyped-def]
    spec, prices, _ = setup
    short = prices.slice(120)
    out = run_sweep(spec, short, np.array([[50.0, 200.0], [5.0, 20.0]]), SimConfig(), DAILY)
    sharpe = out.metrics[:, METRIC_NAMES.index("sharpe")]
    assert np.isnan(sharpe[0]) and out.metrics[0, METRIC_NAMES.index("n_orders")] == 0
    assert np.isfinite(sharpe[1])


def test_bad_windows_and_shapes(setup) -> None:  # type: ignore[no-untyped-def]
    spec, prices, values = setup
    with pytest.raises(ParameterError, match="window"):
        run_sweep(spec, prices, values, SimConfig(), DAILY, start=10, end=5)
    with pytest.raises(ParameterError, match="2 columns"):
        run_sweep(spec, prices, values[:, :1], SimConfig(), DAILY)


def test_block_starts_partition_as_the_statistics_layer_does() -> None:
    """The engine computes the CSCV partition itself (it does not import quantlab.overfit);
    both must agree, or PBO would read block statistics over other bars."""
    for n_bars in (2, 3, 10, 17, 251, 2520):
        for n_blocks in range(1, min(16, n_bars // 2) + 1):
            np.testing.assert_array_equal(block_starts(n_bars, n_blocks), block_bounds(n_bars, n_blocks)[:-1])
    assert block_starts(100, 0).size == 0
    with pytest.raises(ParameterError, match="too few observations per block"):
        block_starts(15, 8)
