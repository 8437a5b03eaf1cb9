"""Issue 9, fault 2 (two runners on one ledger) and fault 5 (parameter bounds at the CLI).

Two ``bridge run --paper`` processes started at the same instant against one ledger: the
ledger is claimed (an OS lock) before connecting, so exactly one runs and the other exits
non-zero naming the holder, without ever connecting to the gateway.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from bridge.ledger.lease import LedgerLease
from tests.fakegw import FakeGateway

from ._harness import daily
from .test_processes import ROOT, RUN, cli_run, env, read, toml, wait_for


def _start(cfg: Path, client_id: int, health_port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bridge",
            "run",
            "--paper",
            "--config",
            str(cfg),
            "--client-id",
            str(client_id),
            "--health-port",
            str(health_port),
        ],
        env=env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def test_two_runners_started_together_only_one_runs(gw: FakeGateway, spy_daily: pd.DataFrame, tmp_path: Path) -> None:
    ledger = tmp_path / "shared.sqlite"
    gw.seed_bars("SPY", daily(spy_daily.iloc[:60]))  # bar 59: target 1 -> a runner buys at start
    cfg = toml(tmp_path, gw, ledger)
    port = _free_port()  # the same health port too: the loser must not even bind it
    procs = {21: _start(cfg, 21, port), 22: _start(cfg, 22, port)}  # the same instant, different client ids (no 326)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and all(p.poll() is None for p in procs.values()):
            time.sleep(0.05)
        losers = {cid: p for cid, p in procs.items() if p.poll() is not None}
        assert len(losers) == 1, "both runners are still running on one ledger"
        [(lose_cid, loser)] = losers.items()
        [(win_cid, winner)] = ((c, p) for c, p in procs.items() if c != lose_cid)
        assert wait_for(lambda: read(ledger, "SELECT state FROM runs")[0]["state"] == "ready")
        assert winner.poll() is None  # the winner keeps running
        err = loser.communicate(timeout=10)[1]
        assert loser.returncode == 2, err
        assert "another bridge is running on this ledger" in err and f"pid {winner.pid}" in err and "since" in err
        assert "bridge stop --shutdown" in err and "Traceback" not in err
        assert gw.received(client_id=lose_cid) == []  # the loser never even connected
        assert wait_for(lambda: gw.orders_received(), timeout=30)  # the winner trades bar 59
        assert {o.client_id for o in gw.orders_received()} == {win_cid}
        assert len(read(ledger, "SELECT * FROM runs")) == 1
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.communicate(timeout=30)
    assert procs[win_cid].returncode == 0


def test_the_lock_dies_with_its_holder(tmp_path: Path) -> None:
    """The kernel releases the lock when the holder exits, even by SIGKILL: no stale lease."""
    ledger = tmp_path / "l.sqlite"
    code = (
        "import sys, time; from pathlib import Path; from bridge.ledger.lease import LedgerLease;"
        f"LedgerLease(Path({str(ledger)!r})).acquire('r1'); print('locked', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], env=env(), cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        mine = LedgerLease(ledger)
        try:
            mine.acquire("r2")
        except Exception as err:  # noqa: BLE001 - the message is what is checked
            assert f"pid {holder.pid}" in str(err) and "r1" in str(err)
        else:
            raise AssertionError("a held lock was taken")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    mine.acquire("r2")  # the holder is dead: free at once
    assert mine.held
    mine.release()


def test_parameters_outside_the_declared_range_are_refused(gw: FakeGateway, tmp_path: Path) -> None:
    """Fault 5 at the bridge CLI: clear message naming the range, non-zero exit, nothing sent."""
    led = tmp_path / "l.sqlite"
    for params, name in [("fast=-2,slow=5", "fast"), ("fast=0,slow=50", "fast"), ("fast=20,slow=100000", "slow")]:
        code, out = cli_run(*RUN, str(led), "--strategy", "sma_cross", "--port", str(gw.port), "--params", params)
        assert code != 0 and name in out and "Traceback" not in out, out
        assert "range" in out or "between" in out or ".." in out, out
    assert gw.handshakes() == [] and gw.orders_received() == []
    assert not led.exists()
