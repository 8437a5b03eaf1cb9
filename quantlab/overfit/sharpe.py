"""Probabilistic and Deflated Sharpe ratios.

* PSR: Bailey & López de Prado, "The Sharpe Ratio Efficient Frontier", Journal of Risk
  15(2), 2012 (SSRN 1821643).
* DSR: Bailey & López de Prado, "The Deflated Sharpe Ratio: Correcting for Selection Bias,
  Backtest Overfitting and Non-Normality", Journal of Portfolio Management 40(5), 2014
  (SSRN 2460551).

Conventions used everywhere in this module:

* Sharpe ratios are **per observation** (per bar), never annualised:
  ``mean(r) / std(r, ddof=1)`` of the per-bar returns. Divide an annualised Sharpe by
  ``sqrt(periods_per_year)`` (and an annualised Sharpe *variance* by
  ``periods_per_year``) before passing it. Passing annualised numbers silently inflates
  the statistics towards 1.
* ``kurtosis`` is the **raw** (Pearson, non-excess) kurtosis, 3 for a normal
  distribution; ``excess_kurtosis=`` is accepted instead (normal = 0), never both.
* ``n_obs`` is the number of return observations the Sharpe ratio was estimated from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from quantlab.errors import ParameterError
from quantlab.overfit import _checks

# The standard normal from the standard library (scipy.stats costs ~2 s to import).
_STANDARD_NORMAL = NormalDist()

EULER_GAMMA = 0.5772156649015329


@dataclass(frozen=True)
class DeflatedSharpe:
    """Deflated Sharpe ratio and the inputs it was computed from.

    Attributes:
        dsr: Probability that the true Sharpe ratio exceeds ``sr0`` (a PSR against the
            deflated benchmark). Read >= 0.95 as significant at 5%.
        z: The PSR z-statistic ``(sr - sr0) * sqrt(n_obs - 1) / sqrt(1 - skew*sr +
            (kurtosis - 1)/4 * sr**2)``; ``dsr = Phi(z)``.
        sr: Observed per-observation Sharpe ratio of the selected strategy.
        sr0: Deflated benchmark: expected maximum per-observation Sharpe of ``n_trials``
            skill-less trials whose Sharpe estimates have variance ``sr_variance``.
        n_trials: Number of (independent) trials used for the deflation.
        sr_variance: Variance of the per-observation Sharpe estimates across trials.
        n_obs: Number of return observations.
        skew: Skewness of the selected strategy's returns.
        kurtosis: Raw (non-excess) kurtosis of the selected strategy's returns.
    """

    dsr: float
    z: float
    sr: float
    sr0: float
    n_trials: float
    sr_variance: float
    n_obs: int
    skew: float
    kurtosis: float


def _psr_z(sr: float, sr_benchmark: float, n_obs: int, skew: float, kurtosis: float) -> float:
    var_term = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if var_term <= 0.0:
        raise ParameterError(
            "1 - skew*sr + (kurtosis-1)/4*sr**2 must be positive",
            found=f"{var_term:.4g} (sr={sr}, skew={skew}, kurtosis={kurtosis})",
            fix="check that sr is per observation (not annualised) and kurtosis is raw",
        )
    return (sr - sr_benchmark) * math.sqrt(n_obs - 1.0) / math.sqrt(var_term)


def probabilistic_sharpe_ratio(
    sr: float,
    sr_benchmark: float,
    n_obs: int,
    skew: float = 0.0,
    kurtosis: float | None = None,
    *,
    excess_kurtosis: float | None = None,
) -> float:
    """Probabilistic Sharpe ratio: ``P[true SR > sr_benchmark]`` given the estimate ``sr``.

    ``PSR = Phi((sr - sr_benchmark) * sqrt(n_obs - 1) / sqrt(1 - skew*sr + (kurtosis-1)/4 * sr**2))``
    (Bailey & López de Prado 2012).

    Args:
        sr: Observed Sharpe ratio **per observation** (not annualised).
        sr_benchmark: Benchmark Sharpe ratio, per observation.
        n_obs: Number of return observations behind ``sr`` (>= 2).
        skew: Skewness of the returns (0 for normal).
        kurtosis: **Raw** kurtosis of the returns (3 for normal; the default).
        excess_kurtosis: Alternative to ``kurtosis``: excess kurtosis (0 for normal).

    Returns:
        Probability in [0, 1].

    Raises:
        ParameterError: Non-finite input, ``n_obs < 2``, both kurtosis spellings, or a
            kurtosis below ``skew**2 + 1`` (usually an excess kurtosis passed as raw).
    """
    sr_f = _checks.finite_float("sr", sr)
    bench = _checks.finite_float("sr_benchmark", sr_benchmark)
    n = _checks.count("n_obs", n_obs, 2)
    g3 = _checks.finite_float("skew", skew)
    g4 = _checks.raw_kurtosis(kurtosis, excess_kurtosis, g3)
    return _STANDARD_NORMAL.cdf(_psr_z(sr_f, bench, n, g3, g4))


def expected_max_sharpe(n_trials: float, sr_variance: float) -> float:
    """Expected maximum Sharpe ratio of ``n_trials`` skill-less trials (the DSR benchmark).

    ``E[max SR] ~= sqrt(V) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e)))`` with
    ``g`` the Euler-Mascheroni constant (Bailey & López de Prado 2014, eq. for SR0). The
    true Sharpe of every trial is 0 under the null; ``V`` is the variance of the trials'
    estimated Sharpe ratios (per observation if you want a per-observation benchmark).

    ``N = 1`` gives 0 (nothing was selected). The approximation is asymptotic: for
    ``N`` close to 1 it turns negative and is clipped at 0, which keeps the result
    continuous and non-decreasing in ``N``; it is reasonable from ``N`` of about 5 up.

    Args:
        n_trials: Number of independent trials ``N >= 1`` (may be fractional, e.g. an
            effective number from :func:`effective_number_of_trials`).
        sr_variance: Variance ``V >= 0`` of the trials' Sharpe estimates.

    Returns:
        The expected maximum Sharpe ratio, in the units of ``sqrt(sr_variance)``.

    Raises:
        ParameterError: ``n_trials < 1`` or a negative / non-finite ``sr_variance``.
    """
    n = _checks.finite_float("n_trials", n_trials)
    if n < 1.0:
        raise ParameterError("n_trials must be at least 1", found=n, fix="count every configuration tried (>= 1)")
    v = _checks.finite_float("sr_variance", sr_variance)
    if v < 0.0:
        raise ParameterError(
            "sr_variance must be non-negative",
            found=v,
            fix="pass the variance of the trial Sharpe ratios",
        )
    if n == 1.0:
        return 0.0
    z = (1.0 - EULER_GAMMA) * _STANDARD_NORMAL.inv_cdf(1.0 - 1.0 / n) + EULER_GAMMA * _STANDARD_NORMAL.inv_cdf(
        1.0 - 1.0 / (n * math.e)
    )
    return math.sqrt(v) * max(float(z), 0.0)


def _trials(trial_sharpes: Any, sr_variance: Any, n_trials: Any) -> tuple[float, float]:
    if (trial_sharpes is None) == (sr_variance is None):
        raise ParameterError(
            "pass exactly one of trial_sharpes (the Sharpe ratios of all trials) or sr_variance",
            found=f"trial_sharpes={'given' if trial_sharpes is not None else None}, sr_variance={sr_variance}",
            fix="pass trial_sharpes=<per-observation Sharpe of every trial> or sr_variance= and n_trials=",
        )
    if trial_sharpes is not None:
        srs = np.asarray(trial_sharpes, dtype=np.float64).reshape(-1)
        if srs.size < 2:
            raise ParameterError(
                "trial_sharpes needs at least 2 values to estimate their variance",
                found=srs.size,
                fix="pass the Sharpe ratio of every configuration tried, or sr_variance= and n_trials=",
            )
        bad = ~np.isfinite(srs)
        if bad.any():
            raise ParameterError(
                "trial_sharpes contains NaN or infinite values",
                found=f"{int(bad.sum())} of {srs.size}",
                fix="drop trials with undefined Sharpe (no trades) or set them to 0, and pass n_trials= explicitly",
            )
        variance = float(np.var(srs, ddof=1))
        n = float(srs.size) if n_trials is None else _checks.finite_float("n_trials", n_trials)
    else:
        variance = _checks.finite_float("sr_variance", sr_variance)
        if n_trials is None:
            raise ParameterError(
                "n_trials is required with sr_variance",
                found=None,
                fix="pass n_trials=<number of configurations tried>",
            )
        n = _checks.finite_float("n_trials", n_trials)
    if n < 1.0:
        raise ParameterError("n_trials must be at least 1", found=n, fix="count every configuration tried (>= 1)")
    if variance < 0.0:
        raise ParameterError("sr_variance must be non-negative", found=variance, fix="pass a variance, not a Sharpe")
    return n, variance


def deflated_sharpe_ratio(
    sr: float,
    n_obs: int,
    skew: float = 0.0,
    kurtosis: float | None = None,
    *,
    trial_sharpes: Any = None,
    sr_variance: float | None = None,
    n_trials: float | None = None,
    excess_kurtosis: float | None = None,
) -> DeflatedSharpe:
    """Deflated Sharpe ratio from summary numbers.

    ``DSR = PSR(SR0)`` where ``SR0 = expected_max_sharpe(n_trials, sr_variance)``: the
    probability that the selected strategy's true Sharpe ratio beats the best Sharpe ratio
    that ``n_trials`` skill-less trials would be expected to show.

    Trials: pass either ``trial_sharpes`` (per-observation Sharpe of every configuration
    tried; ``sr_variance`` is their sample variance, ddof=1, and ``n_trials`` defaults to
    their count) or ``sr_variance`` together with ``n_trials``. ``n_trials`` defaults to
    the number of trials actually run, which overstates the number of *independent* trials
    when neighbouring grid points are correlated (a conservative, i.e. lower, DSR); pass an
    estimate from :func:`effective_number_of_trials` to deflate less.

    Args:
        sr: Observed Sharpe ratio of the selected strategy, per observation.
        n_obs: Number of return observations behind ``sr`` (>= 2).
        skew: Skewness of the selected strategy's returns.
        kurtosis: Raw kurtosis (3 for normal; the default).
        trial_sharpes: Per-observation Sharpe ratios of all trials.
        sr_variance: Variance of the trials' per-observation Sharpe ratios.
        n_trials: Number of trials ``>= 1`` (may be fractional).
        excess_kurtosis: Alternative to ``kurtosis`` (normal = 0).

    Returns:
        A :class:`DeflatedSharpe`.

    Raises:
        ParameterError: Missing/conflicting trial information, ``n_trials < 1``,
            ``n_obs < 2``, non-finite values, or an implausible kurtosis.
    """
    sr_f = _checks.finite_float("sr", sr)
    n = _checks.count("n_obs", n_obs, 2)
    g3 = _checks.finite_float("skew", skew)
    g4 = _checks.raw_kurtosis(kurtosis, excess_kurtosis, g3)
    n_tr, variance = _trials(trial_sharpes, sr_variance, n_trials)
    sr0 = expected_max_sharpe(n_tr, variance)
    z = _psr_z(sr_f, sr0, n, g3, g4)
    return DeflatedSharpe(
        dsr=_STANDARD_NORMAL.cdf(z),
        z=z,
        sr=sr_f,
        sr0=sr0,
        n_trials=n_tr,
        sr_variance=variance,
        n_obs=n,
        skew=g3,
        kurtosis=g4,
    )


def sharpe_moments(returns: Any) -> tuple[float, float, float, int]:
    """Per-observation Sharpe ratio, skewness, raw kurtosis and length of a return series.

    Sharpe is ``mean / std(ddof=1)``; skewness and kurtosis are the plain moment ratios
    ``m3 / m2**1.5`` and ``m4 / m2**2`` (``scipy.stats.skew`` / ``kurtosis(fisher=False)``
    with ``bias=True``), which always satisfy ``kurtosis >= skew**2 + 1``.

    Raises:
        ParameterError: Fewer than 3 observations, NaN values or zero variance.
    """
    r = _checks.returns_1d("returns", returns, min_obs=3)
    mean = float(r.mean())
    dev = r - mean
    m2 = float(dev @ dev) / r.size
    if m2 <= 1e-12 * float(r @ r) / r.size or m2 == 0.0:
        raise ParameterError(
            "returns have zero variance, the Sharpe ratio is undefined",
            found=f"constant {mean:g}",
            fix="pass the returns of a strategy that trades",
        )
    sd = math.sqrt(m2 * r.size / (r.size - 1.0))
    m3 = float(np.mean(dev**3))
    m4 = float(np.mean(dev**4))
    return mean / sd, m3 / m2**1.5, m4 / (m2 * m2), int(r.size)


def deflated_sharpe_ratio_from_returns(
    returns: Any,
    *,
    trial_sharpes: Any = None,
    sr_variance: float | None = None,
    n_trials: float | None = None,
) -> DeflatedSharpe:
    """Deflated Sharpe ratio of a selected strategy from its per-bar returns.

    Sharpe ratio, skewness, raw kurtosis and ``n_obs`` come from :func:`sharpe_moments`;
    see :func:`deflated_sharpe_ratio` for the trial arguments. ``trial_sharpes`` must be
    per-observation Sharpe ratios on the same bars (e.g.
    ``metric_from_block_stats(block_sum, block_sumsq, block_count)``).

    Args:
        returns: Per-bar returns of the selected (best) configuration.
        trial_sharpes: Per-observation Sharpe ratios of all trials.
        sr_variance: Variance of the trials' per-observation Sharpe ratios.
        n_trials: Number of trials (defaults to ``len(trial_sharpes)``).

    Returns:
        A :class:`DeflatedSharpe`.
    """
    sr, skew, kurt, n = sharpe_moments(returns)
    return deflated_sharpe_ratio(
        sr, n, skew, kurt, trial_sharpes=trial_sharpes, sr_variance=sr_variance, n_trials=n_trials
    )


def effective_number_of_trials(
    returns: Any, method: str = "mean_correlation", *, min_correlation: float = 0.5
) -> float:
    """Estimate how many *independent* trials a set of correlated trials amounts to.

    Not used by default anywhere: :func:`deflated_sharpe_ratio` deflates by the number
    of trials actually run unless you pass this estimate as ``n_trials``. Both estimates
    are heuristics (the DSR paper leaves the choice open); report which one you used.

    Methods:
        ``"mean_correlation"``: ``N_eff = rho + (1 - rho) * N`` with ``rho`` the mean
            pairwise correlation of the trials' returns, clipped to [0, 1]; N
            uncorrelated trials count N times, perfectly correlated ones once.
        ``"clusters"``: number of clusters from average-linkage hierarchical clustering
            on the distance ``sqrt((1 - corr) / 2)``, cut at the distance of a correlation
            of ``min_correlation``: clusters whose average pairwise distance is below it
            are merged (roughly, trials correlated above ``min_correlation`` count once).

    Args:
        returns: ``(T, K)`` returns of the trials, one column per trial (a representative
            subsample of columns is fine for a large sweep).
        method: ``"mean_correlation"`` or ``"clusters"``.
        min_correlation: Correlation threshold of the ``"clusters"`` method, in (-1, 1).

    Returns:
        Effective number of trials, in ``[1, K]``.

    Raises:
        ParameterError: Unknown method, fewer than 2 columns, NaN or constant columns.
    """
    r = _checks.returns_2d("returns", returns, min_obs=3, min_cols=2)
    std = r.std(axis=0)
    if np.any(std == 0.0):
        raise ParameterError(
            "a trial with constant returns has no correlation with the others",
            found=f"columns {np.flatnonzero(std == 0.0)[:10].tolist()}",
            fix="drop constant (never-trading) columns before estimating the effective number",
        )
    corr = np.corrcoef(r, rowvar=False)
    k = r.shape[1]
    if method == "mean_correlation":
        rho = float((corr.sum() - np.trace(corr)) / (k * (k - 1)))
        rho = min(max(rho, 0.0), 1.0)
        return float(rho + (1.0 - rho) * k)
    if method == "clusters":
        thr = _checks.finite_float("min_correlation", min_correlation)
        if not -1.0 < thr < 1.0:
            raise ParameterError("min_correlation must be in (-1, 1)", found=thr, fix="use e.g. 0.5")
        dist = np.sqrt(np.clip((1.0 - corr) / 2.0, 0.0, None))
        np.fill_diagonal(dist, 0.0)
        from scipy.cluster import hierarchy
        from scipy.spatial.distance import squareform

        link = hierarchy.linkage(squareform(dist, checks=False), method="average")
        labels = hierarchy.fcluster(link, t=math.sqrt((1.0 - thr) / 2.0), criterion="distance")
        return float(len(np.unique(labels)))
    raise ParameterError("unknown method", found=repr(method), fix="use 'mean_correlation' or 'clusters'")
