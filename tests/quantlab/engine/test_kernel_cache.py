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


def test_generated_sweep_key_follows_kernels_and_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A generated sweep module's name carries a key; a stale compiled module (one calling
    simulate_nb with an old argument list) could only be served under an unchanged key."""
    from quantlab.engine import codegen
    from quantlab.engine.registry import get_strategy

    spec = get_strategy("sma_cross")
    kernels = tmp_path / "kernels"
    kernels.mkdir()
    original = codegen._KERNELS_DIR
    for source in original.glob("*.py"):
        (kernels / source.name).write_bytes(source.read_bytes())
    monkeypatch.setattr(codegen, "_KERNELS_DIR", kernels)
    key = codegen._source_hash(spec)
    sim = kernels / "sim.py"
    sim.write_text(sim.read_text().replace("def simulate_nb(\n", "def simulate_nb(\n    extra,\n", 1))
    assert codegen._source_hash(spec) != key  # a kernel's signature changed: a new module
    sim.write_bytes((original / "sim.py").read_bytes())
    assert codegen._source_hash(spec) == key
    monkeypatch.setattr(codegen, "_TEMPLATE", codegen._TEMPLATE.replace("False, no_orders", "True, no_orders"))
    assert codegen._source_hash(spec) != key  # the template's call changed (version not bumped)


def test_changed_sources_drop_the_generated_sweeps_compiled_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Generated modules live in ``$NUMBA_CACHE_DIR/quantlab-sweeps``; numba caches their
    compiled code beside them in its own subfolder, which must go with them (each source
    change writes modules under new keys, so it otherwise grows for ever)."""
    from quantlab.engine.codegen import SWEEPS_SUBDIR

    checkout = tmp_path / "checkout"
    (checkout / "quantlab" / "kernels").mkdir(parents=True)
    helper = checkout / "quantlab" / "kernels" / "sim.py"
    helper.write_text("from numba import njit\n")
    monkeypatch.setattr(_env, "_CHECKOUT", checkout)
    monkeypatch.setenv("QUANTLAB_CACHE_DIR", str(tmp_path / "root"))
    cache = tmp_path / "numba"
    generated = cache / SWEEPS_SUBDIR
    compiled = cache / _env.numba_cache_subdir(generated)
    _env.invalidate_stale_kernels(cache)
    for folder in (generated, compiled):
        folder.mkdir(parents=True)
        (folder / "f").write_text("x")
    helper.write_text("from numba import njit\n# edited\n")
    assert _env.invalidate_stale_kernels(cache)
    assert not generated.exists() and not compiled.exists()
