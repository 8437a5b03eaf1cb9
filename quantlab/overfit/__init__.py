"""Overfitting statistics: Deflated Sharpe ratio, PBO by CSCV, Reality Check / SPA.

Conventions (details in ``docs/overfitting.md``):

* Sharpe ratios are per observation (per bar), never annualised.
* ``kurtosis`` is raw (normal = 3); ``excess_kurtosis=`` is the explicit alternative.
* CSCV blocks partition the window contiguously as :func:`block_bounds` says; a sweep
  hands over ``block_sum``, ``block_sumsq`` (per combination and block) and
  ``block_count`` (per block) to :func:`pbo_from_block_stats`.

Example::

    from quantlab import overfit
    res = overfit.pbo(returns_matrix, n_blocks=16)          # (T, N) -> PBOResult
    srs = overfit.metric_from_block_stats(s, ss, n)          # per-bar Sharpe of every trial
    d = overfit.deflated_sharpe_ratio_from_returns(best_returns, trial_sharpes=srs)
"""

from __future__ import annotations

from quantlab._startup import env as _env  # noqa: F401  (NUMBA_CACHE_DIR before numba loads)
from quantlab.overfit.blocks import block_bounds, block_stats, metric_from_block_stats
from quantlab.overfit.bootstrap import (
    RealityCheckResult,
    reality_check,
    stationary_bootstrap_indices,
)
from quantlab.overfit.cscv import PBOResult, cscv_splits, pbo, pbo_from_block_stats
from quantlab.overfit.sharpe import (
    DeflatedSharpe,
    deflated_sharpe_ratio,
    deflated_sharpe_ratio_from_returns,
    effective_number_of_trials,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    sharpe_moments,
)

__all__ = [
    "DeflatedSharpe",
    "PBOResult",
    "RealityCheckResult",
    "block_bounds",
    "block_stats",
    "cscv_splits",
    "deflated_sharpe_ratio",
    "deflated_sharpe_ratio_from_returns",
    "effective_number_of_trials",
    "expected_max_sharpe",
    "metric_from_block_stats",
    "pbo",
    "pbo_from_block_stats",
    "probabilistic_sharpe_ratio",
    "reality_check",
    "sharpe_moments",
    "stationary_bootstrap_indices",
]
