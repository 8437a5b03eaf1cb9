"""The parallel sweep: every parameter row of one symbol through kernel + simulator.

Memory is O(bars + combinations): each worker thread allocates one target array of
``bars`` floats per combination it evaluates, and the output is one metric row (plus
optional CSCV block statistics) per combination. Nothing of size bars x combinations
is ever built. Rows run in chunks so a progress bar can report combinations per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numba.core.errors import NumbaError

from quantlab.engine.codegen import sweep_module
from quantlab.engine.intervals import Interval
from quantlab.engine.settings import SimConfig
from quantlab.engine.signals import PriceArrays, kernel_failure
from quantlab.engine.sizing import sizing_vol
from quantlab.engine.strategy import StrategySpec
from quantlab.errors import ParameterError
from quantlab.kernels.layout import N_METRICS


@dataclass(frozen=True)
class SweepOutput:
    """Metric rows (combinations x ``METRIC_NAMES``) and CSCV block statistics."""

    metrics: np.ndarray
    block_sum: np.ndarray
    block_sumsq: np.ndarray
    block_count: np.ndarray
    seconds: float
    load_seconds: float = 0.0

    @property
    def n_combinations(self) -> int:
        return int(self.metrics.shape[0])


MIN_BLOCK_BARS = 2  # quantlab.overfit.blocks.MIN_BLOCK_OBS: CSCV needs a variance per block


def block_starts(n_bars: int, n_blocks: int) -> np.ndarray:
    """Offsets where each CSCV block starts: the partition of :func:`quantlab.overfit.block_bounds`
    without its end (sizes differ by at most one, the first ``n_bars % n_blocks`` blocks get
    the extra bar). Computed here because the engine does not import the statistics layer;
    tests/quantlab/engine/test_sweep.py checks that both agree."""
    if n_blocks <= 0:
        return np.empty(0, dtype=np.int64)
    if n_bars < MIN_BLOCK_BARS * n_blocks:
        raise ParameterError(
            f"too few observations per block: {n_bars} observations in {n_blocks} blocks "
            f"(need at least {MIN_BLOCK_BARS} per block)",
            found=f"n_obs={n_bars}, n_blocks={n_blocks}",
            fix=f"use fewer blocks or at least {MIN_BLOCK_BARS * n_blocks} observations",
        )
    base, extra = divmod(int(n_bars), int(n_blocks))
    sizes = np.full(n_blocks, base, dtype=np.int64)
    sizes[:extra] += 1
    return np.ascontiguousarray(np.concatenate(([0], np.cumsum(sizes)[:-1])), dtype=np.int64)


def run_sweep(
    spec: StrategySpec,
    prices: PriceArrays,
    params: np.ndarray,
    sim: SimConfig,
    interval: Interval,
    start: int = 0,
    end: int | None = None,
    n_blocks: int = 0,
    on_progress: Callable[[int], None] | None = None,
    chunk_size: int | None = None,
) -> SweepOutput:
    """Evaluate every row of ``params`` (combinations x len(spec.params)) on ``prices[start:end]``.

    Args:
        spec: the strategy.
        prices: validated arrays of one symbol (the kernel sees bars ``0..end-1``; the
            account trades ``start..end-1``).
        params: float64 matrix, one combination per row, columns in ``spec.params`` order.
        sim: costs, sizing, cash.
        interval: bar interval (annualisation).
        start, end: evaluation window.
        n_blocks: CSCV blocks over the window (0: none).
        on_progress: called with the number of combinations finished after each chunk.
        chunk_size: combinations per parallel call (default: about a quarter second of work).
    """
    end = len(prices) if end is None else end
    if not 0 <= start < end <= len(prices):
        raise ParameterError("invalid evaluation window", found=f"start={start}, end={end}, bars={len(prices)}")
    if end - start < 2:
        raise ParameterError("the evaluation window needs at least 2 bars", found=end - start)
    params = np.ascontiguousarray(params, dtype=np.float64)
    if params.ndim != 2 or params.shape[1] != len(spec.params):
        raise ParameterError(
            f"parameter matrix must have {len(spec.params)} columns ({', '.join(spec.param_names)})",
            found=params.shape,
        )
    module = sweep_module(spec)
    k = params.shape[0]
    metrics = np.full((k, N_METRICS), np.nan)
    starts = block_starts(end - start, n_blocks)
    bsum = np.zeros((k, n_blocks))
    bsq = np.zeros((k, n_blocks))
    vol = sizing_vol(prices, sim, interval)
    cfg = sim.to_array(prices.symbol)
    ann = float(interval.bars_per_year)
    args = (prices.open, prices.high, prices.low, prices.close, prices.volume, vol)
    # One-row call first: loads (or compiles) the kernels so the timing below is the
    # steady-state throughput; the load time is reported separately.
    load_began = time.perf_counter()
    try:
        module.sweep_nb(*args, params[:1], start, end, cfg, ann, starts, metrics[:1], bsum[:1], bsq[:1])
    except NumbaError as err:
        raise kernel_failure(spec, err) from None
    load_seconds = time.perf_counter() - load_began
    began = time.perf_counter()
    if chunk_size is None:
        chunk_size = max(64, int(2.0e8 / max(end, 1)))
    done = 0
    while done < k:
        stop = min(k, done + chunk_size)
        module.sweep_nb(
            *args,
            params[done:stop],
            start,
            end,
            cfg,
            ann,
            starts,
            metrics[done:stop],
            bsum[done:stop],
            bsq[done:stop],
        )
        done = stop
        if on_progress is not None:
            on_progress(done)
    seconds = time.perf_counter() - began
    counts = np.diff(np.append(starts, end - start)) if n_blocks else np.empty(0, dtype=np.int64)
    return SweepOutput(metrics, bsum, bsq, counts.astype(np.int64), seconds, load_seconds)
