"""Numba kernels for the overfitting statistics.

Every function here is ``@njit(cache=True)``, takes float64/int64 arrays and scalars and
returns arrays. Inputs are validated by the wrappers in ``blocks.py``, ``cscv.py`` and
``bootstrap.py`` before a kernel is called.

Metric of a set of returns from its summed statistics (``set_metric_nb``):

* ``METRIC_MEAN``: ``sum / n``.
* ``METRIC_SHARPE``: ``mean / std(ddof=1)`` per observation. Two degenerate cases:
  all returns exactly zero ("flat": the configuration did not trade) scores ``0.0``;
  constant non-zero returns (zero variance within ``DEGENERATE_RTOL * sum of squares``)
  have no defined Sharpe and return NaN, which CSCV treats as the worst value.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

METRIC_SHARPE = 0
METRIC_MEAN = 1
DEGENERATE_RTOL = 1e-9


@njit(cache=True)
def set_metric_nb(s: float, ss: float, n: float, metric: int) -> float:
    """Metric of one set of returns given its sum ``s``, sum of squares ``ss`` and count ``n >= 2``."""
    mean = s / n
    if metric == METRIC_MEAN:
        return mean
    if ss == 0.0:
        return 0.0
    var_num = ss - s * mean
    if var_num <= DEGENERATE_RTOL * ss:
        return np.nan
    return mean / np.sqrt(var_num / (n - 1.0))


@njit(cache=True, parallel=True)
def block_stats_nb(returns: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-block sums and sums of squares of a ``(T, N)`` return matrix.

    Args:
        returns: ``(T, N)`` float64, C-contiguous, finite.
        edges: ``(S + 1,)`` int64 block edges; block ``b`` is rows ``edges[b]:edges[b + 1]``.

    Returns:
        ``(block_sum, block_sumsq)``, each ``(N, S)`` float64.
    """
    n_cols = returns.shape[1]
    n_blocks = edges.shape[0] - 1
    sums = np.zeros((n_blocks, n_cols))
    sumsq = np.zeros((n_blocks, n_cols))
    for b in prange(n_blocks):
        for t in range(edges[b], edges[b + 1]):
            for k in range(n_cols):
                x = returns[t, k]
                sums[b, k] += x
                sumsq[b, k] += x * x
    return np.ascontiguousarray(sums.T), np.ascontiguousarray(sumsq.T)


@njit(cache=True)
def metric_on_blocks_nb(
    block_sum: np.ndarray,
    block_sumsq: np.ndarray,
    block_count: np.ndarray,
    blocks: np.ndarray,
    metric: int,
) -> np.ndarray:
    """Metric of every combination on the union of ``blocks`` (int64 block indices) -> ``(N,)``."""
    n_comb = block_sum.shape[0]
    n = 0.0
    for j in range(blocks.shape[0]):
        n += block_count[blocks[j]]
    out = np.empty(n_comb)
    for k in range(n_comb):
        s = 0.0
        ss = 0.0
        for j in range(blocks.shape[0]):
            s += block_sum[k, blocks[j]]
            ss += block_sumsq[k, blocks[j]]
        out[k] = set_metric_nb(s, ss, n, metric)
    return out


@njit(cache=True, parallel=True, nogil=True)
def cscv_nb(
    block_sum: np.ndarray,
    block_sumsq: np.ndarray,
    block_count: np.ndarray,
    is_blocks: np.ndarray,
    oos_blocks: np.ndarray,
    metric: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Combinatorially symmetric cross-validation over all given splits.

    For split ``i`` the in-sample set is the union of blocks ``is_blocks[i]`` and the
    out-of-sample set the union of ``oos_blocks[i]``. The configuration with the best
    in-sample metric is chosen (NaN counts as worst; ties go to the lowest index), and
    its out-of-sample rank among all ``N`` configurations is computed with average ranks
    for ties (1 = worst, N = best; NaN ranks below every number).

    Args:
        block_sum: ``(N, S)`` per-block sums of returns.
        block_sumsq: ``(N, S)`` per-block sums of squared returns.
        block_count: ``(S,)`` float64 observations per block (each >= 1).
        is_blocks: ``(n_splits, S // 2)`` int64 in-sample block indices.
        oos_blocks: ``(n_splits, S // 2)`` int64 complementary block indices.
        metric: ``METRIC_SHARPE`` or ``METRIC_MEAN``.

    Returns:
        ``(chosen, is_perf, oos_perf, oos_rank)``, each ``(n_splits,)``: the chosen
        configuration, its in-sample and out-of-sample metric, and its OOS rank.
    """
    n_comb = block_sum.shape[0]
    n_splits = is_blocks.shape[0]
    half = is_blocks.shape[1]
    n_blocks = block_sum.shape[1]
    # Out-of-sample sums are the totals minus the in-sample sums (the two halves partition
    # the window), which halves the work per split.
    tot_s = np.zeros(n_comb)
    tot_ss = np.zeros(n_comb)
    n_tot = 0.0
    for b in range(n_blocks):
        n_tot += block_count[b]
    for k in range(n_comb):
        for b in range(n_blocks):
            tot_s[k] += block_sum[k, b]
            tot_ss[k] += block_sumsq[k, b]
    chosen = np.empty(n_splits, np.int64)
    is_perf = np.empty(n_splits)
    oos_perf = np.empty(n_splits)
    oos_rank = np.empty(n_splits)
    for i in prange(n_splits):
        n_is = 0.0
        for j in range(half):
            n_is += block_count[is_blocks[i, j]]
        n_oos = n_tot - n_is
        oos = np.empty(n_comb)
        best = -1
        best_is = -np.inf
        best_s = 0.0
        best_ss = 0.0
        for k in range(n_comb):
            s_is = 0.0
            ss_is = 0.0
            for j in range(half):
                b = is_blocks[i, j]
                s_is += block_sum[k, b]
                ss_is += block_sumsq[k, b]
            v_is = set_metric_nb(s_is, ss_is, n_is, metric)
            v_oos = set_metric_nb(tot_s[k] - s_is, tot_ss[k] - ss_is, n_oos, metric)
            oos[k] = -np.inf if np.isnan(v_oos) else v_oos
            if v_is > best_is:
                best_is = v_is
                best = k
                best_s = s_is
                best_ss = ss_is
        if best < 0:  # every in-sample metric is NaN: take the first configuration
            best = 0
            for j in range(half):
                best_s += block_sum[0, is_blocks[i, j]]
                best_ss += block_sumsq[0, is_blocks[i, j]]
        chosen[i] = best
        is_perf[i] = set_metric_nb(best_s, best_ss, n_is, metric)
        oos_perf[i] = set_metric_nb(tot_s[best] - best_s, tot_ss[best] - best_ss, n_oos, metric)
        v = oos[best]
        less = 0
        equal = 0
        for k in range(n_comb):
            x = oos[k]
            if x < v:
                less += 1
            elif x == v:
                equal += 1
        oos_rank[i] = less + (equal + 1) / 2.0
    return chosen, is_perf, oos_perf, oos_rank


@njit(cache=True)
def stationary_indices_nb(new_block: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Stationary-bootstrap (Politis-Romano) row indices from pre-drawn randomness.

    Args:
        new_block: ``(B, T)`` bool, True where a new block starts (column 0 is ignored:
            every resample starts a block at ``t = 0``).
        starts: ``(B, T)`` int64 uniform draws in ``[0, T)``, the start of a new block.

    Returns:
        ``(B, T)`` int64 indices; inside a block the index advances by one and wraps
        around circularly.
    """
    n_boot, n_obs = starts.shape
    idx = np.empty((n_boot, n_obs), np.int64)
    for b in range(n_boot):
        idx[b, 0] = starts[b, 0]
        for t in range(1, n_obs):
            if new_block[b, t]:
                idx[b, t] = starts[b, t]
            else:
                nxt = idx[b, t - 1] + 1
                idx[b, t] = 0 if nxt == n_obs else nxt
    return idx


@njit(cache=True, parallel=True)
def resampled_means_nb(d: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Column means of ``d[idx[b]]`` for every resample ``b`` -> ``(B, K)``.

    Args:
        d: ``(T, K)`` float64 matrix.
        idx: ``(B, T)`` int64 row indices in ``[0, T)``.
    """
    n_boot, n_obs = idx.shape
    n_cols = d.shape[1]
    out = np.zeros((n_boot, n_cols))
    for b in prange(n_boot):
        for t in range(n_obs):
            row = idx[b, t]
            for k in range(n_cols):
                out[b, k] += d[row, k]
        for k in range(n_cols):
            out[b, k] /= n_obs
    return out
