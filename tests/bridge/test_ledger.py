"""The SQLite ledger: WAL and FULL sync, transactions, idempotency, versions, crash safety."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from bridge.brokers.protocol import Fill
from bridge.errors import DuplicateOrder, LedgerError
from bridge.ledger.store import SCHEMA_VERSION, Ledger

NOW = pd.Timestamp("2024-01-05 14:30", tz="UTC")


def order(ref: str, **kw: object) -> dict[str, object]:
    return {
        "order_ref": ref,
        "symbol": "SPY",
        "purpose": "signal",
        "side": "BUY",
        "quantity": 10.0,
        "order_type": "MKT",
        "status": "intent",
        "day": "2024-01-05",
        **kw,
    }


def fill(ref: str, exec_id: str, qty: float = 10.0, commission: float = 1.0) -> Fill:
    return Fill(exec_id, ref, "SPY", "BUY", qty, 470.0, NOW, commission)


def test_wal_mode_full_sync_and_schema_version(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    assert led.journal_mode() == "wal" and led.synchronous() == 2  # FULL
    assert led.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert Ledger(tmp_path / "n.sqlite", synchronous="NORMAL").synchronous() == 1
    tables = {r[0] for r in led.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {
        "orders",
        "order_events",
        "fills",
        "positions",
        "decisions",
        "risk_events",
        "risk_state",
        "daily_summaries",
        "control",
        "strategy_state",
        "runs",
        "equity",
        "baseline",
    } <= tables


def test_newer_schema_is_refused_and_missing_ledger_reported(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    Ledger(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(LedgerError, match="newer bridge"):
        Ledger(path)
    with pytest.raises(LedgerError, match="ledger not found"):
        Ledger(tmp_path / "absent.sqlite", create=False)


def test_order_refs_are_unique_and_every_change_is_an_event(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    led.insert_order(order("ql:a"), NOW)
    with pytest.raises(DuplicateOrder, match="ql:a"):
        led.insert_order(order("ql:a"), NOW)
    led.update_order("ql:a", NOW, kind="sent", status="sent", sent_at=NOW.isoformat())
    assert led.record_fill(fill("ql:a", "e1", 4.0, 1.0), NOW, "2024-01-05")
    assert not led.record_fill(fill("ql:a", "e1", 4.0, 1.0), NOW, "2024-01-05")  # idempotent by execId
    assert led.record_fill(fill("ql:a", "e2", 6.0, 0.0), NOW, "2024-01-05")
    row = led.order("ql:a")
    assert row is not None and (row["status"], row["filled"], row["commission"]) == ("sent", 10.0, 1.0)
    kinds = [r["kind"] for r in led.rows("SELECT kind FROM order_events WHERE order_ref = 'ql:a' ORDER BY id")]
    assert kinds == ["created", "sent", "fill", "fill"]
    assert led.orders_since(NOW - pd.Timedelta(minutes=1)) == 1 and led.orders_on_day("2024-01-05") == 1


def test_a_late_commission_fills_in_a_missing_one(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    led.insert_order(order("ql:b"), NOW)
    led.record_fill(fill("ql:b", "e9", commission=math.nan), NOW, "2024-01-05")
    assert led.fills()[0]["commission"] is None
    led.record_fill(fill("ql:b", "e9", commission=1.25), NOW, "2024-01-05")
    assert led.fills()[0]["commission"] == 1.25 and led.order("ql:b")["commission"] == 1.25  # type: ignore[index]


def test_transactions_are_all_or_nothing(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    with pytest.raises(RuntimeError), led.tx():
        led.insert_order(order("ql:c"), NOW)
        led.set_strategy_state("s", "SPY", NOW, last_target=1.0, last_bar="2024-01-04")
        raise RuntimeError("crash inside the transaction")
    assert led.order("ql:c") is None and led.strategy_state("s", "SPY")[1] is None
    assert led.rows("SELECT * FROM order_events") == []


def test_expected_positions_are_baseline_plus_later_fills(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    led.insert_order(order("ql:d"), NOW)
    led.record_fill(fill("ql:d", "old"), NOW, "d")
    led.set_baseline({"SPY": 50.0}, ["SPY", "QQQ"], NOW)
    led.record_fill(fill("ql:d", "new", 7.0), NOW, "d")
    assert led.expected_positions() == {"SPY": 57.0, "QQQ": 0.0}


def test_kill_switch_latch_is_idempotent_and_control_claims_once(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    assert led.latch(NOW, "manual", "manual_stop") and not led.latch(NOW, "again", "manual_stop")
    rs = led.risk_state()
    assert rs.kill_switch and rs.halted and rs.reason == "manual" and len(led.risk_events("manual_stop")) == 1
    cid = led.request_control("stop", {"flatten": True}, NOW, "test")
    other = Ledger(tmp_path / "l.sqlite")  # a second process
    assert other.claim_control(cid, NOW, "runner") and not led.claim_control(cid, NOW, "bridge stop")
    assert led.pending_controls() == []


CHILD = textwrap.dedent(
    """
    import sys, pandas as pd
    from bridge.ledger.store import Ledger
    from bridge.brokers.protocol import Fill
    led = Ledger(sys.argv[1])
    now = pd.Timestamp("2024-01-05 14:30", tz="UTC")
    i = 0
    while True:
        ref = f"ql:crash:{i}"
        with led.tx():
            led.insert_order({"order_ref": ref, "symbol": "SPY", "purpose": "signal", "side": "BUY", "quantity": 1.0,
                              "order_type": "MKT", "status": "intent", "day": "d"}, now)
            led.record_fill(Fill(f"x{i}", ref, "SPY", "BUY", 1.0, 1.0, now, 1.0), now, "d")
        print(ref, flush=True)   # acknowledged: committed before this line
        i += 1
    """
)


def test_sigkill_mid_write_loses_nothing_acknowledged_and_never_half_a_transaction(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite"
    Ledger(path).close()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    acked = [proc.stdout.readline().strip() for _ in range(150)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    led = Ledger(path)
    assert led.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    refs = led.all_refs()
    assert set(acked) <= refs  # every acknowledged write survived the kill
    n_fills = led.db.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
    events = led.db.execute("SELECT COUNT(*) FROM order_events WHERE kind = 'created'").fetchone()[0]
    assert n_fills == len(refs) == events  # orders, their events and fills committed together or not at all
