"""Overfitting statistics of an optimisation: deflated Sharpe of the winner, PBO of the search.

Both are computed per symbol on the in-sample window the search optimised over, from
what the sweep already produced (per-block return statistics of every combination) and
the winner's replayed returns. Selection in CSCV is by per-bar Sharpe ratio.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from quantlab.errors import QuantlabError
from quantlab.sweep import SweepOutput


def returns_from_values(values: np.ndarray, init_cash: float) -> np.ndarray:
    """Per-bar simple returns of a value path that started from ``init_cash``."""
    prev = np.concatenate(([init_cash], values[:-1]))
    return np.asarray(values / prev - 1.0)


#: Budget for CSCV work per run, in combination-splits (about 7 s on 2 cores). Above it,
#: each symbol's PBO uses a seeded random subset of the C(S, S/2) splits (reported with
#: its standard error) instead of all of them.
CSCV_BUDGET = 5e8
MIN_SPLITS = 1000


def pbo_split_budget(n_symbols: int, n_combinations: int, total_splits: int) -> int | None:
    """Splits per symbol that keep CSCV within :data:`CSCV_BUDGET` (None: all of them)."""
    allowed = int(CSCV_BUDGET / max(n_symbols * n_combinations, 1))
    return None if allowed >= total_splits else max(MIN_SPLITS, allowed)


def overfit_stats(
    output: SweepOutput, best_returns: np.ndarray, n_trials: int, max_splits: int | None = None
) -> dict[str, Any]:
    """Deflated Sharpe ratio and PBO for one symbol; failures become an ``error`` entry."""
    from quantlab import overfit

    result: dict[str, Any] = {"n_trials": int(n_trials)}
    if output.block_sum.shape[1] == 0:
        result["error"] = "window too short for CSCV blocks"
        return result
    trial_srs = overfit.metric_from_block_stats(output.block_sum, output.block_sumsq, output.block_count)
    # Combinations that never held a position have all-zero returns (Sharpe exactly 0):
    # they are not candidates and would shrink the trials' Sharpe variance, so leave them
    # out of the variance while still counting every trial in n_trials.
    traded = output.block_sumsq.sum(axis=1) > 0
    finite = trial_srs[np.isfinite(trial_srs) & traded]
    try:
        dsr = overfit.deflated_sharpe_ratio_from_returns(
            best_returns, trial_sharpes=finite if finite.size >= 2 else None,
            sr_variance=None if finite.size >= 2 else 0.0, n_trials=max(n_trials, 1),
        )
        result["deflated_sharpe"] = {
            "dsr": float(dsr.dsr),
            "sr_per_bar": float(dsr.sr),
            "sr0_per_bar": float(dsr.sr0),
            "sr_variance": float(dsr.sr_variance),
            "n_obs": int(dsr.n_obs),
            "skew": float(dsr.skew),
            "kurtosis": float(dsr.kurtosis),
        }
    except QuantlabError as err:
        result["deflated_sharpe"] = {"error": str(err)}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pbo = overfit.pbo_from_block_stats(
                output.block_sum, output.block_sumsq, output.block_count, max_splits=max_splits
            )
        result["pbo"] = {
            "pbo": float(pbo.pbo),
            "n_splits": int(pbo.n_splits),
            "n_splits_total": int(pbo.n_splits_total),
            "standard_error": float(pbo.standard_error),
            "n_blocks": int(pbo.n_blocks),
            "n_combinations": int(pbo.n_combinations),
            "excluded": int(len(pbo.excluded)),
            "prob_oos_loss": float(pbo.prob_oos_loss),
            "degradation_slope": float(pbo.degradation_slope),
            "degradation_intercept": float(pbo.degradation_intercept),
            "logits": [float(x) for x in pbo.logits],
            "is_performance": [float(x) for x in pbo.is_performance],
            "oos_performance": [float(x) for x in pbo.oos_performance],
            "warnings": [str(w.message) for w in caught],
        }
    except QuantlabError as err:
        result["pbo"] = {"error": str(err)}
    return result
