"""PBO by CSCV: block partition, block-statistics path, slow pandas twin, sanity, errors."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from scipy import stats

from quantlab.errors import ParameterError
from quantlab.overfit import (
    PBOResult,
    block_bounds,
    block_stats,
    cscv_splits,
    metric_from_block_stats,
    pbo,
    pbo_from_block_stats,
)
from tests.reference.overfit_ref import pbo_ref, set_metric_ref


# ----------------------------------------------------------------------------- blocks
@pytest.mark.parametrize(("n_obs", "n_blocks"), [(10, 4), (32, 16), (5759, 16), (101, 8), (2000, 16), (33, 2)])
def test_block_bounds_is_array_split_partition(n_obs: int, n_blocks: int) -> None:
    edges = block_bounds(n_obs, n_blocks)
    expected = np.array_split(np.arange(n_obs), n_blocks)  # first blocks get the extra bar
    assert edges.dtype == np.int64 and edges[0] == 0 and edges[-1] == n_obs
    for b, rows in enumerate(expected):
        assert edges[b] == rows[0] and edges[b + 1] == rows[-1] + 1
    sizes = np.diff(edges)
    assert sizes.max() - sizes.min() <= 1
    assert np.all(sizes[:-1] >= sizes[1:])


def test_block_bounds_documented_example() -> None:
    assert block_bounds(10, 4).tolist() == [0, 3, 6, 8, 10]


def test_block_stats_match_numpy(rng: np.random.Generator) -> None:
    r = rng.normal(0.0005, 0.01, size=(1003, 7))
    s, ss, n = block_stats(r, 8)
    parts = np.array_split(r, 8)
    assert s.shape == (7, 8) and ss.shape == (7, 8) and n.tolist() == [len(p) for p in parts]
    np.testing.assert_allclose(s, np.array([p.sum(axis=0) for p in parts]).T, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ss, np.array([(p * p).sum(axis=0) for p in parts]).T, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("blocks", [None, [0], [1, 3], [0, 2, 4, 6], [7, 5, 1, 0], list(range(1, 8))])
def test_sharpe_from_block_stats_matches_concatenated_returns(
    rng: np.random.Generator, blocks: list[int] | None
) -> None:
    """Union-of-blocks Sharpe from summed statistics == mean/std(ddof=1) of the concatenated rows."""
    r = rng.normal(0.0004, 0.012, size=(1001, 9)) + np.linspace(-0.002, 0.004, 9)
    stats_ = block_stats(r, 8)
    parts = np.array_split(np.arange(1001), 8)
    rows = np.concatenate([parts[b] for b in sorted(set(blocks))]) if blocks is not None else np.arange(1001)
    x = r[rows]
    direct_sharpe = x.mean(axis=0) / x.std(axis=0, ddof=1)
    np.testing.assert_allclose(metric_from_block_stats(*stats_, blocks=blocks), direct_sharpe, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        metric_from_block_stats(*stats_, blocks=blocks, metric="mean"),
        x.mean(axis=0),
        rtol=1e-12,
        atol=1e-17,
    )
    # and scipy agrees on the standard deviation
    np.testing.assert_allclose(x.mean(axis=0) / stats.tstd(x, axis=0), direct_sharpe, rtol=1e-12)


def test_cscv_splits_are_itertools_combinations() -> None:
    is_blocks, oos_blocks = cscv_splits(8)
    expected = list(itertools.combinations(range(8), 4))
    assert is_blocks.shape == (70, 4) and oos_blocks.shape == (70, 4)
    assert [tuple(row) for row in is_blocks.tolist()] == expected
    for a, b in zip(is_blocks, oos_blocks, strict=True):
        assert sorted(set(a) | set(b)) == list(range(8))
    assert cscv_splits(16)[0].shape == (math.comb(16, 8), 8)


# ----------------------------------------------------------------------------- reference twin
def _assert_matches_reference(res: PBOResult, ref: dict[str, object]) -> None:
    np.testing.assert_array_equal(res.chosen, ref["chosen"])
    np.testing.assert_array_equal(res.oos_rank, ref["oos_rank"])
    np.testing.assert_array_equal(res.logits, ref["logits"])
    assert res.pbo == ref["pbo"]
    assert res.prob_oos_loss == ref["prob_oos_loss"]
    assert res.n_combinations == ref["n_combinations"]
    np.testing.assert_array_equal(res.excluded, ref["excluded"])
    np.testing.assert_allclose(res.is_performance, ref["is_performance"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(res.oos_performance, ref["oos_performance"], rtol=1e-12, atol=1e-15)
    fit = stats.linregress(res.is_performance, res.oos_performance)
    assert res.degradation_slope == pytest.approx(fit.slope, rel=1e-9, abs=1e-12)
    assert res.degradation_intercept == pytest.approx(fit.intercept, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("metric", ["sharpe", "mean"])
def test_pbo_matches_pandas_reference(seed: int, metric: str) -> None:
    """S = 8, N = 20, uneven blocks (T = 403): identical splits, choices, ranks and logits."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0, 0.01, size=(403, 20)) + rng.normal(0.0, 0.0004, size=20)
    res = pbo(r, n_blocks=8, metric=metric)
    assert res.n_splits == 70 and res.n_blocks == 8 and res.metric == metric
    _assert_matches_reference(res, pbo_ref(r, 8, metric))


def test_pbo_matches_reference_with_ties_and_degenerate_columns() -> None:
    """Duplicate columns (ties), a never-trading column, a constant column, partly flat
    and partly constant columns: the documented conventions, checked against the twin."""
    rng = np.random.default_rng(42)
    t = 400  # S = 8 -> blocks of 50 rows
    r = rng.normal(0.0002, 0.01, size=(t, 12))
    r[:, 3] = r[:, 1]  # exact duplicate: IS tie -> lower index, OOS tie -> average rank
    r[:, 5] = 0.0  # never trades: excluded
    r[:, 6] = 0.001  # constant non-zero: undefined Sharpe everywhere, excluded
    r[:200, 7] = 0.0  # flat in blocks 0-3: Sharpe 0 on the split that uses only them
    r[:200, 8] = 0.0005  # constant in blocks 0-3: NaN (worst) there
    r[:, 9] = r[:, 1]  # a third copy
    with pytest.warns(UserWarning, match="2 of 12 configurations have zero return variance"):
        res = pbo(r, n_blocks=8)
    ref = pbo_ref(r, 8)
    _assert_matches_reference(res, ref)
    assert res.excluded.tolist() == [5, 6]
    assert 3 not in res.chosen and 9 not in res.chosen  # a duplicate never beats its lower-index twin
    # the split whose in-sample set is blocks 0-3
    first = 0
    assert metric_from_block_stats(*block_stats(r, 8), blocks=[0, 1, 2, 3])[7] == 0.0
    assert math.isnan(metric_from_block_stats(*block_stats(r, 8), blocks=[0, 1, 2, 3])[8])
    assert res.chosen[first] != 8
    assert set_metric_ref(np.zeros(10), "sharpe") == 0.0


def test_pbo_ranks_when_chosen_ties_out_of_sample() -> None:
    """Two identical best columns: the IS winner shares the top OOS rank (N - 0.5)."""
    rng = np.random.default_rng(7)
    r = rng.normal(0.0, 0.01, size=(800, 6))
    r[:, 2] += 0.004
    r[:, 4] = r[:, 2]
    res = pbo(r, n_blocks=8)
    assert np.all(res.chosen == 2)
    assert np.all(res.oos_rank == 5.5)
    assert np.allclose(res.logits, math.log(5.5 / 7 / (1 - 5.5 / 7)))
    assert res.pbo == 0.0


def test_block_stat_entry_point_equals_matrix_entry_point(rng: np.random.Generator) -> None:
    r = rng.normal(0.0, 0.01, size=(1600, 30))
    a = pbo(r, n_blocks=10)
    b = pbo_from_block_stats(*block_stats(r, 10))
    np.testing.assert_array_equal(a.logits, b.logits)
    np.testing.assert_array_equal(a.chosen, b.chosen)
    assert a.pbo == b.pbo and a.n_splits == b.n_splits == math.comb(10, 5)


def test_pbo_accepts_dataframe(rng: np.random.Generator) -> None:
    import pandas as pd

    df = pd.DataFrame(rng.normal(0.0, 0.01, size=(400, 5)), columns=[f"fast={i}" for i in range(5)])
    res = pbo(df, n_blocks=4)
    assert res.n_splits == 6
    assert set(df.columns[res.chosen]) <= set(df.columns)


def test_is_performance_is_sharpe_of_concatenated_in_sample_returns(
    rng: np.random.Generator,
) -> None:
    r = rng.normal(0.0, 0.01, size=(640, 15))
    res = pbo(r, n_blocks=8)
    is_blocks, oos_blocks = cscv_splits(8)
    parts = np.array_split(np.arange(640), 8)
    for i in (0, 17, 69):
        x_is = r[np.concatenate([parts[b] for b in is_blocks[i]]), res.chosen[i]]
        x_oos = r[np.concatenate([parts[b] for b in oos_blocks[i]]), res.chosen[i]]
        assert res.is_performance[i] == pytest.approx(x_is.mean() / x_is.std(ddof=1), rel=1e-12)
        assert res.oos_performance[i] == pytest.approx(x_oos.mean() / x_oos.std(ddof=1), rel=1e-12)


# ----------------------------------------------------------------------------- sanity
def test_pure_noise_has_high_pbo() -> None:
    """200 i.i.d. N(0, 1%) strategies, T = 2000, S = 16: selection is uninformative."""
    values = []
    for seed in range(4):
        res = pbo(np.random.default_rng(seed).normal(0.0, 0.01, size=(2000, 200)), n_blocks=16)
        assert res.n_splits == 12_870
        assert res.pbo > 0.3
        values.append(res.pbo)
    assert 0.4 < float(np.mean(values)) < 0.8
    assert res.logits.shape == (12_870,)
    assert np.all(np.isfinite(res.logits))


def test_planted_edge_has_low_pbo() -> None:
    r = np.random.default_rng(3).normal(0.0, 0.01, size=(2000, 200))
    r[:, [10, 50, 120]] += 0.0015  # genuine drift, per-bar Sharpe about 0.15
    res = pbo(r, n_blocks=16)
    assert res.pbo < 0.02
    assert set(np.unique(res.chosen)) <= {10, 50, 120}
    assert res.prob_oos_loss == 0.0
    assert float(np.median(res.logits)) > 3.0


def test_relative_rank_property(rng: np.random.Generator) -> None:
    res = pbo(rng.normal(0.0, 0.01, size=(400, 9)), n_blocks=4)
    w = res.relative_rank
    assert np.all((w > 0) & (w < 1))
    np.testing.assert_allclose(np.log(w / (1 - w)), res.logits)


def test_result_fields_are_documented() -> None:
    doc = PBOResult.__doc__ or ""
    for f in dataclasses.fields(PBOResult):
        assert f"{f.name}:" in doc


# ----------------------------------------------------------------------------- errors
_R = np.random.default_rng(0).normal(0.0, 0.01, size=(400, 6))
_S, _SS, _N = block_stats(_R, 8)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: pbo(_R, n_blocks=7), "must be even"),
        (lambda: pbo(_R, n_blocks=2), "must be even and between 4"),
        (lambda: pbo(_R, n_blocks=22), "must be even and between 4"),
        (lambda: pbo(_R, n_blocks=8.5), "n_blocks must be an integer"),
        (lambda: pbo(_R[:, :1], n_blocks=8), "at least 2 strategy columns"),
        (lambda: pbo(_R[:, 0], n_blocks=8), "2-D"),
        (lambda: pbo(_R[:20], n_blocks=16), "too few observations per block"),
        (lambda: pbo(np.where(_R > 0.02, np.nan, _R), n_blocks=8), "NaN"),
        (lambda: pbo(_R.astype(str).astype(object) + "x", n_blocks=8), "numeric"),
        (lambda: pbo(_R, n_blocks=8, metric="sortino"), "unknown metric"),
        (lambda: pbo(np.zeros((400, 3)), n_blocks=8), "at least 2 configurations with non-zero"),
        (lambda: pbo_from_block_stats(_S[:1], _SS[:1], _N), "at least 2 combinations"),
        (lambda: pbo_from_block_stats(_S, _SS[:, :-1], _N), "same shape"),
        (lambda: pbo_from_block_stats(_S, _SS, _N[:-1]), "one entry per block"),
        (lambda: pbo_from_block_stats(_S[:, :7], _SS[:, :7], _N[:7]), "must be even"),
        (lambda: pbo_from_block_stats(_S, _SS, np.full(8, 1)), "too few observations per block"),
        (lambda: pbo_from_block_stats(_S, _SS, _N + 0.5), "too few observations per block"),
        (lambda: pbo_from_block_stats(_S, _SS * 1e-3, _N), "inconsistent"),
        (lambda: pbo_from_block_stats(_S, -_SS, _N), "non-negative"),
        (lambda: pbo_from_block_stats(_S.ravel(), _SS.ravel(), _N), "2-D"),
        (lambda: pbo_from_block_stats(np.where(_S > 0, np.inf, _S), _SS, _N), "NaN or infinite"),
        (lambda: block_bounds(10, 0), "n_blocks must be at least 1"),
        (lambda: block_bounds(16, 16), "too few observations per block"),
        (lambda: metric_from_block_stats(_S, _SS, _N, blocks=[8]), "blocks must be indices"),
    ],
)
def test_bad_input_raises_parameter_error(call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ParameterError, match=match) as info:
        call()
    assert "Fix:" in str(info.value)


def test_split_subsample_is_seeded_and_close_to_full() -> None:
    """max_splits draws a reproducible subset; its PBO estimates the full one within a few s.e."""
    from quantlab.overfit import pbo

    rng = np.random.default_rng(5)
    returns = rng.normal(0.0, 0.01, size=(1600, 60))
    full = pbo(returns, n_blocks=12)
    from quantlab.overfit.blocks import block_stats
    from quantlab.overfit.cscv import pbo_from_block_stats

    s, ss, n = block_stats(returns, 12)
    part = pbo_from_block_stats(s, ss, n, max_splits=300, seed=1)
    again = pbo_from_block_stats(s, ss, n, max_splits=300, seed=1)
    assert part.n_splits == 300 and part.n_splits_total == full.n_splits == 924
    np.testing.assert_array_equal(part.logits, again.logits)
    assert part.standard_error > 0 and full.standard_error == 0
    assert abs(part.pbo - full.pbo) <= 4 * part.standard_error + 1e-12
    assert set(part.logits.tolist()) <= set(full.logits.tolist())
    # Split by split, the subset (where most complements are absent) agrees with the full
    # run (where every split is evaluated together with its complement).
    rows = np.sort(np.random.default_rng(1).choice(924, size=300, replace=False))
    np.testing.assert_array_equal(part.chosen, full.chosen[rows])
    np.testing.assert_array_equal(part.oos_rank, full.oos_rank[rows])
    np.testing.assert_allclose(part.is_performance, full.is_performance[rows], rtol=1e-12)
    np.testing.assert_allclose(part.oos_performance, full.oos_performance[rows], rtol=1e-12)
