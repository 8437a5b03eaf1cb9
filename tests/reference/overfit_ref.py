"""Slow, obvious twins of ``quantlab.overfit`` (pandas / itertools / plain loops).

Written straight from the papers, sharing no code with the package:

* CSCV / PBO: Bailey, Borwein, López de Prado & Zhu, "The Probability of Backtest
  Overfitting" (2017), section 2: concatenate the in-sample blocks' returns, compute
  each configuration's metric, pick the best, rank it out of sample.
* PSR / DSR: Bailey & López de Prado (2012, 2014), with ``statistics.NormalDist``
  instead of scipy.
* Stationary bootstrap, White's RC and Hansen's SPA from given resampling indices.

The degenerate-Sharpe conventions mirror the package's documented ones: all-zero returns
score 0, constant non-zero returns are NaN (worst), columns with zero variance over the
whole window are excluded.
"""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist

import numpy as np
import pandas as pd

EULER = 0.5772156649015329
_N = NormalDist()


# --------------------------------------------------------------------------- Sharpe / DSR
def psr_ref(sr: float, bench: float, n: int, skew: float, kurt: float) -> float:
    z = (sr - bench) * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    return _N.cdf(z)


def expected_max_ref(n_trials: float, variance: float) -> float:
    if n_trials == 1:
        return 0.0
    z = (1 - EULER) * _N.inv_cdf(1 - 1 / n_trials) + EULER * _N.inv_cdf(1 - 1 / (n_trials * math.e))
    return math.sqrt(variance) * max(z, 0.0)


def dsr_ref(sr: float, n: int, skew: float, kurt: float, n_trials: float, variance: float) -> float:
    return psr_ref(sr, expected_max_ref(n_trials, variance), n, skew, kurt)


# --------------------------------------------------------------------------- CSCV / PBO
def set_metric_ref(x: np.ndarray, metric: str) -> float:
    """Metric of one set of returns straight from the values."""
    mean = float(np.mean(x))
    if metric == "mean":
        return mean
    if np.all(x == 0.0):
        return 0.0
    if float(np.sum((x - mean) ** 2)) <= 1e-9 * float(np.sum(x * x)):
        return float("nan")
    return mean / float(np.std(x, ddof=1))


def pbo_ref(returns: np.ndarray, n_blocks: int, metric: str = "sharpe") -> dict[str, object]:
    """CSCV with pandas: returns the per-split arrays and the summary numbers."""
    df = pd.DataFrame(returns)
    keep = list(df.columns)
    if metric == "sharpe":
        keep = [
            c for c in df.columns if not (np.isnan(set_metric_ref(df[c].to_numpy(), "sharpe")) or (df[c] == 0).all())
        ]
    excluded = [c for c in df.columns if c not in keep]
    df = df[keep]
    n = df.shape[1]
    blocks = np.array_split(np.arange(len(df)), n_blocks)  # first blocks get the extra row
    chosen, oos_rank, is_perf, oos_perf, logits = [], [], [], [], []
    for is_set in itertools.combinations(range(n_blocks), n_blocks // 2):
        oos_set = [b for b in range(n_blocks) if b not in is_set]
        j_is = df.iloc[np.concatenate([blocks[b] for b in is_set])]
        j_oos = df.iloc[np.concatenate([blocks[b] for b in oos_set])]
        r_is = pd.Series({c: set_metric_ref(j_is[c].to_numpy(), metric) for c in df.columns})
        r_oos = pd.Series({c: set_metric_ref(j_oos[c].to_numpy(), metric) for c in df.columns})
        pos = int(np.argmax(r_is.fillna(-np.inf).to_numpy()))  # first maximum wins
        ranks = r_oos.fillna(-np.inf).rank(method="average")  # 1 = worst
        rank = float(ranks.iloc[pos])
        w = rank / (n + 1)
        chosen.append(keep[pos])
        oos_rank.append(rank)
        is_perf.append(r_is.iloc[pos])
        oos_perf.append(r_oos.iloc[pos])
        logits.append(np.log(w / (1.0 - w)))
    logits_arr = np.array(logits)
    oos_arr = np.array(oos_perf)
    return {
        "chosen": np.array(chosen),
        "oos_rank": np.array(oos_rank),
        "is_performance": np.array(is_perf),
        "oos_performance": oos_arr,
        "logits": logits_arr,
        "pbo": float(np.mean(logits_arr <= 0)),
        "prob_oos_loss": float(np.mean(oos_arr < 0)),
        "excluded": np.array(excluded, dtype=np.int64),
        "n_combinations": n,
    }


# --------------------------------------------------------------------------- bootstrap
def stationary_indices_ref(new_block: np.ndarray, starts: np.ndarray) -> np.ndarray:
    n_boot, n_obs = starts.shape
    idx = np.zeros((n_boot, n_obs), dtype=np.int64)
    for b in range(n_boot):
        for t in range(n_obs):
            if t == 0 or new_block[b, t]:
                idx[b, t] = starts[b, t]
            else:
                idx[b, t] = (idx[b, t - 1] + 1) % n_obs
    return idx


def rc_spa_ref(d: np.ndarray, idx: np.ndarray) -> dict[str, float]:
    """White RC and Hansen SPA p-values from a (T, K) excess-return matrix and indices."""
    n, k = d.shape
    mu = d.mean(axis=0)
    boot = np.array([d[i].mean(axis=0) for i in idx])  # (B, K)
    omega = np.sqrt(n * ((boot - mu) ** 2).mean(axis=0))
    stat_rc = math.sqrt(n) * mu.max()
    p_rc = np.mean([math.sqrt(n) * (boot[b] - mu).max() >= stat_rc for b in range(len(boot))])
    t_obs = max(0.0, max(math.sqrt(n) * mu[j] / omega[j] for j in range(k) if omega[j] > 0))
    a = omega / math.sqrt(n) * math.sqrt(2 * math.log(math.log(n)))
    out = {"rc": float(p_rc)}
    for name, m in {
        "lower": np.minimum(mu, 0.0),
        "consistent": np.array([mu[j] if mu[j] <= -a[j] else 0.0 for j in range(k)]),
        "upper": np.zeros(k),
    }.items():
        hits = 0
        for b in range(len(boot)):
            z = [math.sqrt(n) * (boot[b, j] - mu[j] + m[j]) / omega[j] for j in range(k) if omega[j] > 0]
            hits += max(0.0, max(z)) >= t_obs
        out[name] = hits / len(boot)
    return out
