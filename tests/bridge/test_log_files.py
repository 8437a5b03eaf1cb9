"""The bridge's log file is private like the ledger (0600, also after a rotation), and ib_async's
own connection lines ("API connection failed", "Make sure API port...") stay off the console:
the bridge says what failed and how to fix it in its own words (they still reach the log file)."""

from __future__ import annotations

import io
import json
import logging
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.ledger.store import Ledger
from bridge.ops import logs

from .test_processes import RUN, bridge


@pytest.fixture
def restore_loggers() -> Iterator[None]:
    saved = {
        n: (lg.handlers[:], lg.level, lg.propagate)
        for n in ("bridge", "ib_async", "ib_insync")
        for lg in [logging.getLogger(n)]
    }
    try:
        yield
    finally:
        for name, (handlers, level, propagate) in saved.items():
            lg = logging.getLogger(name)
            for h in lg.handlers:
                if h not in handlers:
                    h.close()
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_log_file_is_private_also_after_a_rotation(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "bridge.log"
    handler = logs.rotating_file(log_file, retention_days=5)
    try:
        handler.emit(logging.LogRecord("bridge", logging.INFO, __file__, 1, "today", None, None))
        assert mode(log_file) == 0o600
        handler.doRollover()
        handler.emit(logging.LogRecord("bridge", logging.INFO, __file__, 1, "tomorrow", None, None))
    finally:
        handler.close()
    assert mode(log_file) == 0o600
    assert [mode(p) for p in tmp_path.glob("logs/bridge.log.*")] == [0o600]


def test_an_old_world_readable_log_file_is_tightened(tmp_path: Path) -> None:
    log_file = tmp_path / "bridge.log"
    log_file.write_text("old\n")
    log_file.chmod(0o644)
    logs.rotating_file(log_file, retention_days=5).close()
    assert mode(log_file) == 0o600 and log_file.read_text() == "old\n"


def test_ib_async_connection_noise_is_off_the_console_but_in_the_file(tmp_path: Path, restore_loggers: None) -> None:
    buf, log_file = io.StringIO(), tmp_path / "bridge.log"
    logs.setup("INFO", file=log_file, stream=buf)
    logging.getLogger("ib_async.client").error("API connection failed: ConnectionRefusedError(111)")
    logging.getLogger("ib_async.client").error("Make sure API port on TWS/IBG is open")
    logging.getLogger("ib_async.wrapper").error("Error 201, reqId 3: Order rejected - reason:margin")
    logging.getLogger("bridge.runner").error("cannot connect to IB Gateway/TWS")
    for h in logging.getLogger("bridge").handlers:
        h.flush()
    console = [json.loads(line)["msg"] for line in buf.getvalue().splitlines()]
    assert console == ["Error 201, reqId 3: Order rejected - reason:margin", "cannot connect to IB Gateway/TWS"]
    in_file = [json.loads(line)["msg"] for line in log_file.read_text().splitlines()]
    assert in_file[:2] == [
        "API connection failed: ConnectionRefusedError(111)",
        "Make sure API port on TWS/IBG is open",
    ]
    assert len(in_file) == 4


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return int(port)


def test_bridge_stop_and_run_against_a_closed_port_print_only_our_error(tmp_path: Path) -> None:
    port = closed_port()
    ledger = str(tmp_path / "l.sqlite")
    Ledger(ledger).close()
    stop = bridge("stop", "--ledger", ledger, "--port", str(port), "--timeout", "0.5")
    assert stop.returncode == 3 and f"cannot connect to IB Gateway/TWS at 127.0.0.1:{port}" in stop.stdout
    run = bridge(*RUN, ledger, "--strategy", "sma_cross", "--port", str(port), BRIDGE_GATEWAY_CONNECT_ATTEMPTS="1")
    assert run.returncode == 3 and f"cannot connect to IB Gateway/TWS at 127.0.0.1:{port}" in run.stderr
    for out in (stop.stderr, run.stderr):
        assert "API connection failed" not in out and "Make sure API port" not in out, out
