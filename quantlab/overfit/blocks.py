"""Contiguous blocks of a return history and their sufficient statistics.

CSCV (see :mod:`quantlab.overfit.cscv`) never needs the full ``bars x combinations``
return matrix: for the Sharpe ratio (mean / std, ddof=1) or the mean of returns on any
union of blocks, three numbers per combination and block are enough,

* ``block_sum[k, b]``   = sum of the per-bar simple returns of combination ``k`` in block ``b``,
* ``block_sumsq[k, b]`` = sum of their squares,
* ``block_count[b]``    = number of bars in block ``b`` (the same for every combination).

A parameter sweep can accumulate these while it runs, using :func:`block_bounds` to know
where each block starts.
"""

from __future__ import annotations

import mmap
from typing import Any

import numpy as np
import numpy.typing as npt

from quantlab._typing import Array1d, Array2d
from quantlab.errors import ParameterError
from quantlab.overfit import _checks
from quantlab.overfit._nb import METRIC_MEAN, METRIC_SHARPE, block_stats_nb, metric_on_blocks_nb

METRICS = {"sharpe": METRIC_SHARPE, "mean": METRIC_MEAN}
_SLAB = 1 << 16  # rows per slab when reading statistics that may be memory-mapped


def release(arr: Any) -> None:
    """Drop a memory-mapped array's pages from this process's resident set.

    A streamed 1e7-row sweep keeps its block statistics in mapped files
    (:mod:`quantlab.optimizer.stream`); the pages stay in the page cache, so a later read
    is a minor fault, but the client's RSS holds only what it is reading now. Does
    nothing for ordinary arrays.
    """
    base = arr
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    if base is not None:
        try:
            base.madvise(mmap.MADV_DONTNEED)
        except (AttributeError, OSError, ValueError):  # platform without madvise, closed map
            pass


def row_sums(arr: Any) -> Array1d:
    """``arr.sum(axis=1)`` in slabs of rows (each row is summed exactly as by numpy at
    once), releasing mapped pages as it goes."""
    out = np.empty(arr.shape[0])
    for lo in range(0, arr.shape[0], _SLAB):
        out[lo : lo + _SLAB] = arr[lo : lo + _SLAB].sum(axis=1)
        release(arr)
    return out


MIN_BLOCK_OBS = 2


def block_bounds(n_obs: int, n_blocks: int) -> npt.NDArray[np.int64]:
    """Edges of ``n_blocks`` contiguous blocks that partition ``n_obs`` observations.

    Block sizes differ by at most one; the first ``n_obs % n_blocks`` blocks get the extra
    observation. Block ``b`` covers rows ``edges[b]:edges[b + 1]`` (half-open), so
    ``edges[0] == 0`` and ``edges[-1] == n_obs``. This is the partition :func:`pbo` uses;
    a sweep that accumulates block statistics itself must use the same edges.

    Example: ``block_bounds(10, 4)`` is ``[0, 3, 6, 8, 10]`` (sizes 3, 3, 2, 2).

    Args:
        n_obs: Number of observations (bars) in the evaluation window.
        n_blocks: Number of blocks ``S``.

    Returns:
        ``(n_blocks + 1,)`` int64 array of edges.

    Raises:
        ParameterError: ``n_blocks < 1`` or fewer than ``MIN_BLOCK_OBS`` observations per block.
    """
    n_blocks = _checks.count("n_blocks", n_blocks, 1)
    n_obs = _checks.count("n_obs", n_obs, 1)
    if n_obs < MIN_BLOCK_OBS * n_blocks:
        raise ParameterError(
            f"too few observations per block: {n_obs} observations in {n_blocks} blocks "
            f"(need at least {MIN_BLOCK_OBS} per block)",
            found=f"n_obs={n_obs}, n_blocks={n_blocks}",
            fix=f"use fewer blocks or at least {MIN_BLOCK_OBS * n_blocks} observations",
        )
    base, extra = divmod(n_obs, n_blocks)
    sizes = np.full(n_blocks, base, dtype=np.int64)
    sizes[:extra] += 1
    edges = np.zeros(n_blocks + 1, dtype=np.int64)
    np.cumsum(sizes, out=edges[1:])
    return edges


def block_stats(returns: Any, n_blocks: int) -> tuple[Array2d, Array2d, npt.NDArray[np.int64]]:
    """Per-block sufficient statistics of a ``(T, N)`` return matrix.

    Args:
        returns: ``(T, N)`` per-bar simple returns, one column per configuration
            (ndarray or DataFrame), finite.
        n_blocks: Number of contiguous blocks ``S`` (partition from :func:`block_bounds`).

    Returns:
        ``(block_sum, block_sumsq, block_count)`` with shapes ``(N, S)``, ``(N, S)``, ``(S,)``.

    Raises:
        ParameterError: Non-finite returns, wrong shape or too few observations per block.
    """
    arr = _checks.returns_2d("returns", returns, min_obs=1, min_cols=1)
    edges = block_bounds(arr.shape[0], n_blocks)
    block_sum, block_sumsq = block_stats_nb(arr, edges)
    return block_sum, block_sumsq, np.diff(edges)


def check_block_stats(
    block_sum: Any, block_sumsq: Any, block_count: Any, min_combinations: int = 1
) -> tuple[Array2d, Array2d, Array1d]:
    """Validate block statistics and return them as float64 arrays.

    Raises:
        ParameterError: Mismatched shapes, non-finite values, counts below
            ``MIN_BLOCK_OBS``, negative or inconsistent sums of squares.
    """
    s = np.ascontiguousarray(np.asarray(block_sum, dtype=np.float64))
    ss = np.ascontiguousarray(np.asarray(block_sumsq, dtype=np.float64))
    n = np.asarray(block_count, dtype=np.float64)
    if s.ndim != 2:
        raise ParameterError(
            "block_sum must be 2-D (combinations x blocks)",
            found=f"shape {s.shape}",
            fix="pass block_sum[k, b]",
        )
    if ss.shape != s.shape:
        raise ParameterError(
            "block_sum and block_sumsq must have the same shape",
            found=f"{s.shape} and {ss.shape}",
            fix="pass both as (combinations, blocks) arrays",
        )
    if n.ndim != 1 or n.shape[0] != s.shape[1]:
        raise ParameterError(
            "block_count must be 1-D with one entry per block (column of block_sum)",
            found=f"block_count shape {n.shape}, block_sum shape {s.shape}",
            fix="pass block_count[b], the number of bars in block b",
        )
    if s.shape[0] < min_combinations:
        raise ParameterError(
            f"need at least {min_combinations} combinations (rows of block_sum)",
            found=s.shape[0],
            fix="pass the statistics of every configuration tried",
        )
    # in slabs of rows: a 1e7-row sweep's statistics (often memory-mapped) never get
    # full-size temporaries here
    bad = {"block_sum": 0, "block_sumsq": 0}
    negative, inconsistent = float("inf"), False
    for lo in range(0, s.shape[0], _SLAB):
        sl, ssl = s[lo : lo + _SLAB], ss[lo : lo + _SLAB]
        bad["block_sum"] += int((~np.isfinite(sl)).sum())
        bad["block_sumsq"] += int((~np.isfinite(ssl)).sum())
        if ssl.size:
            negative = min(negative, float(np.nanmin(ssl)) if np.isfinite(ssl).any() else negative)
        with np.errstate(invalid="ignore", over="ignore"):
            inconsistent |= bool(np.any(sl * sl > n * ssl * (1.0 + 1e-9) + 1e-300))
        release(s)
        release(ss)
    for name, count in bad.items():
        if count:
            raise ParameterError(
                f"{name} contains NaN or infinite values",
                found=f"{count} bad entries",
                fix="fill flat bars with 0 before accumulating the statistics",
            )
    bad_n = int((~np.isfinite(n)).sum())
    if bad_n:
        raise ParameterError(
            "block_count contains NaN or infinite values",
            found=f"{bad_n} bad entries",
            fix="fill flat bars with 0 before accumulating the statistics",
        )
    if np.any(n != np.round(n)) or np.any(n < MIN_BLOCK_OBS):
        raise ParameterError(
            f"too few observations per block: every block_count must be an integer >= {MIN_BLOCK_OBS}",
            found=f"min block_count {n.min():g}",
            fix="use fewer blocks (block_bounds) or a longer history",
        )
    if negative < 0.0:
        raise ParameterError(
            "block_sumsq must be non-negative",
            found=f"min {negative:g}",
            fix="pass sums of squared returns",
        )
    # Cauchy-Schwarz: sum(x)^2 <= n * sum(x^2) for every block.
    if inconsistent:
        raise ParameterError(
            "block_sumsq is inconsistent with block_sum (sum**2 > count * sum of squares)",
            found="at least one block",
            fix="block_sumsq must be the plain sum of squared returns, not of deviations or a std",
        )
    return s, ss, n


def metric_from_block_stats(
    block_sum: Any,
    block_sumsq: Any,
    block_count: Any,
    blocks: Any = None,
    metric: str = "sharpe",
) -> Array1d:
    """Per-observation metric of every combination on a union of blocks.

    With ``blocks=None`` this is the whole-window metric, e.g. the per-bar Sharpe ratio of
    every configuration a sweep tried, which :func:`quantlab.overfit.deflated_sharpe_ratio`
    takes as ``trial_sharpes``.

    Args:
        block_sum: ``(N, S)`` per-block sums of returns.
        block_sumsq: ``(N, S)`` per-block sums of squared returns.
        block_count: ``(S,)`` observations per block.
        blocks: Block indices forming the set (default: all blocks).
        metric: ``"sharpe"`` (mean / std with ddof=1, not annualised; 0.0 for all-zero
            returns, NaN for constant non-zero returns) or ``"mean"``.

    Returns:
        ``(N,)`` float64 metric per combination.
    """
    code = metric_code(metric)
    s, ss, n = check_block_stats(block_sum, block_sumsq, block_count)
    if blocks is None:
        idx = np.arange(s.shape[1], dtype=np.int64)
    else:
        idx = np.unique(np.asarray(blocks, dtype=np.int64).reshape(-1))
        if idx.size == 0 or idx.min() < 0 or idx.max() >= s.shape[1]:
            raise ParameterError(
                f"blocks must be indices in [0, {s.shape[1]})",
                found=np.asarray(blocks).tolist(),
                fix="pass valid block indices",
            )
    out = np.empty(s.shape[0])
    for lo in range(0, s.shape[0], _SLAB):  # slabs: mapped statistics are read once, then released
        out[lo : lo + _SLAB] = metric_on_blocks_nb(s[lo : lo + _SLAB], ss[lo : lo + _SLAB], n, idx, code)
        release(s)
        release(ss)
    return out


def metric_code(metric: str) -> int:
    """Kernel code of a metric name."""
    if metric not in METRICS:
        raise ParameterError("unknown metric", found=repr(metric), fix=f"use one of {sorted(METRICS)}")
    return METRICS[metric]
