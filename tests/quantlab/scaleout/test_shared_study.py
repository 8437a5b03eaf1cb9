"""Shared optuna studies on a real PostgreSQL server: concurrent processes add up, no
trial is recorded twice, a killed process leaves no trial RUNNING, bad URLs are refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from quantlab.engine.backends.optuna_storage import open_storage, sampler_seed
from quantlab.errors import ConfigError

TPE = [
    "optimize",
    "-s",
    "sma_cross",
    "--symbols",
    "SPY",
    "-g",
    "fast=2:200,slow=10:400",
    "--method",
    "tpe",
    "--report",
    "none",
    "--study",
    "shared",
]


def _optimize(url: str, reports: Path, trials: int, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "quantlab", *TPE, "--trials", str(trials), "--storage", url],
        env={**os.environ, "QUANTLAB_REPORTS": str(reports), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="shared", storage=open_storage(url)).get_trials(deepcopy=False)


def test_two_concurrent_processes_share_one_study_and_a_killed_one_leaves_nothing_running(
    postgres: str, tmp_path: Path
) -> None:
    procs = [_optimize(postgres, tmp_path / f"r{i}", 5) for i in range(2)]  # worker ids from host + pid
    outs = [p.communicate(timeout=300)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    seeds = {line.split("sampler seed ")[1] for out in outs for line in out.splitlines() if "sampler seed" in line}
    assert len(seeds) == 2  # distinct per-worker seeds
    done = [t for t in _trials(postgres) if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 10  # the sum of both processes' --trials
    assert len({t.number for t in done}) == 10
    assert len({tuple(sorted(t.params.items())) for t in done}) == 10  # no duplicate trials

    # a process killed while its trial runs (it asked, sent a heartbeat, then died)
    dying = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import optuna, sys, time\n"
                "from quantlab.engine.backends.optuna_storage import open_storage\n"
                f"study = optuna.load_study(study_name='shared', storage=open_storage({postgres!r}))\n"
                "t = study.ask(); study._storage.record_heartbeat(t._trial_id); print(t.number, flush=True); time.sleep(600)\n"
            ),
        ],
        stdout=subprocess.PIPE,
    )
    stuck = int(dying.stdout.readline())  # type: ignore[union-attr]
    os.kill(dying.pid, signal.SIGKILL)
    dying.wait()
    # and a real `quantlab optimize` killed mid-study
    victim = _optimize(postgres, tmp_path / "victim", 10_000)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(_trials(postgres)) < 15:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert any(t.state == optuna.trial.TrialState.RUNNING for t in _trials(postgres))
    time.sleep(2.5)  # past the grace period below
    last = _optimize(postgres, tmp_path / "last", 3, QUANTLAB_OPTUNA_GRACE_SECONDS="2")
    out = last.communicate(timeout=300)[0].decode()
    assert last.returncode == 0, out
    trials = _trials(postgres)
    assert not [t.number for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    assert trials[stuck].state == optuna.trial.TrialState.FAIL


def test_unreachable_or_forbidden_storage_is_a_clear_error(postgres: str) -> None:
    closed = postgres.rsplit(":", 1)[0].rsplit(":", 1)[0] + ":1/quantlab"
    with pytest.raises(ConfigError, match="cannot connect") as info:
        open_storage(closed.replace("postgres@", "postgres:secret@"))
    assert "secret" not in info.value.render()  # passwords never printed
    with pytest.raises(ConfigError, match="may not create") as info:
        open_storage(postgres.replace("postgres@", "reader@"))
    assert "GRANT CREATE" in info.value.render()


def test_sampler_seeds_differ_per_worker_and_repeat_per_worker() -> None:
    assert sampler_seed(7, 1) == sampler_seed(7, 1) != sampler_seed(7, 2)
