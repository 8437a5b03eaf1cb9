"""White's Reality Check and Hansen's SPA test with the stationary bootstrap.

* White, "A Reality Check for Data Snooping", Econometrica 68(5), 2000.
* Hansen, "A Test for Superior Predictive Ability", Journal of Business & Economic
  Statistics 23(4), 2005.
* Politis & Romano, "The Stationary Bootstrap", JASA 89(428), 1994.

Both tests ask whether the best of ``K`` candidate strategies beats a benchmark after
accounting for the search over all ``K``. Null hypothesis: no candidate has a higher
expected per-bar return than the benchmark (``E[d_k] <= 0`` for every ``k`` with
``d_k = r_k - benchmark``). Small p-values reject it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from quantlab._typing import Array1d, Array2d
from quantlab.errors import ParameterError
from quantlab.overfit import _checks
from quantlab.overfit._nb import resampled_means_nb, stationary_indices_nb

CHUNK = 64  # resamples drawn per batch; fixed so results depend only on the seed
MIN_OBS = 10
MIN_BOOT = 10

Seed = int | np.random.Generator | None


@dataclass(frozen=True)
class RealityCheckResult:
    """p-values of White's Reality Check and Hansen's SPA test.

    Attributes:
        p_rc: White's Reality Check p-value (non-studentised, least favourable null).
        p_spa_consistent: Hansen's SPA p-value with the consistent null recentring (the
            one to report).
        p_spa_lower: SPA p-value with the liberal (lower-bound) recentring.
        p_spa_upper: SPA p-value with the least favourable recentring (upper bound).
        rc_statistic: ``max_k sqrt(T) * mean(d_k)``.
        spa_statistic: ``max(0, max_k sqrt(T) * mean(d_k) / omega_k)``.
        best: Index of the candidate with the highest mean excess return.
        mean_excess: ``(K,)`` mean per-bar excess return of every candidate.
        n_obs: ``T``.
        n_candidates: ``K``.
        n_boot: Number of bootstrap resamples.
        block_length: Mean block length of the stationary bootstrap.
    """

    p_rc: float
    p_spa_consistent: float
    p_spa_lower: float
    p_spa_upper: float
    rc_statistic: float
    spa_statistic: float
    best: int
    mean_excess: Array1d
    n_obs: int
    n_candidates: int
    n_boot: int
    block_length: float


def _rng(seed: Seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, int | np.integer) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise ParameterError("seed must be an int, a numpy Generator or None", found=repr(seed), fix="pass seed=<int>")


def _check_block_length(block_length: Any, n_obs: int) -> float:
    if block_length is None:
        return float(max(1, round(n_obs ** (1.0 / 3.0))))
    length = _checks.finite_float("block_length", block_length)
    if not 1.0 <= length <= n_obs:
        raise ParameterError(
            f"block_length must be between 1 and the number of observations ({n_obs})",
            found=length,
            fix="use a mean block length of a few to a few dozen bars",
        )
    return length


def _index_chunks(
    n_obs: int, n_boot: int, block_length: float, rng: np.random.Generator
) -> Iterator[npt.NDArray[np.int64]]:
    prob = 1.0 / block_length
    done = 0
    while done < n_boot:
        size = min(CHUNK, n_boot - done)
        new_block = rng.random((size, n_obs)) < prob
        starts = rng.integers(0, n_obs, size=(size, n_obs), dtype=np.int64)
        yield stationary_indices_nb(new_block, starts)
        done += size


def stationary_bootstrap_indices(
    n_obs: int, n_boot: int, block_length: float, seed: Seed = None
) -> npt.NDArray[np.int64]:
    """Row indices of ``n_boot`` stationary-bootstrap resamples of ``n_obs`` observations.

    Blocks start at a uniformly random row and have geometric lengths with mean
    ``block_length``; they wrap around the end of the sample (Politis & Romano 1994).
    :func:`reality_check` with the same ``seed`` uses exactly these indices.

    Args:
        n_obs: Sample length ``T``.
        n_boot: Number of resamples.
        block_length: Mean block length (1 = i.i.d. bootstrap).
        seed: Seed or numpy Generator.

    Returns:
        ``(n_boot, n_obs)`` int64 array.
    """
    n = _checks.count("n_obs", n_obs, 1)
    b = _checks.count("n_boot", n_boot, 1)
    length = _check_block_length(block_length, n)
    return np.concatenate(list(_index_chunks(n, b, length, _rng(seed))))


def reality_check(
    candidates: Any,
    benchmark: Any = 0.0,
    *,
    n_boot: int = 1000,
    block_length: float | None = None,
    seed: Seed = None,
) -> RealityCheckResult:
    """White's Reality Check and Hansen's SPA p-values for ``K`` candidate strategies.

    Performance is the mean per-bar return in excess of the benchmark,
    ``d_k = candidates[:, k] - benchmark``. With ``mu_k = mean(d_k)``, ``T`` bars and
    ``omega_k`` the bootstrap standard deviation of ``sqrt(T) * mean(d_k)``:

    * RC: ``V = max_k sqrt(T) mu_k``; resamples ``V* = max_k sqrt(T) (mu*_k - mu_k)``.
    * SPA: ``T_spa = max(0, max_k sqrt(T) mu_k / omega_k)``; resamples recentre at
      ``mu*_k - mu_k + m_k`` with ``m_k = min(mu_k, 0)`` (lower),
      ``mu_k * 1[mu_k <= -omega_k sqrt(2 log log T / T)]`` (consistent) or 0 (upper).

    p-values are the share of resamples whose statistic is ``>=`` the observed one.
    Candidates with zero bootstrap variance (identical to the benchmark) do not enter
    the SPA statistic.

    Args:
        candidates: ``(T, K)`` per-bar returns of the candidates (e.g. the top few hundred
            configurations of a sweep; all of them were searched, not only the best).
        benchmark: ``(T,)`` benchmark returns or a constant (default 0: "does any
            candidate have a positive expected return?").
        n_boot: Number of bootstrap resamples (>= 10; 1000+ for reporting).
        block_length: Mean block length of the stationary bootstrap; default
            ``round(T ** (1/3))``. Use longer blocks for autocorrelated returns.
        seed: Seed or numpy Generator; pass one for reproducible p-values.

    Returns:
        A :class:`RealityCheckResult`.

    Raises:
        ParameterError: Bad shapes, NaN values, too few observations or resamples.
    """
    r = _checks.returns_2d("candidates", candidates, min_obs=MIN_OBS, min_cols=1)
    n_obs = r.shape[0]
    if np.ndim(benchmark) == 0:
        bench = np.full(n_obs, _checks.finite_float("benchmark", benchmark))
    else:
        bench = _checks.returns_1d("benchmark", benchmark, min_obs=1)
        if bench.shape[0] != n_obs:
            raise ParameterError(
                "benchmark must have one return per row of candidates",
                found=f"{bench.shape[0]} benchmark returns, {n_obs} candidate rows",
                fix="align both on the same bars",
            )
    b = _checks.count("n_boot", n_boot, MIN_BOOT)
    length = _check_block_length(block_length, n_obs)
    d = np.ascontiguousarray(r - bench[:, None])
    boot_means = np.concatenate([resampled_means_nb(d, idx) for idx in _index_chunks(n_obs, b, length, _rng(seed))])
    return _rc_spa(d.mean(axis=0), boot_means, n_obs, length)


def _rc_spa(mu: Array1d, boot_means: Array2d, n_obs: int, block_length: float) -> RealityCheckResult:
    root_n = math.sqrt(n_obs)
    centred = boot_means - mu  # (B, K) resampled mean minus sample mean
    rc_stat = float(root_n * mu.max())
    rc_boot = root_n * centred.max(axis=1)
    omega = np.sqrt(n_obs * np.mean(centred * centred, axis=0))
    scale = np.where(omega > 0.0, root_n / np.where(omega > 0.0, omega, 1.0), 0.0)
    spa_stat = max(0.0, float(np.max(mu * scale)))
    threshold = -omega / root_n * math.sqrt(2.0 * math.log(max(math.log(n_obs), 1.0 + 1e-12)))
    shifts = {
        "lower": np.minimum(mu, 0.0),
        "consistent": np.where(mu <= threshold, mu, 0.0),
        "upper": np.zeros_like(mu),
    }
    p_spa = {}
    for name, m in shifts.items():
        t_boot = np.maximum(0.0, np.max((centred + m) * scale, axis=1))
        p_spa[name] = float(np.mean(t_boot >= spa_stat))
    return RealityCheckResult(
        p_rc=float(np.mean(rc_boot >= rc_stat)),
        p_spa_consistent=p_spa["consistent"],
        p_spa_lower=p_spa["lower"],
        p_spa_upper=p_spa["upper"],
        rc_statistic=rc_stat,
        spa_statistic=spa_stat,
        best=int(np.argmax(mu)),
        mean_excess=mu,
        n_obs=n_obs,
        n_candidates=int(mu.shape[0]),
        n_boot=int(boot_means.shape[0]),
        block_length=block_length,
    )
