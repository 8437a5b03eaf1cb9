"""White's Reality Check and Hansen's SPA by stationary bootstrap."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from quantlab.errors import ParameterError
from quantlab.overfit import RealityCheckResult, reality_check, stationary_bootstrap_indices
from quantlab.overfit._nb import resampled_means_nb, stationary_indices_nb
from tests.reference.overfit_ref import rc_spa_ref, stationary_indices_ref


def test_stationary_indices_kernel_matches_loop(rng: np.random.Generator) -> None:
    new_block = rng.random((7, 300)) < 0.1
    starts = rng.integers(0, 300, size=(7, 300))
    np.testing.assert_array_equal(stationary_indices_nb(new_block, starts), stationary_indices_ref(new_block, starts))


def test_resampled_means_kernel_matches_numpy(rng: np.random.Generator) -> None:
    d = rng.normal(size=(250, 13))
    idx = rng.integers(0, 250, size=(9, 250))
    np.testing.assert_allclose(resampled_means_nb(d, idx), d[idx].mean(axis=1), rtol=1e-12, atol=1e-15)


def test_stationary_bootstrap_block_structure() -> None:
    idx = stationary_bootstrap_indices(5000, 40, 12.0, seed=1)
    assert idx.shape == (40, 5000) and idx.min() >= 0 and idx.max() < 5000
    continues = idx[:, 1:] == (idx[:, :-1] + 1) % 5000
    mean_block = idx.size / (idx.shape[0] + (~continues).sum())
    assert mean_block == pytest.approx(12.0, rel=0.05)
    np.testing.assert_array_equal(idx, stationary_bootstrap_indices(5000, 40, 12.0, seed=1))
    assert not np.array_equal(idx, stationary_bootstrap_indices(5000, 40, 12.0, seed=2))
    iid = stationary_bootstrap_indices(5000, 5, 1.0, seed=3)
    assert np.mean(iid[:, 1:] == (iid[:, :-1] + 1) % 5000) < 0.01


@pytest.mark.parametrize("seed", [0, 1])
def test_reality_check_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0, 0.01, size=(300, 8)) + rng.normal(0.0, 0.0005, size=8)
    bench = rng.normal(0.0, 0.005, size=300)
    res = reality_check(r, bench, n_boot=200, block_length=5, seed=seed)
    idx = stationary_bootstrap_indices(300, 200, 5, seed=seed)
    ref = rc_spa_ref(r - bench[:, None], idx)
    tol = 1.0 / 200  # one resample: guards against a last-bit difference at a threshold
    assert res.p_rc == pytest.approx(ref["rc"], abs=tol)
    assert res.p_spa_lower == pytest.approx(ref["lower"], abs=tol)
    assert res.p_spa_consistent == pytest.approx(ref["consistent"], abs=tol)
    assert res.p_spa_upper == pytest.approx(ref["upper"], abs=tol)
    np.testing.assert_allclose(res.mean_excess, (r - bench[:, None]).mean(axis=0), rtol=1e-12)
    assert res.best == int(np.argmax(res.mean_excess))
    assert res.n_boot == 200 and res.n_obs == 300 and res.n_candidates == 8


def test_no_skill_is_not_rejected_and_pvalues_are_ordered() -> None:
    rejections = 0
    for seed in range(6):
        r = np.random.default_rng(seed).normal(0.0, 0.01, size=(1500, 100))
        res = reality_check(r, 0.0, n_boot=500, seed=seed)
        assert res.p_spa_lower <= res.p_spa_consistent <= res.p_spa_upper
        rejections += res.p_spa_consistent < 0.05 or res.p_rc < 0.05
    assert rejections <= 1


def test_planted_edge_is_detected() -> None:
    r = np.random.default_rng(4).normal(0.0, 0.01, size=(1500, 100))
    r[:, 5] += 0.0015
    res = reality_check(r, 0.0, n_boot=500, seed=4)
    assert res.best == 5
    assert res.p_rc < 0.01 and res.p_spa_consistent < 0.01 and res.p_spa_upper < 0.01


def test_all_candidates_clearly_worse_gives_pvalue_one() -> None:
    r = np.random.default_rng(9).normal(-0.003, 0.01, size=(1000, 20))
    res = reality_check(r, 0.0, n_boot=300, seed=9)
    assert res.spa_statistic == 0.0
    assert res.p_spa_lower == res.p_spa_consistent == res.p_spa_upper == 1.0
    assert res.p_rc > 0.99


def test_same_seed_same_answer() -> None:
    r = np.random.default_rng(0).normal(0.0, 0.01, size=(500, 10))
    a = reality_check(r, n_boot=100, seed=11)
    b = reality_check(r, n_boot=100, seed=np.random.default_rng(11))
    assert (a.p_rc, a.p_spa_consistent) == (b.p_rc, b.p_spa_consistent)
    assert a.block_length == round(500 ** (1 / 3))


def test_result_fields_are_documented() -> None:
    doc = RealityCheckResult.__doc__ or ""
    for f in dataclasses.fields(RealityCheckResult):
        assert f"{f.name}:" in doc


_C = np.random.default_rng(0).normal(0.0, 0.01, size=(200, 4))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: reality_check(_C, np.zeros(199), seed=0), "one return per row"),
        (lambda: reality_check(_C, n_boot=5, seed=0), "n_boot must be at least 10"),
        (lambda: reality_check(_C, block_length=500, seed=0), "block_length must be between 1"),
        (lambda: reality_check(_C, block_length=0.5, seed=0), "block_length must be between 1"),
        (lambda: reality_check(_C[:5], seed=0), "at least 10 rows"),
        (lambda: reality_check(np.where(_C > 0.02, np.nan, _C), seed=0), "NaN"),
        (lambda: reality_check(_C[:, 0], seed=0), "2-D"),
        (lambda: reality_check(_C, seed="abc"), "seed must be"),
        (lambda: reality_check(_C, benchmark=float("nan"), seed=0), "benchmark must be finite"),
    ],
)
def test_bad_input_raises_parameter_error(call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ParameterError, match=match) as info:
        call()
    assert "Fix:" in str(info.value)
