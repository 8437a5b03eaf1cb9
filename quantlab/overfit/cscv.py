"""Probability of Backtest Overfitting by combinatorially symmetric cross-validation.

Bailey, Borwein, López de Prado & Zhu, "The Probability of Backtest Overfitting",
Journal of Computational Finance 20(4), 2017 (SSRN 2326253).

The evaluation window is cut into ``S`` contiguous blocks. For each of the
``C(S, S/2)`` ways to pick half of the blocks as in-sample (IS; the other half is
out-of-sample, OOS) the configuration with the best IS metric is chosen, and its OOS
rank ``r`` among all ``N`` configurations gives the relative rank ``w = r / (N + 1)``
and the logit ``lambda = ln(w / (1 - w))``. PBO is the share of splits with
``lambda <= 0``: the IS winner did no better than the OOS median.
"""

from __future__ import annotations

import itertools
import os
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from quantlab._typing import Array1d
from quantlab.errors import ParameterError
from quantlab.overfit import _checks
from quantlab.overfit._nb import DEGENERATE_RTOL, cscv_nb
from quantlab.overfit.blocks import block_stats, check_block_stats, metric_code, release, row_sums

MIN_BLOCKS = 4
MAX_BLOCKS = 20

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class PBOResult:
    """Outcome of CSCV.

    Attributes:
        pbo: Probability of backtest overfitting, the share of splits whose logit is
            ``<= 0`` (an IS winner ranking exactly at the OOS median counts as overfit).
        logits: ``(n_splits,)`` logits ``ln(w / (1 - w))`` of the IS winner's relative
            OOS rank ``w = oos_rank / (N + 1)``.
        oos_rank: ``(n_splits,)`` OOS rank of the IS winner, 1 = worst ... N = best;
            ties share the average rank.
        chosen: ``(n_splits,)`` column index (into the input, before exclusions) of the
            configuration chosen in-sample.
        is_performance: ``(n_splits,)`` IS metric of the chosen configuration.
        oos_performance: ``(n_splits,)`` its OOS metric (pairs with ``is_performance``
            for the performance-degradation plot).
        degradation_slope: Least-squares slope of ``oos_performance`` on
            ``is_performance`` (NaN if the IS values do not vary). Negative or near zero
            means IS excellence does not carry over.
        degradation_intercept: Intercept of that regression.
        prob_oos_loss: Share of splits where the chosen configuration's OOS metric is < 0.
        n_splits: Number of splits evaluated: ``C(S, S/2)``, or ``max_splits`` when a
            deterministic random subset was used.
        n_splits_total: ``C(S, S/2)``.
        n_blocks: ``S``.
        n_combinations: ``N``, configurations ranked (after exclusions).
        metric: ``"sharpe"`` or ``"mean"`` (per observation, not annualised).
        excluded: Column indices left out because their returns have zero variance over
            the whole window (Sharpe only; see :func:`pbo_from_block_stats`).
    """

    pbo: float
    logits: Array1d
    oos_rank: Array1d
    chosen: IntArray
    is_performance: Array1d
    oos_performance: Array1d
    degradation_slope: float
    degradation_intercept: float
    prob_oos_loss: float
    n_splits: int
    n_blocks: int
    n_combinations: int
    metric: str
    excluded: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    n_splits_total: int = 0

    @property
    def standard_error(self) -> float:
        """Monte Carlo standard error of ``pbo`` when splits were subsampled (else 0)."""
        if self.n_splits >= self.n_splits_total:
            return 0.0
        p = self.pbo
        return float(np.sqrt(p * (1.0 - p) / self.n_splits))

    @property
    def relative_rank(self) -> Array1d:
        """``w = oos_rank / (N + 1)`` per split, in (0, 1)."""
        return self.oos_rank / (self.n_combinations + 1.0)


@lru_cache(maxsize=8)
def _splits(n_blocks: int) -> tuple[IntArray, IntArray]:
    blocks = range(n_blocks)
    is_blocks = np.array(list(itertools.combinations(blocks, n_blocks // 2)), dtype=np.int64)
    member = np.zeros((is_blocks.shape[0], n_blocks), dtype=bool)
    np.put_along_axis(member, is_blocks, True, axis=1)
    oos_blocks = np.nonzero(~member)[1].reshape(is_blocks.shape[0], n_blocks // 2).astype(np.int64)
    is_blocks.setflags(write=False)
    oos_blocks.setflags(write=False)
    return is_blocks, oos_blocks


def _partners(rows: IntArray, total: int) -> IntArray:
    """Position in ``rows`` of each split's complement, or -1 when it is not among them.

    In ``itertools.combinations`` order the complement of split ``i`` is split
    ``total - 1 - i``.
    """
    where = np.full(total, -1, dtype=np.int64)
    where[rows] = np.arange(rows.size, dtype=np.int64)
    return np.ascontiguousarray(where[total - 1 - rows])


def cscv_splits(n_blocks: int) -> tuple[IntArray, IntArray]:
    """All CSCV splits of ``n_blocks`` blocks, in ``itertools.combinations`` order.

    Args:
        n_blocks: Even number of blocks ``S`` in ``[MIN_BLOCKS, MAX_BLOCKS]``.

    Returns:
        ``(is_blocks, oos_blocks)``, read-only int64 arrays of shape ``(C(S, S/2), S/2)``;
        row ``i`` holds the sorted in-sample blocks of split ``i`` and their complement.
    """
    return _splits(_check_n_blocks(n_blocks))


def _check_n_blocks(n_blocks: Any) -> int:
    s = _checks.count("n_blocks", n_blocks, 1)
    if s % 2 or s < MIN_BLOCKS or s > MAX_BLOCKS:
        raise ParameterError(
            f"the number of blocks S must be even and between {MIN_BLOCKS} and {MAX_BLOCKS}",
            found=s,
            fix="use an even S such as 8, 10, 12 or 16 (the paper uses 16)",
        )
    return s


def pbo_from_block_stats(
    block_sum: Any,
    block_sumsq: Any,
    block_count: Any,
    metric: str = "sharpe",
    max_splits: int | None = None,
    seed: int = 0,
) -> PBOResult:
    """Probability of backtest overfitting from per-block sufficient statistics.

    The IS (OOS) metric of a configuration is computed on the union of the IS (OOS)
    blocks' returns: ``mean / std(ddof=1)`` for ``"sharpe"`` and ``sum / count`` for
    ``"mean"``, both per observation (not annualised; ranks do not depend on it).

    Degenerate Sharpe ratios:

    * A configuration whose returns have zero variance over the **whole** window (it never
      traded, or is constant) is not a real candidate: it is excluded from the ranking with
      a ``UserWarning`` and listed in ``PBOResult.excluded``.
    * On a single split, a set of all-zero returns (no position in that half) scores a
      Sharpe of 0.0; constant non-zero returns have no Sharpe (NaN) and count as worst:
      never chosen in-sample unless every configuration is NaN (then the first one), and
      ranked below every number out-of-sample.

    Ties: the lowest column index wins an in-sample tie; out-of-sample ties share the
    average rank.

    Args:
        block_sum: ``(N, S)`` sums of per-bar simple returns, ``block_sum[k, b]`` for
            combination ``k`` and block ``b``; blocks partition the window contiguously
            (see :func:`quantlab.overfit.block_bounds`).
        block_sumsq: ``(N, S)`` sums of squared returns.
        block_count: ``(S,)`` bars per block, the same for every combination.
        metric: ``"sharpe"`` (default) or ``"mean"``.
        max_splits: evaluate only this many splits, drawn without replacement by a
            seeded RNG (``None``: all ``C(S, S/2)``). PBO is then a Monte Carlo estimate
            whose standard error is ``PBOResult.standard_error``; the cost of CSCV is
            proportional to splits x combinations, so this bounds it for huge sweeps.
        seed: seed of that draw.

    Returns:
        A :class:`PBOResult`.

    Raises:
        ParameterError: Odd or out-of-range ``S``, fewer than 2 combinations (after
            exclusions), too few observations per block, mismatched shapes, bad values.
    """
    code = metric_code(metric)
    if max_splits is not None and max_splits < 2:
        raise ParameterError("max_splits must be at least 2", found=max_splits)
    s, ss, n = check_block_stats(block_sum, block_sumsq, block_count, min_combinations=2)
    n_blocks = _check_n_blocks(s.shape[1])
    excluded = np.zeros(0, dtype=np.int64)
    keep = np.arange(s.shape[0], dtype=np.int64)
    if metric == "sharpe":
        tot_s = row_sums(s)
        tot_ss = row_sums(ss)
        var_num = tot_ss - tot_s * tot_s / n.sum()
        flat = (tot_ss == 0.0) | (var_num <= DEGENERATE_RTOL * tot_ss)
        if flat.any():
            excluded = np.flatnonzero(flat).astype(np.int64)
            keep = np.flatnonzero(~flat).astype(np.int64)
            shown = ", ".join(str(i) for i in excluded[:10]) + (" ..." if excluded.size > 10 else "")
            warnings.warn(
                f"{excluded.size} of {s.shape[0]} configurations have zero return variance over the "
                f"whole window (never traded or constant) and were left out of the PBO ranking "
                f"(columns {shown}); see PBOResult.excluded",
                UserWarning,
                stacklevel=2,
            )
            if keep.size < 2:
                raise ParameterError(
                    "need at least 2 configurations with non-zero return variance",
                    found=f"{keep.size} left after excluding {excluded.size} flat ones",
                    fix="check that the sweep produced trades",
                )
            s = _take_rows(s, keep, block_sum)
            ss = _take_rows(ss, keep, block_sumsq)
    is_blocks, _ = _splits(n_blocks)
    total = int(is_blocks.shape[0])
    rows = np.arange(total)
    if max_splits is not None and max_splits < total:
        rows = np.sort(np.random.default_rng(seed).choice(total, size=max_splits, replace=False))
        is_blocks = np.ascontiguousarray(is_blocks[rows])
    chosen, is_perf, oos_perf, oos_rank = cscv_nb(s, ss, n, is_blocks, _partners(rows, total), code)
    n_comb = s.shape[0]
    w = oos_rank / (n_comb + 1.0)
    logits = np.log(w / (1.0 - w))
    slope, intercept = _degradation(is_perf, oos_perf)
    return PBOResult(
        pbo=float(np.mean(logits <= 0.0)),
        logits=logits,
        oos_rank=oos_rank,
        chosen=keep[chosen],
        is_performance=is_perf,
        oos_performance=oos_perf,
        degradation_slope=slope,
        degradation_intercept=intercept,
        prob_oos_loss=float(np.mean(oos_perf < 0.0)),
        n_splits=int(is_blocks.shape[0]),
        n_blocks=n_blocks,
        n_combinations=n_comb,
        metric=metric,
        excluded=excluded,
        n_splits_total=total,
    )


def _take_rows(arr: np.ndarray, keep: IntArray, source: Any) -> np.ndarray:
    """``arr[keep]``; for memory-mapped statistics (a streamed 1e7-row sweep) into a flat
    file beside them, written in slabs and mapped read-only, so neither the heap nor the
    resident set ever holds both copies."""
    filename = getattr(source, "filename", None)
    if not isinstance(source, np.memmap) or filename is None:
        return np.ascontiguousarray(arr[keep])
    import tempfile

    with tempfile.NamedTemporaryFile(prefix=".kept-", dir=os.path.dirname(filename)) as fh:
        step = 1 << 16
        for lo in range(0, keep.size, step):
            np.ascontiguousarray(arr[keep[lo : lo + step]]).tofile(fh)
            release(arr)
        fh.flush()
        # the mapping keeps the file alive after it is unlinked on leaving this block
        out = np.memmap(fh.name, dtype=np.float64, mode="r", shape=(keep.size, arr.shape[1]))
    return np.asarray(out)


def pbo(returns: Any, n_blocks: int = 16, metric: str = "sharpe") -> PBOResult:
    """Probability of backtest overfitting of a ``(T, N)`` return matrix by CSCV.

    Computes block statistics over the contiguous partition of
    :func:`quantlab.overfit.block_bounds` and calls :func:`pbo_from_block_stats` (see
    there for conventions). With a DataFrame, ``df.columns[result.chosen]`` names the
    configurations chosen in-sample.

    Args:
        returns: ``(T, N)`` per-bar simple returns, one column per configuration tried
            (ndarray or DataFrame); fill flat bars with 0, not NaN.
        n_blocks: Even number of blocks ``S`` (default 16, as in the paper).
        metric: ``"sharpe"`` or ``"mean"``.

    Returns:
        A :class:`PBOResult`.

    Raises:
        ParameterError: See :func:`pbo_from_block_stats`; also NaN returns.
    """
    arr = _checks.returns_2d("returns", returns, min_obs=1, min_cols=2)
    n_blocks = _check_n_blocks(n_blocks)
    metric_code(metric)
    block_sum, block_sumsq, block_count = block_stats(arr, n_blocks)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = pbo_from_block_stats(block_sum, block_sumsq, block_count, metric=metric)
    for w in caught:  # re-emit at the caller of pbo()
        warnings.warn(w.message, w.category, stacklevel=2)
    return result


def _degradation(x: Array1d, y: Array1d) -> tuple[float, float]:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2:
        return float("nan"), float("nan")
    xs, ys = x[ok], y[ok]
    dx = xs - xs.mean()
    sxx = float(dx @ dx)
    if sxx <= 0.0:
        return float("nan"), float("nan")
    slope = float(dx @ (ys - ys.mean())) / sxx
    return slope, float(ys.mean() - slope * xs.mean())
