"""The cold-cache warm-up child: what it compiles is exactly what runs need, and it is advisory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from quantlab._startup import warmup as _warmup
from tests.conftest import REPO_ROOT as REPO

# Runs the three commands that call vectorbt and lists every vectorbt function numba had
# to compile (a cache hit raises no "numba:compile" event).
_RUNS = textwrap.dedent(
    """
    import json, re, sys
    import numba.core.event as ev
    compiled = []

    class Listener(ev.Listener):
        def on_start(self, event):
            func = event.data["dispatcher"].py_func
            args = re.sub(r" at 0x[0-9a-f]+", "", str(event.data["args"]))
            compiled.append(f"{func.__module__}.{func.__qualname__}{args}")

        def on_end(self, event):
            pass

    ev.register("numba:compile", Listener())
    import quantlab
    reports = sys.argv[1]
    quantlab.optimize("sma_cross", "SPY", "fast=10:20:5,slow=30:50:10", top=3, holdout=0.3, reports=reports, report=False)
    quantlab.walkforward("sma_cross", "SPY", "fast=10:20:5,slow=30:50:10", train="3y", test="1y", reports=reports, report=False)
    quantlab.backtest("sma_cross", "SPY,QQQ", "fast=10,slow=30", reports=reports, report=False)
    quantlab.backtest("sma_cross", "SPY,QQQ", "fast=10,slow=30", shared_cash=True, reports=reports, report=False)
    print(json.dumps(sorted({c for c in compiled if c.startswith("vectorbt")})))
    """
)


@pytest.mark.slow
def test_the_warmup_compiles_every_vectorbt_signature_a_run_uses(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": str(tmp_path / "numba"),  # empty: nothing compiled yet
        "QUANTLAB_CACHE_DIR": str(tmp_path / "ql"),
        "QUANTLAB_NO_WARMUP": "1",  # the runs below must not start their own child
    }
    child = subprocess.run(
        [sys.executable, "-m", "quantlab._startup.warmup"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == 0, child.stderr
    stamps = sorted(p.name.split("-")[3] for p in (tmp_path / "numba").glob("quantlab-vectorbt-warm-*"))
    assert stamps == sorted(_warmup.PATHS)
    after_warmup, warm = (_vectorbt_compiles(tmp_path, env) for _ in range(2))
    # The second run finds everything cacheable in the cache; what it still compiles numba
    # cannot cache at all (vectorbt's grouped reductions take a function argument), and
    # compiles in every process. The warm-up left nothing else for the first run.
    assert after_warmup == warm
    assert all("grouped" in name for name in warm), warm


def _vectorbt_compiles(tmp_path: Path, env: dict[str, str]) -> list[str]:
    runs = subprocess.run(
        [sys.executable, "-c", _RUNS, str(tmp_path / "reports")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert runs.returncode == 0, runs.stderr[-3000:]
    return list(json.loads(runs.stdout.strip().splitlines()[-1]))


def test_no_child_when_every_path_is_stamped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for path in _warmup.PATHS:
        (tmp_path / path).write_text("done")
    monkeypatch.setattr(_warmup, "_stamp_path", lambda path: tmp_path / path)
    monkeypatch.delenv("QUANTLAB_NO_WARMUP", raising=False)
    assert not _warmup.VectorbtWarmup(*_warmup.PATHS).started


def test_no_child_when_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_warmup, "_stamp_path", lambda path: tmp_path / path)
    monkeypatch.setenv("QUANTLAB_NO_WARMUP", "1")
    assert not _warmup.VectorbtWarmup("single").started


def test_a_failing_child_is_only_advisory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_warmup, "_stamp_path", lambda path: tmp_path / path)
    monkeypatch.delenv("QUANTLAB_NO_WARMUP", raising=False)
    monkeypatch.setattr(sys, "executable", "/bin/false")  # the child exits with status 1 at once
    warmup = _warmup.VectorbtWarmup("columns")
    assert warmup.started
    monkeypatch.setattr(_warmup, "_compile", lambda path: (_ for _ in ()).throw(RuntimeError("boom")))
    warmup.wait("single")  # neither the child's failure nor one here escapes
    assert not warmup.started
    assert not (tmp_path / "columns").exists()


def test_an_unknown_path_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown warm-up path"):
        _warmup.exercise("everything")
