"""Real processes: the crash window (SIGKILL after placeOrder, before the ledger records it),
``bridge stop --flatten`` from another process (runner alive, and no runner), and the CLI's
refusals and bad-input messages. The fake gateway runs in this test process; ``bridge``
runs as ``python -m bridge`` subprocesses talking to it over 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from ib_async import IB, LimitOrder, Stock

from bridge.ledger.store import Ledger
from tests.fakegw import FakeGateway

from ._harness import BridgeHarness, daily

ROOT = Path(__file__).resolve().parents[2]


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    out.update(
        PYTHONPATH=str(ROOT), NUMBA_CACHE_DIR=os.environ.get("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba")), **extra
    )
    return out


def bridge(*args: str, timeout: float = 90, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(**extra_env),
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )


def toml(tmp_path: Path, gw: FakeGateway | None, ledger: Path, **extra: str) -> Path:
    """A config for subprocess runs: wall clock against 2021 bars, so freshness and hours are relaxed."""
    text = f"""
[gateway]
port = {gw.port if gw else 1}
client_id = 11
connect_timeout = 2.0
connect_attempts = 1
[strategy]
name = "sma_cross"
symbols = ["SPY"]
params = "fast=20,slow=50"
[costs]
slippage_bps = 0.0
[risk]
market_hours = false
[data]
max_bar_age = 1e10
history_bars = 500
[ledger]
path = "{ledger}"
{extra.get("tail", "")}
"""
    p = tmp_path / "bridge.toml"
    p.write_text(text)
    return p


def read(ledger: Path, sql: str) -> list[dict[str, object]]:
    db = sqlite3.connect(ledger, timeout=10)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(sql).fetchall()]
    finally:
        db.close()


def wait_for(predicate: Callable[[], object], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except sqlite3.OperationalError:
            pass
        time.sleep(0.1)
    return False


def test_crash_between_placing_and_recording_never_duplicates(
    gw: FakeGateway, spy_daily: pd.DataFrame, tmp_path: Path
) -> None:
    ledger = tmp_path / "crash.sqlite"
    gw.seed_bars("SPY", daily(spy_daily.iloc[:60]))  # bar 59: target 1 -> the bridge buys at start
    cfg = toml(tmp_path, gw, ledger)
    crashed = bridge("run", "--paper", "--config", str(cfg), BRIDGE_TEST_CRASH_AFTER_PLACE="1")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    [sent] = gw.orders_received()
    [row] = read(ledger, "SELECT * FROM orders")
    assert (
        row["order_ref"] == sent.order_ref and row["status"] == "intent" and row["sent_at"] is None
    )  # the crash window
    assert gw.orders(sent.order_ref)[0].status == "Filled"  # ...but the gateway had it and filled it

    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "run", "--paper", "--config", str(cfg)],
        env=env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(
            lambda: (
                read(ledger, "SELECT status FROM orders")[0]["status"] == "filled"
                and read(ledger, "SELECT state FROM runs ORDER BY started_at DESC LIMIT 1")[0]["state"] == "ready"
            )
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert [o.order_ref for o in gw.orders_received()] == [sent.order_ref]  # exactly one, ever
    [fill] = read(ledger, "SELECT * FROM fills")
    assert fill["order_ref"] == sent.order_ref and fill["source"] == "reconcile" and fill["commission"] == 1.0
    assert read(ledger, "SELECT halted FROM risk_state")[0]["halted"] == 0  # the position reconciles
    assert '"event": "reconciled"' in err


def test_bridge_stop_flatten_from_another_process_while_running(
    harness: Callable[..., BridgeHarness], gw: FakeGateway
) -> None:
    h = harness(seed=60)
    h.start()
    assert h.until(lambda: h.settled() and h.orders())
    qty = gw.position("SPY")[0]
    assert qty > 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "stop", "--flatten", "--ledger", str(h.ledger.path)],
        env=env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        h.step(0.02)  # the runner keeps running: it polls the control table
    out, err = proc.communicate(timeout=5)
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert result["handled_by"].startswith("runner") and result["kill_switch"] and result["flatten"]
    assert h.until(lambda: gw.position("SPY")[0] == 0.0 and h.settled())
    flat = [o for o in h.orders() if o["purpose"] == "flatten"]
    assert len(flat) == 1 and (flat[0]["side"], flat[0]["quantity"], flat[0]["status"]) == ("SELL", qty, "filled")
    rs = h.ledger.risk_state()
    assert rs.kill_switch and rs.halted and "bridge stop" in rs.reason
    assert [e["kind"] for e in h.ledger.risk_events("manual_stop")] == ["manual_stop"]
    h.advance(61)
    assert h.ledger.decisions()[-1]["verdict"] in ("hold", "reject")  # halted: nothing more goes out
    assert len(gw.orders_received()) == 2


def test_bridge_stop_without_a_runner_connects_itself(harness: Callable[..., BridgeHarness], gw: FakeGateway) -> None:
    h = harness(seed=60)
    h.start()
    # IB's position message can trail the fill: wait for it before closing (close() snapshots it).
    assert h.until(lambda: h.settled() and h.orders() and "SPY" in h.runner.broker.positions())
    h.runner.close()
    other = IB()
    other.connect("127.0.0.1", gw.port, clientId=42, timeout=2)
    [spy] = other.qualifyContracts(Stock("SPY", "SMART", "USD"))
    other.placeOrder(spy, LimitOrder("BUY", 1, 1.0, orderRef="manual-resting"))
    other.sleep(0.1)
    other.disconnect()
    done = bridge("stop", "--flatten", "--ledger", str(h.ledger.path), "--timeout", "2")  # gateway of the recorded run
    assert done.returncode == 0, done.stderr[-2000:]  # the stop was carried out: no runner is not an error
    assert f"no bridge is running on {h.ledger.path}" in done.stderr and "open orders cancelled" in done.stderr
    result = json.loads(done.stdout)
    assert result["handled_by"] == "bridge stop" and result["kill_switch"]
    assert result["runner"]["state"] == "none" and result["ledger"] == str(h.ledger.path)
    assert gw.orders("manual-resting")[0].status == "Cancelled"  # every open order of the account
    assert gw.position("SPY")[0] == 0.0
    assert {m.client_id for m in gw.received(msg_id=58)} == {8}  # reqGlobalCancel from the stop's own client id
    led = Ledger(h.ledger.path)
    assert led.risk_state().kill_switch
    flat = [o for o in led.rows("SELECT * FROM orders") if o["purpose"] == "flatten"]
    assert len(flat) == 1 and flat[0]["status"] == "filled"
    led.close()


def test_resume_needs_an_acknowledgement(harness: Callable[..., BridgeHarness], gw: FakeGateway) -> None:
    h = harness(seed=60)
    h.start()
    # IB's position message can trail the fill: wait for it before closing (close() snapshots it).
    assert h.until(lambda: h.settled() and h.orders() and "SPY" in h.runner.broker.positions())
    h.runner.close()
    h.ledger.latch(pd.Timestamp.now(tz="UTC"), "test latch", "manual_stop")
    refused = bridge("resume", "--ledger", str(h.ledger.path))
    assert refused.returncode == 2 and "not acknowledged" in refused.stdout
    assert h.ledger.risk_state().kill_switch
    ok = bridge("resume", "--yes", "--ledger", str(h.ledger.path))
    assert ok.returncode == 0 and json.loads(ok.stdout)["resumed"]
    rs = h.ledger.risk_state()
    assert not rs.kill_switch and not rs.halted and rs.day is None  # the loss limit re-bases at the next check
    assert [e["kind"] for e in h.ledger.risk_events("resume")] == ["resume"]
    status = bridge("status", "--json", "--ledger", str(h.ledger.path))
    view = json.loads(status.stdout)
    assert status.returncode == 0 and view["runner_alive"] is False and "SPY" in view["positions"]
    text = bridge("status", "--ledger", str(h.ledger.path)).stdout
    assert "kill switch clear" in text and "SPY" in text


# --- bad input: a clear message, a non-zero exit, nothing sent ---------------------------------------
RUN = ["run", "--paper", "--symbols", "SPY", "--ledger"]


def cli_run(*args: str) -> tuple[int, str]:
    """The click command in-process (for errors raised before anything connects)."""
    from click.testing import CliRunner

    from bridge.cli import cli

    res = CliRunner().invoke(cli, list(args), env={k: "" for k in os.environ if k.startswith("BRIDGE_")})
    return res.exit_code, res.output


def test_unknown_strategy_and_bad_params(tmp_path: Path) -> None:
    led = str(tmp_path / "l.sqlite")
    r = bridge(*RUN, led, "--strategy", "sma_crosss")  # the real entry point once
    assert r.returncode != 0 and "unknown strategy 'sma_crosss'" in r.stderr and "did you mean sma_cross" in r.stderr
    assert "Traceback" not in r.stderr
    for params, text in [
        ("fast=abc", "must be a number"),
        ("fast=60,slow=50", "constraint 'fast < slow'"),
        ("fsat=10", "did you mean fast"),
    ]:
        code, out = cli_run(*RUN, led, "--strategy", "sma_cross", "--params", params)
        assert code != 0 and text in out, out
    code, out = cli_run("run", "--strategy", "sma_cross", "--ledger", led)
    assert code == 2 and "no symbols given" in out
    assert not Path(led).exists()  # nothing was even opened


def test_bad_config_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[risk]\nmax_positons = 3\n")
    r = bridge("run", "--config", str(bad), "--strategy", "sma_cross", "--symbols", "SPY")
    assert (
        r.returncode == 2
        and "unknown key 'max_positons' in [risk]" in r.stderr
        and "did you mean max_positions" in r.stderr
    )
    bad.write_text("[risk]\nmax_order_notional = -5\n")
    code, out = cli_run("run", "--config", str(bad), "--strategy", "sma_cross", "--symbols", "SPY")
    assert code == 2 and "risk.max_order_notional must be a positive number" in out
    code, out = cli_run("run", "--config", str(tmp_path / "missing.toml"))
    assert code == 2 and "config file not found" in out


def test_gateway_unreachable_says_how_to_enable_the_api(tmp_path: Path) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    r = bridge(
        *RUN,
        str(tmp_path / "l.sqlite"),
        "--strategy",
        "sma_cross",
        "--port",
        str(port),
        BRIDGE_GATEWAY_CONNECT_ATTEMPTS="2",
        BRIDGE_GATEWAY_BACKOFF_INITIAL="0.05",
    )
    assert r.returncode == 3, r.stderr
    assert f"cannot connect to IB Gateway/TWS at 127.0.0.1:{port}" in r.stderr
    assert "Enable ActiveX and Socket Clients" in r.stderr and "4002 paper" in r.stderr and "Trusted IPs" in r.stderr
    assert '"event": "connect_retry"' in r.stderr


def test_unknown_symbol_at_ib_error_200(gw: FakeGateway, tmp_path: Path) -> None:
    r = bridge(
        "run",
        "--paper",
        "--strategy",
        "sma_cross",
        "--symbols",
        "SPY,ZZZZ",
        "--port",
        str(gw.port),
        "--ledger",
        str(tmp_path / "l.sqlite"),
        BRIDGE_GATEWAY_CONNECT_ATTEMPTS="1",
    )
    assert r.returncode == 2 and "ZZZZ" in r.stderr and "error 200" in r.stderr
    assert gw.orders_received() == []


def test_live_mode_refuses_without_confirmation(
    fake_gateway_factory: Callable[..., FakeGateway], tmp_path: Path
) -> None:
    paper = fake_gateway_factory(accounts="DU1234567")
    live = fake_gateway_factory(accounts="U7654321")
    led = str(tmp_path / "l.sqlite")
    base = ["run", "--strategy", "sma_cross", "--symbols", "SPY", "--ledger", led]
    r = bridge(*base, "--live", "--port", str(live.port))  # no terminal to type into, no --confirm-account
    assert r.returncode == 4 and "live trading needs the account id confirmed" in r.stderr
    code, out = cli_run(*base, "--live", "--confirm-account", "DU1234567", "--port", str(paper.port))
    assert code == 4 and "refusing a paper account id" in out
    r = bridge(
        *base, "--live", "--confirm-account", "U0000001", "--port", str(live.port), BRIDGE_GATEWAY_CONNECT_ATTEMPTS="1"
    )
    assert r.returncode == 4 and "not managed by this gateway" in r.stderr
    r = bridge(*base, "--paper", "--port", str(live.port), BRIDGE_GATEWAY_CONNECT_ATTEMPTS="1")
    assert r.returncode == 4 and "--paper connected to a live account" in r.stderr
    assert paper.orders_received() == [] and live.orders_received() == []
    assert paper.handshakes() == []  # the paper id was refused before any connection


@pytest.mark.parametrize("symbols", ["SPY"])
def test_replay_cli_matches_the_backtest(symbols: str, tmp_path: Path) -> None:
    r = bridge(
        "run",
        "--replay",
        "--strategy",
        "sma_cross",
        "--symbols",
        symbols,
        "--params",
        "fast=20,slow=50",
        "--start",
        "2021-01-01",
        "--end",
        "2022-06-30",
        "--ledger",
        str(tmp_path / "replay.sqlite"),
        "--log-level",
        "WARNING",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["parity"]["equal"] and out["orders"] == out["parity"]["backtest_orders"] >= 4
    report = bridge(
        "report", "--ledger", str(tmp_path / "replay.sqlite"), "--date", "2021-03-17", "--out", str(tmp_path / "rep")
    )
    assert report.returncode == 0, report.stderr
    data = json.loads((tmp_path / "rep" / "bridge-report-2021-03-17.json").read_text())
    assert len(data["orders"]) == 1 and len(data["fills"]) == 1 and data["fills"][0]["commission"] > 0
    assert (tmp_path / "rep" / "bridge-report-2021-03-17.html").read_text().count("<table>") >= 3


def test_a_second_runner_on_the_same_ledger_is_refused(harness: Callable[..., BridgeHarness], gw: FakeGateway) -> None:
    from bridge.errors import LedgerError

    h = harness(seed=60)
    h.start()
    assert h.until(lambda: h.settled() and h.orders())
    h2 = BridgeHarness(gw, h.frame, h.ledger.path, 61, cfg=h.cfg, reseed=False)
    with pytest.raises(LedgerError, match="another bridge is running on this ledger"):
        h2.runner.start()
    assert len(gw.connected_clients()) == 1
    h2.ledger.close()


def test_replay_without_a_strategy_uses_the_demo_default(tmp_path: Path) -> None:
    """`bridge run --replay --symbols SPY` (the issue's example) runs sma_cross with its defaults;
    paper and live still refuse to run without an explicit strategy."""
    from click.testing import CliRunner

    from bridge.cli import cli

    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--replay",
            "--symbols",
            "SPY",
            "--start",
            "2022-01-01",
            "--ledger",
            str(tmp_path / "l.db"),
            "--log-level",
            "WARNING",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "using sma_cross" in result.output and '"equal": true' in result.output
    paper = CliRunner().invoke(cli, ["run", "--paper", "--symbols", "SPY", "--ledger", str(tmp_path / "p.db")])
    assert paper.exit_code != 0 and "no strategy given" in paper.output


def test_replay_without_a_strategy_does_not_call_given_params_defaults(tmp_path: Path) -> None:
    """Regression: with --params given it still said "using sma_cross with its default parameters"."""
    from click.testing import CliRunner

    from bridge.cli import cli

    args = ["run", "--replay", "--symbols", "SPY", "--ledger", str(tmp_path / "l.db")]
    given = CliRunner().invoke(cli, [*args, "--params", "fast=20,slow=50,sl_stop=-0.03"])  # refused: quick
    assert given.exit_code == 2 and "sl_stop" in given.stderr
    assert "using sma_cross with --params fast=20,slow=50,sl_stop=-0.03" in given.stderr, given.stderr
    assert "default parameters" not in given.stderr
