"""``bridge status`` and ``bridge stop`` read the ledger's lock (bridge/ledger/lease.py).

status says whether a runner holds it (pid, host, run, heartbeat age), whether the lock
file names a holder that died without releasing it (stale: SIGKILL, OOM), or whether
nobody does. stop with no runner says so, naming the ledger and its lock file, before
acting through the gateway itself.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from bridge.cli import cli
from bridge.ledger import lease
from bridge.ledger.lease import LedgerLease, lock_path, probe
from bridge.ledger.store import Ledger


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={k: "" for k in os.environ if k.startswith("BRIDGE_")})


def new_ledger(tmp_path: Path) -> Path:
    Ledger(tmp_path / "l.sqlite").close()
    return tmp_path / "l.sqlite"


def test_probe_none_stale_and_alive(tmp_path: Path) -> None:
    ledger = new_ledger(tmp_path)
    assert probe(ledger)["state"] == "none"  # no lock file at all
    lease = LedgerLease(ledger)
    lease.acquire("r1")
    held = probe(ledger)
    assert held["state"] == "alive" and held["pid"] == os.getpid() and held["run_id"] == "r1"
    assert held["host"] == socket.gethostname() and held["lock"] == str(lock_path(ledger))
    lease.release()
    assert probe(ledger)["state"] == "none"  # a clean exit empties the file
    # a holder killed with SIGKILL leaves its details behind; the kernel released the lock
    lock_path(ledger).write_text(json.dumps({"pid": 999999, "host": "h", "run_id": "r0", "since": "2024-01-01"}))
    stale = probe(ledger)
    assert stale["state"] == "stale" and stale["pid"] == 999999 and stale["run_id"] == "r0"
    lease.acquire("r2")  # a stale file never blocks the next runner
    assert probe(ledger)["state"] == "alive"
    lease.release()


def test_status_names_the_runner_holding_the_lock_and_its_heartbeat_age(tmp_path: Path) -> None:
    ledger = new_ledger(tmp_path)
    led = Ledger(ledger)
    now = pd.Timestamp.now(tz="UTC")
    led.start_run("r1", now, "paper", "sma_cross", ["SPY"], "fast=20,slow=50", "DU1", {})
    led.heartbeat("r1", now - pd.Timedelta(seconds=3), "ready", {})
    lease = LedgerLease(ledger)
    lease.acquire("r1")
    try:
        out = invoke("status", "--json", "--ledger", str(ledger))
        assert out.exit_code == 0, out.output
        runner = json.loads(out.stdout)["runner"]
        assert runner["state"] == "alive" and runner["pid"] == os.getpid() and runner["run_id"] == "r1"
        assert 2.0 <= runner["heartbeat_age"] < 60.0
        text = invoke("status", "--ledger", str(ledger)).stdout
        assert f"runner: alive, pid {os.getpid()} on {socket.gethostname()} (run r1" in text
        assert "last heartbeat" in text and "s ago" in text
    finally:
        lease.release()
        led.close()


def test_status_with_no_runner_and_with_a_stale_lock(tmp_path: Path) -> None:
    ledger = new_ledger(tmp_path)
    out = invoke("status", "--ledger", str(ledger))
    assert out.exit_code == 0 and f"runner: none (no process holds {lock_path(ledger)})" in out.stdout
    lock_path(ledger).write_text(json.dumps({"pid": 999999, "host": "h", "run_id": "r0", "since": "2024-01-01"}))
    out = invoke("status", "--ledger", str(ledger))
    assert "runner: stale: pid 999999 on h (run r0, since 2024-01-01) did not release" in out.stdout
    assert json.loads(invoke("status", "--json", "--ledger", str(ledger)).stdout)["runner"]["state"] == "stale"


def test_stop_with_no_runner_says_so_and_names_the_ledger(tmp_path: Path) -> None:
    ledger = new_ledger(tmp_path)
    out = invoke("stop", "--ledger", str(ledger), "--port", "1", "--timeout", "1")
    assert out.exit_code == 3  # the gateway is unreachable: the open orders were NOT cancelled
    assert f"no bridge is running on {ledger}" in out.stderr and str(lock_path(ledger)) in out.stderr
    assert "kill switch latched" in out.stderr
    result = json.loads(out.stdout)
    assert result["runner"]["state"] == "none" and result["ledger"] == str(ledger)
    assert Ledger(ledger, create=False).risk_state().kill_switch  # latched: a later run will not trade


def test_an_unreadable_lock_file_is_unknown_not_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = new_ledger(tmp_path)
    held = LedgerLease(ledger)
    held.acquire("r1")

    def refuse(*args: object, **kwargs: object) -> int:  # another user's 0600 file (root would bypass it)
        raise PermissionError(13, "Permission denied")

    try:
        monkeypatch.setattr(lease.os, "open", refuse)
        state = probe(ledger)
    finally:
        monkeypatch.undo()
        held.release()
    assert state["state"] == "unknown" and state["error"] == "PermissionError: Permission denied"
