"""Unattended operation (issue 13): breakers latch across a restart, approvals from the CLI,
tiered and rate-limited alerts, webhook formats, backup/restore, log rotation, /health."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from bridge.app import resume_bridge
from bridge.breakers import Usage
from bridge.config import AlertsConfig
from bridge.ledger.store import SCHEMA_VERSION, Ledger
from bridge.ops.alerts import RateLimit, Tiers, wants, webhook_body
from bridge.ops.logs import rotating_file
from tests.fakegw import FakeGateway

from ._harness import BridgeHarness

ROOT = Path(__file__).resolve().parents[2]
H = Callable[..., BridgeHarness]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env.update(PYTHONPATH=str(ROOT), NUMBA_CACHE_DIR=os.environ.get("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba")))
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def drop(h: BridgeHarness, fraction: float) -> None:
    """The forming bar's price falls by ``fraction`` (the runner marks positions to it)."""
    o = float(h.frame["open"].iloc[h.k])
    low = o * (1 - fraction)
    h.gw.push_bar("SPY", {"time": h._stamp(h.k), "open": o, "high": o, "low": low, "close": low})


def test_a_breaker_trips_at_its_threshold_latches_across_a_restart_and_clears_only_on_resume(
    harness: H, gw: FakeGateway
) -> None:
    h = harness(seed=60, risk={"market_hours": False}, breakers={"max_drawdown_pct": 0.003, "rapid_loss_pct": 0.0})
    h.start()
    assert h.until(lambda: h.settled() and h.orders())
    drop(h, 0.026)  # ~0.26% of equity: 80%+ of the 0.3% drawdown limit, below it
    assert h.until(lambda: any(a["kind"] == "limit_warning" for a in h.notifier.sent))
    assert not h.ledger.risk_state().kill_switch
    drop(h, 0.04)  # ~0.4%: over it
    assert h.until(lambda: h.ledger.risk_state().kill_switch and gw.position("SPY")[0] == 0 and h.settled())
    rs = h.ledger.risk_state()
    assert rs.reason.startswith("breaker drawdown") and "reached the limit" in rs.reason
    assert [e["kind"] for e in h.ledger.risk_events() if e["kind"].startswith("breaker")] == ["breaker:drawdown"]
    assert any(a["kind"] == "limit_critical" for a in h.notifier.sent)
    h.runner.close()
    # a restart keeps it latched (and does not trade)
    h2 = BridgeHarness(gw, h.frame, h.ledger.path, 61, cfg=h.cfg, reseed=False)
    h2.clock.set(h.clock.now() + pd.Timedelta(seconds=5))
    h2.runner.start()
    for _ in range(20):
        h2.step(0.02)
    assert h2.ledger.risk_state().kill_switch and h2.ledger.risk_state().reason.startswith("breaker drawdown")
    assert not h2.ledger.open_orders()
    refused = resume_bridge(h2.cfg, rebaseline=False, acknowledge=lambda q: False)
    assert refused["resumed"] is False and h2.ledger.risk_state().kill_switch
    assert resume_bridge(h2.cfg, rebaseline=False, acknowledge=lambda q: "breaker drawdown" in q)["resumed"]
    assert not h2.ledger.risk_state().kill_switch
    for _ in range(80):  # the running bridge measures from the resume: the old peak does not trip it again
        h2.step(0.02)
    assert not h2.ledger.risk_state().kill_switch
    h2.close()


def test_per_symbol_notional_cap_rejects_the_entry_and_alerts(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60, risk={"market_hours": False}, breakers={"symbol_max_notional": 1_000.0})
    h.start()
    assert h.until(lambda: h.decided(59))
    [d] = [d for d in h.ledger.decisions() if d["verdict"] == "reject"]
    assert d["rule"] == "symbol_notional" and "1,000.00" in d["reason"] and gw.orders_received() == []
    assert any(a["kind"] == "risk_rejected" and "symbol_notional" in a["message"] for a in h.notifier.sent)
    assert h.ledger.recent_alerts()[0]["kind"] == "risk_rejected"


def test_approve_and_reject_bad_input_from_the_cli(harness: H, gw: FakeGateway, tmp_path: Path) -> None:
    h = harness(seed=60, risk={"approval_threshold": 5_000.0, "market_hours": False})
    h.start()
    assert h.until(lambda: bool(h.orders()))
    [held] = h.orders()
    assert held["status"] == "needs_approval"
    h.runner.close()  # no running bridge: an approval cannot be sent
    before = h.ledger.rows("SELECT * FROM orders"), h.ledger.rows("SELECT * FROM control")
    out = cli("approve", "no-such-order", "--ledger", str(h.ledger.path))
    assert out.returncode == 2 and "unknown order id" in out.stderr and "Traceback" not in out.stderr
    out = cli("approve", held["order_ref"], "--ledger", str(h.ledger.path))
    assert out.returncode == 2 and "approval window has passed" in out.stderr  # held in 2021: long expired
    out = cli("reject", "no-such-order", "--ledger", str(h.ledger.path))
    assert out.returncode == 2 and "unknown order id" in out.stderr
    assert (h.ledger.rows("SELECT * FROM orders"), h.ledger.rows("SELECT * FROM control")) == before  # nothing changed
    out = cli("reject", held["order_ref"], "--ledger", str(h.ledger.path))
    assert out.returncode == 0 and json.loads(out.stdout)["rejected"]
    assert h.ledger.order(held["order_ref"])["status"] == "void"
    [c] = h.ledger.control_log()
    assert c["command"] == "reject" and c["requested_by"].startswith("cli (") and c["at"]
    out = cli("reject", held["order_ref"], "--ledger", str(h.ledger.path))
    assert out.returncode == 2 and "not held for approval" in out.stderr and "status void" in out.stderr


def test_a_held_order_expires_one_bar_later_in_the_runner(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60, risk={"approval_threshold": 5_000.0, "market_hours": False})
    h.start()
    assert h.until(lambda: bool(h.orders()))
    [held] = h.orders()
    h.clock.set(h.clock.now() + pd.Timedelta(days=1, seconds=1))
    assert h.until(lambda: h.ledger.order(held["order_ref"])["status"] == "void")
    assert "approval window expired" in h.ledger.order(held["order_ref"])["reason"]
    assert any(a["kind"] == "approval_expired" for a in h.notifier.sent) and gw.orders_received() == []


def test_tiers_warn_at_80_and_90_and_go_critical_at_100_once_a_day() -> None:
    t = Tiers((0.8, 0.9))
    u = lambda v: Usage("daily_loss", v, 100.0, "daily loss")  # noqa: E731
    assert t.crossings([u(79.9)], "d1") == []
    assert [(lvl, tier) for lvl, tier, _ in t.crossings([u(80.0)], "d1")] == [("warning", 0.8)]
    assert t.crossings([u(85.0)], "d1") == [] and t.crossings([u(70.0)], "d1") == []
    assert [(lvl, tier) for lvl, tier, _ in t.crossings([u(95.0)], "d1")] == [("warning", 0.9)]
    assert [(lvl, tier) for lvl, tier, _ in t.crossings([u(100.0)], "d1")] == [("critical", 1.0)]
    assert t.crossings([u(120.0)], "d1") == []
    assert [(lvl, tier) for lvl, tier, _ in t.crossings([u(91.0)], "d2")] == [("warning", 0.9)]  # a new day starts over
    assert t.crossings([Usage("error_rate", 19, 20, "errors")], "d2") == []  # tiers are for loss limits


def test_rejections_are_rate_limited_and_summarised() -> None:
    r = RateLimit(60.0)
    assert r.admit("order_rejected", 0.0) == (True, 0)
    assert [r.admit("order_rejected", t)[0] for t in (1.0, 2.0, 3.0)] == [False, False, False]
    assert r.admit("risk_rejected", 4.0) == (True, 0)  # per kind
    assert r.admit("order_rejected", 61.0) == (True, 3)


def test_routing_and_webhook_formats() -> None:
    cfg = AlertsConfig(webhook_min_level="warning", email_min_level="error", email_kinds=("kill_switch",))
    fill = {"kind": "fill", "level": "info", "message": "fill"}
    warn = {"kind": "limit_warning", "level": "warning", "message": "80%"}
    assert not wants("webhook", fill, cfg) and wants("webhook", warn, cfg)
    assert not wants("email", {**warn, "level": "error"}, cfg)  # not a routed kind
    assert wants("email", {"kind": "anything", "level": "critical"}, cfg)  # critical always goes out
    assert webhook_body(warn, "slack") == {"text": "⚠️ [bridge] WARNING limit_warning: 80%"}
    assert webhook_body(warn, "discord")["content"].endswith("limit_warning: 80%")
    assert webhook_body(warn, "json") == warn


def test_backup_and_restore_round_trip_mid_session(harness: H, gw: FakeGateway, tmp_path: Path) -> None:
    h = harness(seed=60, risk={"market_hours": False})
    h.start()
    assert h.until(lambda: h.settled() and h.orders())
    h.runner.ctx.snapshot_positions()
    out = cli("backup", "--ledger", str(h.ledger.path), "--out", str(tmp_path / "b1.sqlite"))  # the runner is alive
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["orders"] == 1 and info["fills"] == 1 and info["schema"] == SCHEMA_VERSION == 3
    h.advance(61)
    h.runner.ctx.heartbeat(force=True)
    out = cli("restore", str(tmp_path / "b1.sqlite"), "--ledger", str(h.ledger.path))
    assert out.returncode == 2 and "a bridge is running on this ledger" in out.stderr  # never under a running bridge
    h.runner.close()
    n_after = len(h.ledger.decisions())
    out = cli("restore", str(tmp_path / "b1.sqlite"), "--ledger", str(h.ledger.path))
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["self_check"] == "ok" and Path(res["previous_kept_as"]).exists()
    fresh = Ledger(h.ledger.path, create=False)
    try:
        assert len(fresh.decisions()) < n_after and len(fresh.fills()) == 1
        assert fresh.expected_positions()["SPY"] == gw.position("SPY")[0]  # it reconciles with the broker
    finally:
        fresh.close()
    kept = Ledger(res["previous_kept_as"], create=False)
    assert len(kept.decisions()) == n_after
    kept.close()


def test_restore_refuses_what_is_not_a_ledger_and_changes_nothing(tmp_path: Path) -> None:
    ledger = tmp_path / "l.sqlite"
    Ledger(ledger).close()
    before = ledger.read_bytes()
    junk = tmp_path / "notes.sqlite"
    junk.write_text("these are not the droids")
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    for path, why in (
        (junk, "not a bridge ledger"),
        (other, "tables missing"),
        (tmp_path / "none.sqlite", "backup file not found"),
    ):
        out = cli("restore", str(path), "--ledger", str(ledger))
        assert out.returncode == 2 and why in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert ledger.read_bytes() == before and not list(tmp_path.glob("*before-restore*"))


def test_log_rotation_keeps_n_days(tmp_path: Path) -> None:
    log_file = tmp_path / "bridge.log"
    for day in pd.date_range("2026-01-01", periods=20, freq="D"):
        (tmp_path / f"bridge.log.{day:%Y-%m-%d}").write_text("old\n")
    handler = rotating_file(log_file, retention_days=5)
    try:
        handler.emit(logging.LogRecord("bridge", logging.INFO, __file__, 1, "today", None, None))
        handler.doRollover()
    finally:
        handler.close()
    kept = sorted(p.name for p in tmp_path.glob("bridge.log.*"))
    assert len(kept) == 5 and kept[-1] >= "bridge.log.2026-01-20"
    assert log_file.exists()


def test_health_checks_disk_and_memory(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60, ops={"min_free_disk_mb": 1e12})  # no disk is that large
    h.start()
    view = h.runner.health_view(h.runner.status())
    assert view["disk_ok"] is False and view["memory_ok"] is True and view["ok"] is False and view["disk_free_mb"] > 0


def test_the_daily_report_is_written_after_the_close(harness: H, gw: FakeGateway, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    h = harness(seed=60, ops={"report_dir": str(out)})
    h.start()
    assert h.until(lambda: h.settled() and h.orders())
    for _ in range(60):  # a second of ticks while the market is open
        h.step(0.02)
    assert not out.exists()
    close = h.runner.calendar.session_close_of(h.clock.now())
    assert close is not None
    day = h.runner.day()
    h.clock.set(close + pd.Timedelta(minutes=1))
    assert h.until(lambda: (out / f"bridge-report-{day}.json").exists(), 10)
    assert (out / f"bridge-report-{day}.html").exists()
    assert json.loads((out / f"bridge-report-{day}.json").read_text())["day"] == day
    assert any(a["kind"] == "daily_report" for a in h.notifier.sent)


def test_the_notifier_routes_by_level_and_posts_slack_payloads() -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from typing import Any

    from bridge.config import NotifyConfig
    from bridge.ops.notify import Notifier

    got: list[dict[str, Any]] = []

    class Capture(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        n = Notifier(
            NotifyConfig(webhook_url=f"http://127.0.0.1:{server.server_address[1]}/hook"),
            background=False,
            routing=AlertsConfig(webhook_format="slack", webhook_min_level="warning"),
            env={},
        )
        n.alert("fill", "fill BUY 10 SPY", "info")  # below the webhook's minimum level: logged only
        n.alert("limit_warning", "daily loss at 80%", "warning")
        n.alert("kill_switch", "KILL SWITCH", "critical")
    finally:
        server.shutdown()
        server.server_close()
    assert got == [
        {"text": "⚠️ [bridge] WARNING limit_warning: daily loss at 80%"},
        {"text": "🚨 [bridge] CRITICAL kill_switch: KILL SWITCH"},
    ]
    assert [a["kind"] for a in n.sent] == ["fill", "limit_warning", "kill_switch"]  # every alert is still logged


def test_the_error_rate_breaker_halts_on_broker_rejections(harness: H, gw: FakeGateway) -> None:
    from tests.fakegw.policy import FillPolicy

    gw.set_default_policy(FillPolicy.reject("no margin"))
    h = harness(seed=60, risk={"market_hours": False}, breakers={"max_errors": 2})
    h.start()
    assert h.until(lambda: h.ledger.order(h.orders()[0]["order_ref"])["status"] == "rejected" if h.orders() else False)
    for _ in range(60):
        h.step(0.02)
    assert not h.ledger.risk_state().kill_switch  # one rejection, limit two: not yet (error_rate at 50%)
    h.runner.ctx.alert("stale_data", "SPY: a second error", "error")
    assert h.until(lambda: h.ledger.risk_state().kill_switch)
    rs = h.ledger.risk_state()
    assert rs.reason.startswith("breaker error_rate") and "errors within 600 s" in rs.reason
    assert [o["purpose"] for o in h.orders()] == ["signal"]  # halt, cancel: no flattening for an error-rate trip
