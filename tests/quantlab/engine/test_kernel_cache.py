"""Cached kernels are dropped when any numba source of quantlab changes (numba itself only
checks the defining file, so a changed helper would otherwise run stale)."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantlab._startup import env as _env


def test_cache_subfolder_matches_numbas_own_naming() -> None:
    from numba.core.caching import _CacheLocator

    for source in (
        _env._CHECKOUT / "quantlab" / "kernels" / "sim.py",
        _env._CHECKOUT / "research" / "sma_cross" / "kernel.py",
    ):
        assert _env.numba_cache_subdir(source.parent) == _CacheLocator.get_suitable_cache_subpath(str(source))


def test_changed_helper_drops_only_quantlab_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "quantlab" / "kernels").mkdir(parents=True)
    (checkout / "research" / "mine").mkdir(parents=True)
    helper = checkout / "quantlab" / "kernels" / "rolling.py"
    helper.write_text("from numba import njit\n")
    (checkout / "research" / "mine" / "kernel.py").write_text("from numba import njit\n")
    (checkout / "quantlab" / "cli.py").write_text("import click\n")
    monkeypatch.setattr(_env, "_CHECKOUT", checkout)
    monkeypatch.setenv("QUANTLAB_CACHE_DIR", str(tmp_path / "root"))
    cache = tmp_path / "numba"
    ours = [
        cache / _env.numba_cache_subdir(checkout / "quantlab" / "kernels"),
        cache / _env.numba_cache_subdir(checkout / "research" / "mine"),
    ]
    foreign = cache / "portfolio_0123456789abcdef"
    for folder in (*ours, foreign):
        folder.mkdir(parents=True)
        (folder / "f.nbi").write_text("x")

    assert _env.invalidate_stale_kernels(cache)  # first sight: no stamp yet
    assert not any(f.exists() for f in ours) and foreign.exists()
    for folder in ours:
        folder.mkdir()
    assert not _env.invalidate_stale_kernels(cache)  # unchanged sources: cache kept
    assert all(f.exists() for f in ours)
    (checkout / "quantlab" / "cli.py").write_text("import click  # edited\n")
    assert not _env.invalidate_stale_kernels(cache)  # non-numba files do not matter
    helper.write_text("from numba import njit\n# edited helper\n")
    assert _env.invalidate_stale_kernels(cache)  # a numba helper changed: our entries go
    assert not any(f.exists() for f in ours) and foreign.exists()
