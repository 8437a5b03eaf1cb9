"""Overfitting statistics of an optimisation: deflated Sharpe of the winner, PBO of the search.

Both are computed per symbol on the in-sample window the search optimised over, from
what the sweep already produced (per-block return statistics of every combination) and
the winner's replayed returns. Selection in CSCV is by per-bar Sharpe ratio.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from quantlab.engine.exits import exit_vector
from quantlab.engine.signals import evaluate_arrays
from quantlab.engine.sweep import SweepOutput
from quantlab.errors import ParameterError, QuantlabError
from quantlab.optimizer.filters import LOWER_IS_BETTER
from quantlab.replay import simulate

if TYPE_CHECKING:
    import pandas as pd

    from quantlab.engine.settings import SimConfig
    from quantlab.engine.strategy import StrategySpec
    from quantlab.inputs import MarketInputs
    from quantlab.optimizer.evaluate import Window


def returns_from_values(values: np.ndarray, init_cash: float) -> np.ndarray:
    """Per-bar simple returns of a value path that started from ``init_cash``."""
    prev = np.concatenate(([init_cash], values[:-1]))
    return np.asarray(values / prev - 1.0)


#: Budget for CSCV work per run, in combination-splits (about 7 s on 2 cores). Above it,
#: each symbol's PBO uses a seeded random subset of the C(S, S/2) splits (reported with
#: its standard error) instead of all of them.
CSCV_BUDGET = 5e8
MIN_SPLITS = 1000


#: Bars per CSCV block the sweep needs before it collects block statistics.
BARS_PER_BLOCK = 4


def check_blocks(n_blocks: Any) -> int:
    """``--blocks`` before any work: an even whole number within CSCV's limits.

    CSCV splits the blocks into two equal halves, so ``S`` must be even; ``S >= 4`` gives
    at least 6 splits and ``S <= 20`` keeps ``C(S, S/2)`` (184,756) tractable.

    Raises:
        ParameterError: not a whole number, odd, or outside ``[4, 20]``.
    """
    from quantlab.overfit.cscv import MAX_BLOCKS, MIN_BLOCKS

    if isinstance(n_blocks, bool) or not isinstance(n_blocks, (int, np.integer)):
        raise ParameterError("--blocks must be a whole number", found=repr(n_blocks), fix="e.g. --blocks 16")
    if n_blocks % 2 or not MIN_BLOCKS <= n_blocks <= MAX_BLOCKS:
        raise ParameterError(
            f"--blocks must be even and between {MIN_BLOCKS} and {MAX_BLOCKS} (CSCV halves the blocks)",
            found=int(n_blocks),
            fix="use an even number such as 8, 10, 12 or 16 (the default, as in the paper)",
        )
    return int(n_blocks)


def check_blocks_fit(n_blocks: int, bars: Mapping[str, int]) -> None:
    """Every symbol's in-sample window holds ``BARS_PER_BLOCK`` bars per block.

    Raises:
        ParameterError: naming the shortest window and the largest ``--blocks`` it allows.
    """
    symbol, n = min(bars.items(), key=lambda kv: kv[1])
    if n < BARS_PER_BLOCK * n_blocks:
        most = (n // BARS_PER_BLOCK) // 2 * 2
        raise ParameterError(
            f"--blocks {n_blocks} needs at least {BARS_PER_BLOCK * n_blocks} in-sample bars per symbol "
            f"({BARS_PER_BLOCK} per block)",
            found=f"{symbol}: {n} in-sample bars",
            fix=f"use --blocks {most} or fewer" if most >= 4 else "use a longer date range or a smaller --holdout",
        )


def pbo_split_budget(n_symbols: int, n_combinations: int, total_splits: int) -> int | None:
    """Splits per symbol that keep CSCV within :data:`CSCV_BUDGET` (None: all of them)."""
    allowed = int(CSCV_BUDGET / max(n_symbols * n_combinations, 1))
    return None if allowed >= total_splits else max(MIN_SPLITS, allowed)


def dsr_trials(trial_srs: np.ndarray, traded: np.ndarray) -> np.ndarray:
    """The trials the deflated Sharpe ratio deflates by: per-bar Sharpe ratios of the
    combinations that traded (non-zero returns) with a finite Sharpe ratio.

    The same set gives both ``V`` (their sample variance, ddof 1) and ``N`` (their count),
    as in Bailey & Lopez de Prado (2014), where ``V`` is the variance over the ``N`` trials.
    A combination that never trades is not a strategy tried: every such row has the same
    all-zero returns, it can never be selected (see ``ranking.rank``), and counting it in
    ``N`` while leaving it out of ``V`` (the old rule) deflated by trials that were never
    candidates. docs/overfitting.md states the rule.
    """
    srs = np.asarray(trial_srs, dtype=np.float64)
    kept: np.ndarray = srs[np.isfinite(srs) & np.asarray(traded, dtype=bool)]
    return kept


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
    finite = dsr_trials(trial_srs, overfit.blocks.row_sums(output.block_sumsq) > 0)
    result["n_trials"] = int(finite.size)
    result["n_never_traded"] = max(int(n_trials - finite.size), 0)
    try:
        dsr = overfit.deflated_sharpe_ratio_from_returns(
            best_returns,
            trial_sharpes=finite if finite.size >= 2 else None,
            sr_variance=None if finite.size >= 2 else 0.0,
            n_trials=None if finite.size >= 2 else max(finite.size, 1),
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


def relative_rank(values: np.ndarray, chosen: int, metric: str) -> float:
    """Out-of-sample relative rank of the chosen combination among all candidates, in
    (0, 1): (rank + 1) / (N + 1) with ties averaged, as in CSCV (0.5 = median)."""
    if chosen >= len(values) or not np.isfinite(values[chosen]):
        return float("nan")
    finite = values[np.isfinite(values)]
    v = values[chosen]
    if metric in LOWER_IS_BETTER:
        below, ties = float((finite > v).sum()), float((finite == v).sum())
    else:
        below, ties = float((finite < v).sum()), float((finite == v).sum())
    return (below + (ties + 1) / 2) / (len(finite) + 1)


def fold_dsr(
    spec: StrategySpec,
    inputs: MarketInputs,
    sim: SimConfig,
    symbol: str,
    params: dict[str, float],
    window: Window,
    table: pd.DataFrame,
    n_trials: int,
) -> float:
    """Deflated Sharpe ratio of the fold's in-sample winner given every candidate tried."""
    from quantlab import overfit
    from quantlab.errors import QuantlabError

    prices = inputs.prices[symbol]
    target = evaluate_arrays(spec, prices.slice(window.end), params)
    record = simulate(target, prices, sim, inputs.interval, window.start, window.end, exits=exit_vector(spec, params))
    rows = table[table["symbol"] == symbol]
    srs = dsr_trials(
        rows["sharpe"].to_numpy() / np.sqrt(inputs.interval.bars_per_year), rows["n_orders"].to_numpy() > 0
    )
    try:
        result = overfit.deflated_sharpe_ratio_from_returns(
            returns_from_values(record.value, sim.init_cash),
            trial_sharpes=srs if srs.size >= 2 else None,
            sr_variance=None if srs.size >= 2 else 0.0,
            n_trials=None if srs.size >= 2 else max(srs.size, 1),
        )
    except QuantlabError:
        return float("nan")
    return float(result.dsr)
