"""Checkpointed chunks: SIGKILL the client mid-sweep, rerun, and only the missing chunks
are computed; the finished run is identical to an uninterrupted one. Resuming a run whose
configuration or data changed is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quantlab.engine.backends.checkpoint import open_run
from quantlab.errors import ConfigError

ARGS = [
    "optimize",
    "-s",
    "sma_cross",
    "--symbols",
    "SPY,QQQ",
    "-g",
    "fast=5:60:1,slow=20:200:5",
    "--holdout",
    "0.3",
    "--report",
    "none",
]


def _quantlab(reports: Path, *extra: str, chunk_size: int = 8, **kw: object) -> subprocess.Popen[bytes]:
    env = {**os.environ, "QUANTLAB_REPORTS": str(reports), "QUANTLAB_CHUNK_SIZE": str(chunk_size)}
    return subprocess.Popen(
        [sys.executable, "-m", "quantlab", *ARGS, *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kw,
    )  # type: ignore[call-overload]


def test_killed_run_resumes_computing_only_missing_chunks(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    # the client and its local:1 worker in their own process group: SIGKILL takes both down
    proc = _quantlab(reports, "--cluster", "local:1", start_new_session=True)
    deadline = time.monotonic() + 180
    chunks: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None:
        chunks = [p for p in reports.glob("optimize-*/chunks/*.npz") if not p.name.startswith(".")]
        if len(chunks) >= 20:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed: " + proc.stdout.read().decode()[-2000:]  # type: ignore[union-attr]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    (run,) = [p for p in reports.iterdir() if p.is_dir()]
    assert not (run / "summary.json").exists()
    done_before = sum(1 for p in (run / "chunks").glob("*.npz") if not p.name.startswith("."))

    resumed = _quantlab(reports, "--resume", run.name)  # in-process finishes what local:1 started
    out = resumed.communicate(timeout=300)[0].decode()
    assert resumed.returncode == 0, out[-3000:]
    assert f"resuming ({done_before} chunks already done)" in out
    backend = json.loads((run / "backend.json").read_text())
    assert backend["chunks_reused"] == done_before
    assert backend["chunks_computed"] == backend["chunks_total"] - done_before > 0

    fresh = _quantlab(tmp_path / "fresh", chunk_size=0)  # 0: default, today's in-process path
    assert fresh.wait(timeout=300) == 0
    (ref,) = [p for p in (tmp_path / "fresh").iterdir() if p.is_dir()]
    for name in ("results.parquet", "top.csv", "holdout.csv", "overfit.json"):
        assert (run / name).read_bytes() == (ref / name).read_bytes(), name


def test_resume_refuses_changed_config_or_data_and_unknown_or_finished_runs(tmp_path: Path) -> None:
    run = open_run("optimize", "c" * 64, "d" * 64, tmp_path, None)
    assert not run.resumed
    again = open_run("optimize", "c" * 64, "d" * 64, tmp_path, None)  # automatic for the same hashes
    assert again.resumed and again.run_id == run.run_id
    with pytest.raises(ConfigError, match="other data") as info:
        open_run("optimize", "c" * 64, "e" * 64, tmp_path, run.run_id)
    assert "dddddddddddd vs now eeeeeeeeeeee" in info.value.render()
    with pytest.raises(ConfigError, match="other configuration"):
        open_run("optimize", "f" * 64, "d" * 64, tmp_path, run.run_id)
    with pytest.raises(ConfigError, match="no unfinished run"):
        open_run("optimize", "c" * 64, "d" * 64, tmp_path, "optimize-nope")
    (run.path / "summary.json").write_text("{}")
    with pytest.raises(ConfigError, match="complete"):
        open_run("optimize", "c" * 64, "d" * 64, tmp_path, run.run_id)
    fresh = open_run("optimize", "c" * 64, "d" * 64, tmp_path, None)  # a finished run is never reused
    assert not fresh.resumed and fresh.run_id != run.run_id


WF_ARGS = [
    "walkforward",
    "-s",
    "sma_cross",
    "--symbols",
    "SPY,QQQ",
    "-g",
    "fast=5:60:1,slow=20:200:5",
    "--train",
    "4y",
    "--test",
    "2y",
    "--start",
    "2008-01-01",
    "--end",
    "2016-12-31",
    "--report",
    "none",
]
WF_FILES = ("folds.csv", "drift.csv", "equity.csv", "trades.csv")


def _walkforward(reports: Path, *extra: str, chunk_size: int = 64, **kw: object) -> subprocess.Popen[bytes]:
    env = {**os.environ, "QUANTLAB_REPORTS": str(reports), "QUANTLAB_CHUNK_SIZE": str(chunk_size)}
    return subprocess.Popen(
        [sys.executable, "-m", "quantlab", *WF_ARGS, *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kw,
    )  # type: ignore[call-overload]


def _summary(path: Path) -> dict[str, object]:
    volatile = {"run_id", "created_at", "timings"}
    return {k: v for k, v in json.loads((path / "summary.json").read_text()).items() if k not in volatile}


def test_killed_walkforward_resumes_recomputing_only_missing_folds_and_chunks(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    # 3 folds x (in-sample + out-of-sample sweep) x 2 symbols x 30 chunks of 64 rows (1,883 valid
    # pairs) = 360 chunks; killed once the first fold (120 chunks) is done and the second has started
    proc = _walkforward(reports, "--cluster", "local:1", start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if sum(1 for p in reports.glob("walkforward-*/chunks/*.npz") if not p.name.startswith(".")) >= 150:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed: " + proc.stdout.read().decode()[-2000:]  # type: ignore[union-attr]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    (run,) = [p for p in reports.iterdir() if p.is_dir()]
    assert not (run / "summary.json").exists()
    done_before = sum(1 for p in (run / "chunks").glob("*.npz") if not p.name.startswith("."))

    changed = _walkforward(reports, "--resume", run.name, "--train", "3y")  # another configuration: refused
    out = changed.communicate(timeout=300)[0].decode()
    assert changed.returncode == 1, out[-3000:]
    assert "other configuration" in out and "Traceback" not in out
    assert not (run / "summary.json").exists()

    resumed = _walkforward(reports, "--resume", run.name)  # in-process finishes what local:1 started
    out = resumed.communicate(timeout=300)[0].decode()
    assert resumed.returncode == 0, out[-3000:]
    assert f"resuming ({done_before} chunks already done)" in out
    backend = json.loads((run / "backend.json").read_text())
    assert backend["chunks_total"] == 360 and backend["chunks_reused"] == done_before
    assert backend["chunks_computed"] == 360 - done_before > 0
    assert not (run / "chunks").exists()

    fresh = _walkforward(tmp_path / "fresh", chunk_size=0)  # 0: default, today's in-process path
    assert fresh.wait(timeout=300) == 0
    (ref,) = [p for p in (tmp_path / "fresh").iterdir() if p.is_dir()]
    for name in WF_FILES:
        assert (run / name).read_bytes() == (ref / name).read_bytes(), name
    assert _summary(run) == _summary(ref)
