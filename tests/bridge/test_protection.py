"""Protective child orders, the ledger side (issue 12 item 5): refs derived from the parent's,
prices from the exit rules, bad rules refused, the schema migration, atomic brackets, and
``bridge status`` showing what guards each position."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from bridge import protection
from bridge.cli import cli
from bridge.errors import DuplicateOrder, LedgerError
from bridge.ledger import queries
from bridge.ledger.store import _MIGRATIONS, SCHEMA_VERSION, Ledger

NOW = pd.Timestamp("2024-01-05 14:30", tz="UTC")
PARENT = "ql:sma_cross:SPY:20240105T1430:ab12cd34"


def entry(ref: str = PARENT, side: str = "BUY", **kw: object) -> dict[str, object]:
    return {
        "order_ref": ref,
        "run_id": "r1",
        "strategy": "sma_cross(fast=20,slow=50)",
        "symbol": "SPY",
        "purpose": "signal",
        "side": side,
        "quantity": 10.0,
        "order_type": "MKT",
        "tif": "DAY",
        "status": "intent",
        "day": "2024-01-05",
        "bar_time": "2024-01-04T21:00:00+00:00",
        **kw,
    }


def test_child_refs_are_derived_from_the_parent_and_parse_back() -> None:
    refs = {role: protection.child_ref(PARENT, role) for role in protection.ROLES}
    assert refs == {"stop": PARENT + ":sl", "take_profit": PARENT + ":tp", "trail": PARENT + ":tr"}
    assert all(protection.split_ref(ref) == (PARENT, role) for role, ref in refs.items())
    assert (
        protection.split_ref(PARENT) is None and protection.split_ref(PARENT + ":m") is None
    )  # a timeout's market order
    assert protection.child_ref(PARENT, "stop") == protection.child_ref(PARENT, "stop")  # a restart finds the same ref
    with pytest.raises(protection.ProtectionError, match="unknown protective order role"):
        protection.child_ref(PARENT, "stop_limit")


def test_long_children_sit_below_and_above_the_entry_in_one_oca_group() -> None:
    rows = protection.children(entry(), {"sl_stop": 0.05, "tp_stop": 0.10, "sl_trail": 0.03}, 470.07)
    by_role = {r["role"]: r for r in rows}
    assert [r["role"] for r in rows] == ["stop", "take_profit", "trail"]
    assert all(
        r["side"] == "SELL"
        and r["quantity"] == 10.0
        and r["parent_ref"] == PARENT
        and r["purpose"] == "protect"
        and r["oca_group"] == PARENT + ":oca"
        and r["symbol"] == "SPY"
        and r["tif"] == "DAY"
        for r in rows
    )
    assert (
        by_role["stop"]["order_type"] == "STP" and by_role["stop"]["aux_price"] == 446.56
    )  # 446.5665 rounded away from the entry
    assert (
        by_role["take_profit"]["order_type"] == "LMT" and by_role["take_profit"]["limit_price"] == 517.08
    )  # 517.077 up
    trail = by_role["trail"]  # a STP at research's level (470.07 x 0.97 = 455.9679, down), the percent kept
    assert (trail["order_type"], trail["aux_price"], trail["trail_pct"]) == ("STP", 455.96, 3.0)


def test_short_children_mirror_the_long_ones_and_unset_rules_add_nothing() -> None:
    rows = protection.children(entry(side="SELL"), {"sl_stop": 0.05, "tp_stop": 0.10}, 100.0)
    assert [(r["role"], r["side"], r["aux_price"], r["limit_price"]) for r in rows] == [
        ("stop", "BUY", 105.0, None),
        ("take_profit", "BUY", None, 90.0),
    ]
    assert protection.children(entry(), {"max_hold": 5}, 100.0) == []  # a time exit is sent by the bridge, not held


@pytest.mark.parametrize(
    ("rules", "price", "message"),
    [
        ({"sl_stop": 0.0}, 100.0, "sl_stop is the stop's distance"),
        ({"sl_stop": -0.02}, 100.0, "sl_stop is the stop's distance"),
        ({"sl_trail": 1.5}, 100.0, "sl_trail is the trailing stop's distance"),
        ({"tp_stop": 0.0}, 100.0, "tp_stop must be > 0"),
        ({"sl_stop": 0.05}, float("nan"), "need the entry's price"),
    ],
)
def test_bad_rules_are_refused_with_the_value_and_the_fix(rules: dict[str, float], price: float, message: str) -> None:
    with pytest.raises(protection.ProtectionError, match=message) as err:
        protection.children(entry(), rules, price)
    assert err.value.found is not None and (err.value.fix or "nan" in str(err.value.found))


def test_a_bracket_is_recorded_whole_or_not_at_all(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    kids = protection.children(entry(), {"sl_stop": 0.05, "tp_stop": 0.10}, 100.0)
    led.insert_bracket(entry(), kids, NOW)
    assert [r["order_ref"] for r in led.children(PARENT)] == [PARENT + ":sl", PARENT + ":tp"]
    assert led.order(PARENT + ":sl")["aux_price"] == 95.0 and led.order(PARENT + ":tp")["limit_price"] == 110.0
    with pytest.raises(DuplicateOrder):  # a restart re-deciding the same bar never records (or sends) it twice
        led.insert_bracket(entry(), kids, NOW)
    other = "ql:sma_cross:SPY:20240108T1430:ffff0000"
    bad = [*protection.children(entry(other), {"sl_stop": 0.05}, 100.0), {**kids[0], "order_ref": "ql:x:sl"}]
    with pytest.raises(LedgerError, match="names another parent"):
        led.insert_bracket(entry(other), bad, NOW)
    assert led.order(other) is None and led.order(other + ":sl") is None  # rolled back: parent and first child too


def test_a_version_2_ledger_is_migrated_and_keeps_its_orders(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    for version in (1, 2):
        db.executescript(_MIGRATIONS[version])
    db.execute("PRAGMA user_version = 2")
    db.execute(
        "INSERT INTO orders (order_ref, symbol, purpose, side, quantity, order_type, status, created_at, updated_at) "
        "VALUES ('ql:old', 'SPY', 'signal', 'BUY', 5, 'MKT', 'filled', '2024-01-02', '2024-01-02')"
    )
    db.commit()
    db.close()
    led = Ledger(path)
    assert SCHEMA_VERSION == 3 and led.db.execute("PRAGMA user_version").fetchone()[0] == 3
    old = led.order("ql:old")
    assert old is not None and old["role"] is None and old["aux_price"] is None and old["oca_group"] is None
    assert led.children("ql:old") == []


def test_bridge_status_shows_each_positions_protective_orders(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    led = Ledger(path)
    led.insert_bracket(
        entry(status="filled"),
        protection.children(entry(status="sent"), {"sl_stop": 0.05, "sl_trail": 0.02}, 200.0),
        NOW,
    )
    led.update_order(PARENT + ":sl", NOW, kind="sent", status="working")
    led.update_order(PARENT + ":tr", NOW, kind="cancel", status="cancelled")  # no longer guards anything
    guarded = queries.protection(led)
    assert list(guarded) == ["SPY"] and [o["role"] for o in guarded["SPY"]] == ["stop"]
    led.close()
    env = {k: "" for k in os.environ if k.startswith("BRIDGE_")}
    res = CliRunner().invoke(cli, ["status", "--ledger", str(path), "--json"], env=env)
    assert res.exit_code == 0, res.output
    view = json.loads(res.output)
    assert [(o["order_ref"], o["aux_price"], o["status"]) for o in view["protection"]["SPY"]] == [
        (PARENT + ":sl", 190.0, "working")
    ]
    res = CliRunner().invoke(cli, ["status", "--ledger", str(path)], env=env)
    assert res.exit_code == 0 and f"SPY: (no position yet) stop 190.0: SELL 10 ({PARENT}:sl, working)" in res.output
