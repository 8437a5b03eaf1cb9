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
    return float(mean / np.sqrt(var_num / (n - 1.0)))


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


@njit(cache=True)
def _half_sums_nb(block_sum: np.ndarray, block_sumsq: np.ndarray, blocks: np.ndarray, k: int) -> tuple[float, float]:
    """Sum and sum of squares of configuration ``k`` over ``blocks``."""
    s = 0.0
    ss = 0.0
    for h in range(blocks.shape[0]):
        s += block_sum[k, blocks[h]]
        ss += block_sumsq[k, blocks[h]]
    return s, ss


@njit(cache=True)
def _oos_rank_nb(oos: np.ndarray, best: int) -> float:
    """Average rank (1 = worst) of ``oos[best]`` among ``oos``; ``-inf`` stands for NaN."""
    v = oos[best]
    less = 0
    equal = 0
    for k in range(oos.shape[0]):
        x = oos[k]
        if x < v:
            less += 1
        elif x == v:
            equal += 1
    return less + (equal + 1) / 2.0


@njit(cache=True, parallel=True, nogil=True)
def cscv_nb(
    block_sum: np.ndarray,
    block_sumsq: np.ndarray,
    block_count: np.ndarray,
    is_blocks: np.ndarray,
    partner: np.ndarray,
    metric: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Combinatorially symmetric cross-validation over all given splits.

    For split ``i`` the in-sample set is the union of blocks ``is_blocks[i]`` and the
    out-of-sample set the union of the other blocks. The configuration with the best
    in-sample metric is chosen (NaN counts as worst; ties go to the lowest index), and
    its out-of-sample rank among all ``N`` configurations is computed with average ranks
    for ties (1 = worst, N = best; NaN ranks below every number).

    A split and its complement (in-sample and out-of-sample swapped) need the same two
    metric values per configuration, so a pair is evaluated in one pass: ``partner[i]``
    is the row of split ``i``'s complement, or -1 when it is absent (a subsample). Rows
    with ``partner[i] < i`` are filled by their partner's pass.

    Args:
        block_sum: ``(N, S)`` per-block sums of returns.
        block_sumsq: ``(N, S)`` per-block sums of squared returns.
        block_count: ``(S,)`` float64 observations per block (each >= 1).
        is_blocks: ``(n_splits, S // 2)`` int64 in-sample block indices.
        partner: ``(n_splits,)`` int64 row of each split's complement, or -1.
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
    leaders = 0
    for i in range(n_splits):
        if partner[i] < 0 or partner[i] > i:
            leaders += 1
    lead = np.empty(leaders, np.int64)
    m = 0
    for i in range(n_splits):
        if partner[i] < 0 or partner[i] > i:
            lead[m] = i
            m += 1
    chosen = np.empty(n_splits, np.int64)
    is_perf = np.empty(n_splits)
    oos_perf = np.empty(n_splits)
    oos_rank = np.empty(n_splits)
    for u in prange(leaders):
        i = lead[u]
        j = partner[i]
        n_a = 0.0
        for h in range(half):
            n_a += block_count[is_blocks[i, h]]
        n_b = n_tot - n_a
        # a: split i's in-sample half; b: the other half (split j's in-sample half).
        va = np.empty(n_comb)
        vb = np.empty(n_comb)
        best_a = -1
        best_a_v = -np.inf
        best_b = -1
        best_b_v = -np.inf
        for k in range(n_comb):
            s_a = 0.0
            ss_a = 0.0
            for h in range(half):
                b = is_blocks[i, h]
                s_a += block_sum[k, b]
                ss_a += block_sumsq[k, b]
            v_a = set_metric_nb(s_a, ss_a, n_a, metric)
            v_b = set_metric_nb(tot_s[k] - s_a, tot_ss[k] - ss_a, n_b, metric)
            if v_a > best_a_v:
                best_a_v = v_a
                best_a = k
            if v_b > best_b_v:
                best_b_v = v_b
                best_b = k
            va[k] = -np.inf if np.isnan(v_a) else v_a
            vb[k] = -np.inf if np.isnan(v_b) else v_b
        if best_a < 0:  # every in-sample metric is NaN: take the first configuration
            best_a = 0
        if best_b < 0:
            best_b = 0
        s_a, ss_a = _half_sums_nb(block_sum, block_sumsq, is_blocks[i], best_a)
        chosen[i] = best_a
        is_perf[i] = set_metric_nb(s_a, ss_a, n_a, metric)
        oos_perf[i] = set_metric_nb(tot_s[best_a] - s_a, tot_ss[best_a] - ss_a, n_b, metric)
        oos_rank[i] = _oos_rank_nb(vb, best_a)
        if j >= 0:
            s_a, ss_a = _half_sums_nb(block_sum, block_sumsq, is_blocks[i], best_b)
            chosen[j] = best_b
            is_perf[j] = set_metric_nb(tot_s[best_b] - s_a, tot_ss[best_b] - ss_a, n_b, metric)
            oos_perf[j] = set_metric_nb(s_a, ss_a, n_a, metric)
            oos_rank[j] = _oos_rank_nb(va, best_b)
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
