"""Logs, alerts, health endpoints, reports, dry runs, approvals and end-of-day rules."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import socketserver
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bridge.config import NotifyConfig
from bridge.ops import logs
from bridge.ops.health import HealthServer, HealthState
from bridge.ops.notify import Notifier
from bridge.ops.report import write_report
from tests.fakegw import FakeGateway

from ._harness import BridgeHarness

H = Callable[..., BridgeHarness]
SECRET = "hunter2-pa55word-xyz"
TOKEN = "tok-9f8e7d6c5b4a"


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Route bridge logs to a buffer as JSON lines; restore the loggers afterwards."""
    saved = {
        n: (lg.handlers[:], lg.level, lg.propagate)
        for n in ("bridge", "ib_async", "ib_insync")
        for lg in [logging.getLogger(n)]
    }
    buf = io.StringIO()
    logs.setup("INFO", stream=buf)
    try:
        yield buf
    finally:
        for name, (handlers, level, propagate) in saved.items():
            lg = logging.getLogger(name)
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate
        logs.CONTEXT.run_id = logs.CONTEXT.bar_time = ""


class _Capture(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Capture.received.append({"auth": self.headers.get("Authorization"), "body": json.loads(body)})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP (EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT) to receive one message."""

    messages: list[str] = []
    auth: list[str] = []

    def handle(self) -> None:
        self.wfile.write(b"220 fake ESMTP\r\n")
        data = None
        while line := self.rfile.readline():
            text = line.decode().rstrip("\r\n")
            if data is not None:
                if text == ".":
                    _Smtp.messages.append("\n".join(data))
                    data = None
                    self.wfile.write(b"250 queued\r\n")
                else:
                    data.append(text)
                continue
            cmd = text.split(" ")[0].upper()
            if cmd == "EHLO":
                self.wfile.write(b"250-fake\r\n250 AUTH PLAIN\r\n")
            elif cmd == "AUTH":
                _Smtp.auth.append(text)
                self.wfile.write(b"235 ok\r\n")
            elif cmd == "DATA":
                data = []
                self.wfile.write(b"354 go\r\n")
            elif cmd == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


def test_json_logs_carry_run_id_and_bar_time_and_never_credentials(
    harness: H, json_logs: io.StringIO, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BRIDGE_SMTP_PASSWORD", SECRET)
    monkeypatch.setenv("BRIDGE_WEBHOOK_TOKEN", TOKEN)
    server = HTTPServer(("127.0.0.1", 0), _Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Capture.received.clear()
    h = harness(seed=60, notify={"webhook_url": f"http://127.0.0.1:{server.server_address[1]}/hook", "smtp_user": "me"})
    h.runner.ctx.notifier = Notifier(h.cfg.notify, background=False)
    h.start()
    assert h.until(lambda: h.settled() and h.orders())
    h.runner.notifier.alert("test", f"an alert that mentions {SECRET} by accident", "warning")
    server.shutdown()
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    assert lines and all(
        line["run_id"] == h.runner.run_id for line in lines if line["logger"].startswith("bridge.runner")
    )
    decision = next(line for line in lines if line.get("event") == "decision")
    assert decision["bar_time"] == h.frame.index[59].isoformat() and decision["verdict"] == "allow"
    assert any(line.get("event") == "order_sent" and line.get("latency_ms") is None for line in lines)
    assert _Capture.received and all(r["auth"] == f"Bearer {TOKEN}" for r in _Capture.received)
    assert {r["body"]["kind"] for r in _Capture.received} >= {"fill", "test"}
    everything = (
        json_logs.getvalue()
        + json.dumps(h.ledger.rows("SELECT * FROM runs"))
        + json.dumps(h.runner.status(), default=str)
    )
    everything += (
        json.dumps(h.ledger.rows("SELECT * FROM risk_events")) + repr(h.cfg) + repr(h.runner.notifier.__dict__)
    )
    assert SECRET not in everything and TOKEN not in everything
    assert "***" in json_logs.getvalue()  # the accidental mention was redacted


def test_email_alerts_use_the_password_from_the_environment(tmp_path: Path) -> None:
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    _Smtp.messages.clear()
    secret = tmp_path / "smtp.secret"
    secret.write_text(SECRET)
    cfg = NotifyConfig(
        email_to=("ops@example.com",),
        smtp_host="127.0.0.1",
        smtp_port=srv.server_address[1],
        smtp_user="bridge",
        smtp_starttls=False,
        smtp_password_file=str(secret),
    )
    n = Notifier(cfg, env={})
    n.alert("kill_switch", "KILL SWITCH: test", "critical")
    n.close()
    srv.shutdown()
    assert not n.failures and len(_Smtp.messages) == 1
    assert "kill_switch" in _Smtp.messages[0] and "ops@example.com" in _Smtp.messages[0]
    assert _Smtp.auth and SECRET not in _Smtp.messages[0]


def test_failed_delivery_is_logged_not_raised() -> None:
    n = Notifier(
        NotifyConfig(webhook_url="http://127.0.0.1:9/nothing", timeout=0.5),
        env={"BRIDGE_WEBHOOK_TOKEN": TOKEN},
        background=False,
    )
    n.alert("disconnected", "gone", "error")
    assert n.failures and "webhook alert delivery failed" in n.failures[0] and TOKEN not in n.failures[0]


def test_health_endpoints(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60)
    state = HealthState()
    h.runner.ctx.health = state
    server = HealthServer(state, 0).start()
    try:

        def get(path: str) -> tuple[int, dict[str, Any]]:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as resp:
                    return resp.status, json.loads(resp.read())
            except urllib.error.HTTPError as err:
                return err.code, json.loads(err.read())

        assert get("/health")[0] == 503  # still starting
        h.start()
        assert h.until(lambda: h.settled() and h.orders())
        h.runner.ctx.heartbeat(force=True)
        code, body = get("/health")
        assert code == 200 and body["connected"] and body["data_fresh"] and body["kill_switch_clear"]
        code, status = get("/status")
        assert code == 200 and status["positions"]["SPY"]["quantity"] > 0 and status["open_orders"] == []
        assert status["pnl_today"] is not None and status["kill_switch"] is False
        h.ledger.latch(h.clock.now(), "test", "manual_stop")
        h.runner.ctx.heartbeat(force=True)
        code, body = get("/health")
        assert code == 503 and body["kill_switch"] and not body["kill_switch_clear"]
        assert get("/nope")[0] == 404
    finally:
        server.stop()


def test_dry_run_does_everything_but_send(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60)
    h.runner.ctx.cfg = h.cfg = dataclasses.replace(h.cfg, dry_run=True)
    h.start()
    h.until(lambda: h.decided(59))
    [order] = h.orders()
    assert order["status"] == "dry_run" and gw.orders_received() == []
    assert h.ledger.decisions()[0]["verdict"] == "allow"


def test_orders_above_the_approval_threshold_are_held(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60, risk={"approval_threshold": 5_000.0})
    h.start()
    assert h.until(lambda: bool(h.orders()))
    [order] = h.orders()
    assert order["status"] == "needs_approval" and "approval_threshold" in order["reason"]
    assert gw.orders_received() == [] and any(a["kind"] == "needs_approval" for a in h.notifier.sent)


def test_end_of_day_flatten_before_the_close(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60, eod={"flatten_before_close": 15.0})
    h.start()
    assert h.until(lambda: h.settled() and h.orders())
    close = h.runner.calendar.session_close_of(h.clock.now())
    assert close is not None
    h.clock.set(close - pd.Timedelta(minutes=10))
    assert h.until(lambda: gw.position("SPY")[0] == 0.0 and h.settled())
    eod = [o for o in h.orders() if o["purpose"] == "flatten"]
    assert len(eod) == 1 and eod[0]["reason"] == "end-of-day flatten"
    assert math.isnan(
        h.ledger.strategy_state(h.runner.skey, "SPY")[0]
    )  # "last target" forgotten: re-enter on the next bar


def test_daily_report_from_the_ledger(harness: H, gw: FakeGateway, tmp_path: Path) -> None:
    h = harness(seed=180)
    h.start()
    assert h.until(lambda: h.settled() and h.orders())
    for i in range(181, 190):
        h.advance(i)
    day = str(h.frame.index[188].date())
    jpath, hpath, summary = write_report(h.ledger, day, tmp_path)
    assert [o["side"] for o in summary["orders"]] == ["SELL"] and summary["orders"][0]["status"] == "filled"
    assert len(summary["fills"]) == 1 and summary["commissions"] == 1.0
    assert summary["pnl"]["start_equity"] is not None and summary["cash"] is not None
    assert summary["positions"] == {} or all(p["quantity"] == 0 for p in summary["positions"].values())
    assert summary["outstanding_orders"] == []
    assert json.loads(jpath.read_text())["day"] == day and "<h2>Fills</h2>" in hpath.read_text()
    assert h.ledger.rows("SELECT day FROM daily_summaries") == [{"day": day}]
