"""Dask backend on the bundled store: byte-identical outputs to the in-process sweep,
walk-forward folds distributed the same way, failing chunks named, bad clusters refused."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

import quantlab
from quantlab.engine.backends import SweepError, dask_cluster, make_backend, use_backend
from quantlab.engine.backends.chunks import run_chunk
from quantlab.errors import ConfigError

GRID = "fast=5:40:5,slow=20:120:10"
VOLATILE = {"run_id", "created_at", "timings", "evaluations_per_second"}
SAME_FILES = ("results.parquet", "top.csv", "holdout.csv", "overfit.json", "equity.csv", "trades.csv")


def _optimize(reports: Path) -> Path:
    result = quantlab.optimize("sma_cross", "SPY,QQQ", GRID, holdout=0.3, top=5, reports=reports, report=False)
    return Path(result.path)


def _summary(path: Path) -> dict[str, object]:
    return {k: v for k, v in json.loads((path / "summary.json").read_text()).items() if k not in VOLATILE}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _optimize(tmp_path_factory.mktemp("inprocess"))


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_optimize_on_local_workers_is_byte_identical(reference: Path, tmp_path: Path, workers: int) -> None:
    with use_backend(make_backend(f"local:{workers}", chunk_size=7)) as backend:
        path = _optimize(tmp_path)
        report = backend.report()  # type: ignore[union-attr]
    assert report["workers"] == workers and report["chunks_computed"] == report["chunks_total"] > 4
    assert len(report["warmup_seconds"]) == workers  # kernels warmed once per worker
    for name in SAME_FILES:
        assert (path / name).read_bytes() == (reference / name).read_bytes(), name
    assert _summary(path) == _summary(reference)
    assert not (path / "chunks").exists()  # checkpoints dropped once the run is complete
    assert json.loads((path / "backend.json").read_text())["chunks_total"] == report["chunks_total"]


def test_walkforward_folds_on_two_workers_are_identical(tmp_path: Path) -> None:
    def run(reports: Path) -> Path:
        res = quantlab.walkforward("sma_cross", "SPY", GRID, train="4y", test="2y", start="2008-01-01",
                                   end="2016-12-31", reports=reports, report=False)
        return Path(res.path)

    ref = run(tmp_path / "a")
    with use_backend(make_backend("local:2", chunk_size=9)) as backend:
        path = run(tmp_path / "b")
        assert backend.report()["chunks_computed"] > 4  # type: ignore[union-attr]
    for name in ("folds.csv", "drift.csv", "equity.csv", "trades.csv"):
        assert (path / name).read_bytes() == (ref / name).read_bytes(), name
    assert _summary(path) == _summary(ref)


def failing_chunk(spec, prices, values, sim, interval, chunk):  # type: ignore[no-untyped-def]
    """Runs on the workers (imported from this module): chunks from combination 14 on fail."""
    if chunk.lo >= 14:
        raise RuntimeError("simulated worker failure")
    return run_chunk(spec, prices, values, sim, interval, chunk)


def test_a_chunk_failing_every_retry_fails_the_run_naming_symbol_and_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dask_cluster, "_chunk_task", failing_chunk)
    with pytest.raises(SweepError) as info, use_backend(make_backend("local:1", chunk_size=7)):
        _optimize(tmp_path)
    text = info.value.render()
    assert "failed 3 times" in text and "SPY combinations 14..20" in text and "fast" in text
    assert "simulated worker failure" in text
    assert not list(tmp_path.glob("*/summary.json"))  # nothing presented as complete


_REAL_VERSIONS = dask_cluster.worker_versions


def client_is_another_version() -> dict[str, str]:
    """The real versions on workers, a fake quantlab version on the client."""
    import multiprocessing

    if multiprocessing.parent_process() is None:  # the client (pytest); workers are spawned children
        return {**_REAL_VERSIONS(), "quantlab": "0.0.0-client"}
    return _REAL_VERSIONS()


def test_worker_with_another_quantlab_version_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dask_cluster, "worker_versions", client_is_another_version)
    with pytest.raises(ConfigError, match="other versions") as info, use_backend(make_backend("local:1")):
        _optimize(tmp_path)
    assert "0.0.0-client" in info.value.render()


def test_unreachable_scheduler_says_how_to_start_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("QUANTLAB_CLUSTER_TIMEOUT", "1s")
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler") as info, use_backend(
        make_backend(f"tcp://127.0.0.1:{port}")
    ):
        _optimize(tmp_path)
    assert "dask scheduler" in info.value.render() and "dask worker" in info.value.render()
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # no run folder left behind


@pytest.mark.parametrize("bad", ["local:0", "local:two", "spark://x:1"])
def test_malformed_cluster_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="cluster"):
        make_backend(bad)
