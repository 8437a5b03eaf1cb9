"""Dask backend on the bundled store: byte-identical outputs to the in-process sweep,
walk-forward folds distributed the same way, failing chunks named, bad clusters refused."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
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


WF_FILES = ("folds.csv", "drift.csv", "equity.csv", "trades.csv")


def _walkforward(reports: Path) -> Path:
    res = quantlab.walkforward(
        "sma_cross",
        "SPY,QQQ",
        GRID,
        train="4y",
        test="2y",
        start="2008-01-01",
        end="2016-12-31",
        reports=reports,
        report=False,
    )
    return Path(res.path)


@pytest.fixture(scope="module")
def wf_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _walkforward(tmp_path_factory.mktemp("wf-inprocess"))


@pytest.mark.parametrize("workers", [1, 2])
def test_walkforward_folds_on_local_workers_are_byte_identical(
    wf_reference: Path, tmp_path: Path, workers: int
) -> None:
    with use_backend(make_backend(f"local:{workers}", chunk_size=9)) as backend:
        path = _walkforward(tmp_path)
        report = backend.report()  # type: ignore[union-attr]
    # every fold: an in-sample sweep and an out-of-sample sweep per symbol, in chunks of 9 rows
    assert report["workers"] == workers and report["chunks_computed"] == report["chunks_total"] > 4 * 2 * 2
    for name in WF_FILES:
        assert (path / name).read_bytes() == (wf_reference / name).read_bytes(), name
    assert _summary(path) == _summary(wf_reference)
    assert not (path / "chunks").exists() and not (path / "checkpoint.json").exists()
    assert json.loads((path / "backend.json").read_text())["chunks_total"] == report["chunks_total"]


BIG_GRID = "fast=5:60:1,slow=20:200:5"  # 1,883 pairs: long enough to kill a worker mid-sweep


def test_a_lost_worker_chunks_are_rerun_and_results_are_identical(tmp_path: Path) -> None:
    def run(reports: Path) -> Path:
        res = quantlab.optimize("sma_cross", "SPY,QQQ", BIG_GRID, holdout=0.3, top=5, reports=reports, report=False)
        return Path(res.path)

    ref = run(tmp_path / "ref")
    killed: list[int] = []
    with use_backend(make_backend("local:2", chunk_size=8)) as backend:
        client = backend.client()  # type: ignore[union-attr]
        before = client.run(os.getpid)

        def kill_one_worker_mid_sweep() -> None:
            # 3 s in: past a cycle of Dask's Active Memory Manager (2 s), which used to drop the
            # broadcast copies of the bars, so the killed worker took the only one with it
            began = time.monotonic()
            while backend.chunks_computed < 10 or time.monotonic() - began < 3:  # type: ignore[union-attr]
                if time.monotonic() - began > 120:
                    break
                time.sleep(0.005)
            addr, pid = sorted(before.items())[0]
            os.kill(pid, signal.SIGKILL)  # the nanny starts a new worker process; the scheduler reruns its chunks
            killed.extend([pid, backend.chunks_computed])  # type: ignore[union-attr]

        killer = threading.Thread(target=kill_one_worker_mid_sweep)
        killer.start()
        path = run(tmp_path / "b")
        killer.join()
        report = backend.report()  # type: ignore[union-attr]
        after = client.run(os.getpid)
    assert killed and killed[0] not in after.values()  # the worker really died
    assert report["chunks_computed"] == report["chunks_total"] > killed[1]  # ... mid-run
    for name in ("results.parquet", "top.csv", "holdout.csv", "overfit.json"):
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


CLIENT_ONLY_STRATEGY = """
from numba import njit
import numpy as np
from quantlab.engine.strategy import Param, StrategySpec

@njit(cache=True)
def client_only_nb(close, window):
    out = np.full(close.shape[0], np.nan)
    for i in range(int(window), close.shape[0]):
        out[i] = 1.0 if close[i] > close[i - int(window)] else 0.0
    return out

SPEC = StrategySpec(name="client_only", kernel=client_only_nb, inputs=("close",),
                    params=(Param("window", "int", 20, 2, 200),), lookback="window", doc="test")
"""


def test_worker_without_the_strategy_kernels_is_refused(tmp_path: Path) -> None:
    """A strategy file that exists only on the client: workers cannot load its kernels."""
    strategy = tmp_path / "elsewhere" / "client_only.py"
    strategy.parent.mkdir()
    strategy.write_text(CLIENT_ONLY_STRATEGY)
    with pytest.raises(ConfigError, match="cannot load the kernels") as info, use_backend(make_backend("local:1")):
        quantlab.optimize(str(strategy), "SPY", "window=5:40:5", reports=tmp_path / "reports", report=False)
    text = info.value.render()
    assert "client_only" in text and "importable" in text
    assert not list((tmp_path / "reports").glob("*/summary.json"))  # nothing presented as complete


def test_unreachable_scheduler_says_how_to_start_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("QUANTLAB_CLUSTER_TIMEOUT", "1s")
    with (
        pytest.raises(ConfigError, match="cannot reach the Dask scheduler") as info,
        use_backend(make_backend(f"tcp://127.0.0.1:{port}")),
    ):
        _optimize(tmp_path)
    assert "dask scheduler" in info.value.render() and "dask worker" in info.value.render()
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # no run folder left behind


def test_unreachable_scheduler_exits_1_from_the_command_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "QUANTLAB_REPORTS": str(tmp_path / "reports"), "QUANTLAB_CLUSTER_TIMEOUT": "1s"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "quantlab",
            "walkforward",
            "-s",
            "sma_cross",
            "--symbols",
            "SPY",
            "-g",
            GRID,
            "--cluster",
            f"tcp://127.0.0.1:{port}",
            "--report",
            "none",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-2000:]
    assert "cannot reach the Dask scheduler" in out and "dask scheduler" in out and "Traceback" not in out
    assert not list((tmp_path / "reports").glob("*/summary.json"))


def test_a_remote_scheduler_with_the_memory_manager_on_is_flagged(capsys: pytest.CaptureFixture[str]) -> None:
    """A scheduler started without AMM off keeps one copy of the bars: a lost worker fails the run."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://", dashboard_address=None
    ) as cluster:
        backend = make_backend(cluster.scheduler_address)
        try:
            backend.client()  # type: ignore[union-attr]
        finally:
            backend.close()  # type: ignore[union-attr]
    err = capsys.readouterr().err
    assert "Active Memory Manager" in err and "ACTIVE_MEMORY_MANAGER__START=False" in err


def test_local_cluster_runs_without_the_memory_manager(capsys: pytest.CaptureFixture[str]) -> None:
    backend = make_backend("local:1")
    try:
        assert backend.client().amm.running() is False  # type: ignore[union-attr]
    finally:
        backend.close()  # type: ignore[union-attr]
    assert "Active Memory Manager" not in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["local:0", "local:two", "spark://x:1"])
def test_malformed_cluster_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="cluster"):
        make_backend(bad)
