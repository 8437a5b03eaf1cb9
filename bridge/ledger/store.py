"""The ledger: SQLite in WAL mode, the bridge's source of truth.

Durability: ``journal_mode=WAL`` and ``synchronous=FULL`` by default, so every
committed transaction is fsynced to the WAL before ``commit`` returns: a crash or power
loss loses nothing the bridge has acknowledged (an order intent, a fill, a kill switch).
``NORMAL`` (faster, may lose the last transactions on power loss, never corrupts) is
allowed for disposable ledgers such as replays. Writes that belong together (a decision,
its order intent and the strategy's "last target acted on") share one transaction.

Several processes share the file: the running ``bridge run``, and ``bridge stop`` /
``resume`` / ``status`` / ``report`` from other shells (``busy_timeout`` 10 s). Schema
versions live in ``PRAGMA user_version``; migrations run in a transaction at open.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bridge.brokers.protocol import Fill, Position
from bridge.errors import DuplicateOrder, LedgerError

SCHEMA_VERSION = 3
#: Order statuses in the ledger. ``intent`` is committed before the order is placed.
ORDER_STATUSES = (
    "intent",
    "sent",
    "working",
    "partially_filled",
    "filled",
    "cancelled",
    "rejected",
    "needs_approval",
    "dry_run",
    "void",
)
TERMINAL = ("filled", "cancelled", "rejected", "needs_approval", "dry_run", "void")
OPEN = ("intent", "sent", "working", "partially_filled")

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, ended_at TEXT, mode TEXT NOT NULL,
        strategy TEXT, symbols TEXT, params TEXT, account TEXT, pid INTEGER, host TEXT,
        config TEXT, heartbeat_at TEXT, state TEXT, status TEXT);
    CREATE TABLE orders (
        order_ref TEXT PRIMARY KEY, run_id TEXT, strategy TEXT, symbol TEXT NOT NULL, bar_time TEXT,
        purpose TEXT NOT NULL, side TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
        quantity REAL NOT NULL CHECK (quantity > 0), order_type TEXT NOT NULL, limit_price REAL, tif TEXT,
        status TEXT NOT NULL, filled REAL NOT NULL DEFAULT 0, avg_fill_price REAL, commission REAL NOT NULL DEFAULT 0,
        broker_order_id INTEGER, perm_id INTEGER, reason TEXT, parent_ref TEXT, target REAL, prev_target REAL,
        prev_bar TEXT, created_at TEXT NOT NULL, sent_at TEXT, updated_at TEXT NOT NULL, day TEXT);
    CREATE INDEX orders_status ON orders(status);
    CREATE INDEX orders_sent ON orders(sent_at);
    CREATE INDEX orders_day ON orders(day);
    CREATE TABLE order_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, order_ref TEXT NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL,
        status TEXT, detail TEXT);
    CREATE INDEX order_events_ref ON order_events(order_ref);
    CREATE TABLE fills (
        exec_id TEXT PRIMARY KEY, order_ref TEXT, symbol TEXT NOT NULL, side TEXT NOT NULL, quantity REAL NOT NULL,
        price REAL NOT NULL, time TEXT NOT NULL, commission REAL, realized_pnl REAL, recorded_at TEXT NOT NULL,
        source TEXT NOT NULL, day TEXT);
    CREATE INDEX fills_ref ON fills(order_ref);
    CREATE TABLE positions (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, symbol TEXT NOT NULL, quantity REAL NOT NULL,
        avg_cost REAL, mark REAL, snapshot INTEGER NOT NULL);
    CREATE TABLE equity (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, day TEXT NOT NULL, cash REAL, equity REAL, source TEXT);
    CREATE INDEX equity_day ON equity(day);
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, at TEXT NOT NULL, bar_time TEXT, symbol TEXT, strategy TEXT,
        target REAL, last_target REAL, position REAL, desired REAL, quantity REAL, verdict TEXT NOT NULL,
        rule TEXT, reason TEXT, order_ref TEXT, latency_ms REAL);
    CREATE INDEX decisions_bar ON decisions(symbol, bar_time);
    CREATE TABLE risk_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT, run_id TEXT);
    CREATE TABLE risk_state (
        id INTEGER PRIMARY KEY CHECK (id = 1), kill_switch INTEGER NOT NULL DEFAULT 0, halted INTEGER NOT NULL DEFAULT 0,
        reason TEXT NOT NULL DEFAULT '', since TEXT, day TEXT, sod_equity REAL, loss_ref_equity REAL,
        rebaseline INTEGER NOT NULL DEFAULT 0, updated_at TEXT);
    INSERT INTO risk_state (id) VALUES (1);
    CREATE TABLE strategy_state (
        strategy TEXT NOT NULL, symbol TEXT NOT NULL, last_target REAL, last_bar TEXT, updated_at TEXT,
        PRIMARY KEY (strategy, symbol));
    CREATE TABLE baseline (symbol TEXT PRIMARY KEY, quantity REAL NOT NULL, at TEXT NOT NULL, fill_rowid INTEGER NOT NULL);
    CREATE TABLE control (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, command TEXT NOT NULL, args TEXT,
        requested_by TEXT, processed_at TEXT, processed_by TEXT, result TEXT);
    CREATE TABLE daily_summaries (day TEXT PRIMARY KEY, created_at TEXT NOT NULL, summary TEXT NOT NULL);
    """,
    # issue 13: alerts are kept so the dashboard (another process) can show the recent ones
    2: """
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL, level TEXT NOT NULL, message TEXT, run_id TEXT);
    CREATE INDEX alerts_at ON alerts(at);
    """,
    # issue 12: protective children of an entry (stop, take-profit, trailing stop), linked by
    # parent_ref, with their trigger price or trailing percent and the bracket's OCA group
    3: """
    ALTER TABLE orders ADD COLUMN role TEXT;
    ALTER TABLE orders ADD COLUMN aux_price REAL;
    ALTER TABLE orders ADD COLUMN trail_pct REAL;
    ALTER TABLE orders ADD COLUMN oca_group TEXT;
    CREATE INDEX orders_parent ON orders(parent_ref);
    """,
}
#: Tables every ledger has (``bridge restore`` refuses a file without them).
REQUIRED_TABLES = ("runs", "orders", "fills", "positions", "equity", "decisions", "risk_state", "control")


@dataclass(frozen=True)
class RiskState:
    kill_switch: bool
    halted: bool
    reason: str
    since: str | None
    day: str | None
    sod_equity: float | None
    loss_ref_equity: float | None
    rebaseline: bool

    @property
    def trading_blocked(self) -> bool:
        return self.kill_switch or self.halted


@dataclass(frozen=True)
class ControlRequest:
    id: int
    at: str
    command: str
    args: dict[str, Any]


def iso(ts: pd.Timestamp | None) -> str | None:
    """ISO-8601 UTC text for a timestamp (the ledger's only time format)."""
    if ts is None:
        return None
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tz is None else t.tz_convert("UTC")
    return str(t.isoformat())


def _num(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


#: Ledger files are private: they hold account ids and the whole order history.
PRIVATE_MODE = 0o600
#: Files SQLite keeps next to a database (it creates them with the database file's mode).
_COMPANIONS = ("-wal", "-shm", "-journal")


def make_private(path: str | os.PathLike[str]) -> Path:
    """Create the database file ``path`` (empty, mode 0600) if missing, before SQLite opens it.

    Why before: SQLite creates the database with 0644 (less the umask) and then gives its
    ``-wal``/``-shm`` files the database's mode, so a file that starts private keeps all
    of them private. A file from an older bridge, and companions it left behind, are
    tightened here; one owned by another user is left as it is (only its owner may chmod).
    """
    p = Path(path)
    os.close(os.open(p, os.O_RDWR | os.O_CREAT, PRIVATE_MODE))
    for f in (p, *(p.with_name(p.name + suffix) for suffix in _COMPANIONS)):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if f.stat().st_mode & 0o077:
                f.chmod(PRIVATE_MODE)
    return p


def _switch_to_wal(db: sqlite3.Connection, wait: float = 10.0) -> str:
    """``PRAGMA journal_mode = WAL``, retried while another process holds the new file's lock.

    SQLite answers a journal-mode change with "database is locked" at once, without calling
    the busy handler, when another connection is creating the same new ledger.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            return str(db.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Ledger:
    """One process's connection to the ledger file."""

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "FULL", create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise LedgerError(
                "ledger not found",
                found=str(self.path),
                fix="pass --ledger (or [ledger] path) of a bridge that has run",
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            make_private(self.path)
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0, check_same_thread=False)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA busy_timeout = 10000")
            mode = _switch_to_wal(self.db)
            if str(mode).lower() != "wal":
                raise LedgerError(
                    "the ledger could not switch to WAL mode", found=mode, fix="put the ledger on a local disk"
                )
            self.db.execute(f"PRAGMA synchronous = {'FULL' if synchronous == 'FULL' else 'NORMAL'}")
            self._depth = 0
            self._migrate()
        except sqlite3.DatabaseError as err:
            raise LedgerError(
                "cannot open the ledger", found=f"{self.path}: {err}", fix="check the path; never edit the file by hand"
            ) from None

    def close(self) -> None:
        self.db.close()

    # --- plumbing ---------------------------------------------------------------
    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``); nested uses join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield self.db
            finally:
                self._depth -= 1
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.db
        except BaseException:
            self._depth = 0
            self.db.execute("ROLLBACK")
            raise
        self._depth = 0
        self.db.execute("COMMIT")

    def _migrate(self) -> None:
        version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise LedgerError(
                "the ledger was written by a newer bridge",
                found=f"schema {version} > {SCHEMA_VERSION}",
                fix="upgrade quantlab",
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self.tx() as db:
                # re-read under the write lock: another process may have migrated since we looked
                if int(db.execute("PRAGMA user_version").fetchone()[0]) >= target:
                    continue
                for statement in _MIGRATIONS[target].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {target}")
                db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(target),))

    def journal_mode(self) -> str:
        return str(self.db.execute("PRAGMA journal_mode").fetchone()[0])

    def synchronous(self) -> int:
        return int(self.db.execute("PRAGMA synchronous").fetchone()[0])

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute(sql, params).fetchall()]

    # --- runs ---------------------------------------------------------------------
    def start_run(
        self,
        run_id: str,
        at: pd.Timestamp,
        mode: str,
        strategy: str,
        symbols: Sequence[str],
        params: str,
        account: str,
        config: Mapping[str, Any],
    ) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO runs (run_id, started_at, mode, strategy, symbols, params, account, pid, host, config, state)"
                " VALUES (?,?,?,?,?,?,?,?,?,?, 'starting')",
                (
                    run_id,
                    iso(at),
                    mode,
                    strategy,
                    ",".join(symbols),
                    params,
                    account,
                    os.getpid(),
                    socket.gethostname(),
                    json.dumps(config, default=str, sort_keys=True),
                ),
            )

    def heartbeat(self, run_id: str, at: pd.Timestamp, state: str, status: Mapping[str, Any]) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE runs SET heartbeat_at = ?, state = ?, status = ? WHERE run_id = ?",
                (iso(at), state, json.dumps(status, default=str), run_id),
            )

    def end_run(self, run_id: str, at: pd.Timestamp, state: str = "stopped") -> None:
        with self.tx() as db:
            db.execute("UPDATE runs SET ended_at = ?, state = ? WHERE run_id = ?", (iso(at), state, run_id))

    def latest_run(self) -> dict[str, Any] | None:
        rows = self.rows("SELECT * FROM runs ORDER BY started_at DESC, rowid DESC LIMIT 1")
        return rows[0] if rows else None

    # --- orders ---------------------------------------------------------------------
    def order(self, ref: str) -> dict[str, Any] | None:
        rows = self.rows("SELECT * FROM orders WHERE order_ref = ?", (ref,))
        return rows[0] if rows else None

    def count_refs(self, prefix: str) -> int:
        return int(
            self.db.execute(
                "SELECT COUNT(*) FROM orders WHERE order_ref = ? OR order_ref LIKE ?", (prefix, prefix + "~%")
            ).fetchone()[0]
        )

    def insert_order(self, row: Mapping[str, Any], at: pd.Timestamp) -> None:
        """Record an order (normally as ``intent``) before it is placed.

        Raises:
            DuplicateOrder: the orderRef is already known (it is never placed twice).
        """
        data = dict(row)
        data.setdefault("created_at", iso(at))
        data.setdefault("updated_at", iso(at))
        cols = ", ".join(data)
        marks = ", ".join("?" for _ in data)
        with self.tx() as db:
            try:
                db.execute(f"INSERT INTO orders ({cols}) VALUES ({marks})", tuple(data.values()))
            except sqlite3.IntegrityError:
                raise DuplicateOrder(
                    "orderRef already in the ledger: not placing it again", found=data.get("order_ref")
                ) from None
            db.execute(
                "INSERT INTO order_events (order_ref, at, kind, status, detail) VALUES (?,?,?,?,?)",
                (data["order_ref"], iso(at), "created", data.get("status"), data.get("reason")),
            )

    def insert_bracket(
        self, parent: Mapping[str, Any], children: Sequence[Mapping[str, Any]], at: pd.Timestamp
    ) -> None:
        """Record an entry and its protective children (``bridge.protection``) in one
        transaction, before any of them is placed: all or none.

        Raises:
            DuplicateOrder: one of the refs is already known (the bracket is never sent twice).
        """
        with self.tx():
            self.insert_order(parent, at)
            for child in children:
                if child.get("parent_ref") != parent["order_ref"]:
                    raise LedgerError(
                        "a protective order names another parent",
                        found=f"{child.get('order_ref')} -> {child.get('parent_ref')}, not {parent['order_ref']}",
                    )
                self.insert_order(child, at)

    def children(self, parent_ref: str) -> list[dict[str, Any]]:
        """The protective orders of ``parent_ref``, in the order they were recorded."""
        return self.rows("SELECT * FROM orders WHERE parent_ref = ? AND role IS NOT NULL ORDER BY rowid", (parent_ref,))

    def update_order(self, ref: str, at: pd.Timestamp, kind: str, detail: str = "", **fields: Any) -> None:
        """Change an order's fields and append an order event (one transaction)."""
        fields = {k: _num(v) if isinstance(v, float) else v for k, v in fields.items()}
        fields["updated_at"] = iso(at)
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.tx() as db:
            db.execute(f"UPDATE orders SET {sets} WHERE order_ref = ?", (*fields.values(), ref))
            db.execute(
                "INSERT INTO order_events (order_ref, at, kind, status, detail) VALUES (?,?,?,?,?)",
                (ref, iso(at), kind, fields.get("status"), detail),
            )

    def open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        marks = ",".join("?" for _ in OPEN)
        sql = f"SELECT * FROM orders WHERE status IN ({marks})"
        args: list[Any] = list(OPEN)
        if symbol:
            sql += " AND symbol = ?"
            args.append(symbol)
        return self.rows(sql + " ORDER BY created_at", args)

    def orders_since(self, since: pd.Timestamp) -> int:
        """Orders sent to the broker at or after ``since`` (for the rate limits)."""
        return int(self.db.execute("SELECT COUNT(*) FROM orders WHERE sent_at >= ?", (iso(since),)).fetchone()[0])

    def orders_on_day(self, day: str) -> int:
        return int(
            self.db.execute("SELECT COUNT(*) FROM orders WHERE day = ? AND sent_at IS NOT NULL", (day,)).fetchone()[0]
        )

    # --- fills -------------------------------------------------------------------------
    def record_fill(self, fill: Fill, at: pd.Timestamp, day: str, source: str = "live") -> bool:
        """Store a fill once (by execId); a later commission fills in a missing one.

        Returns True if the fill is new. The order's filled quantity, average price and
        commission are recomputed from its fills in the same transaction.
        """
        with self.tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO fills (exec_id, order_ref, symbol, side, quantity, price, time, commission,"
                " realized_pnl, recorded_at, source, day) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    fill.exec_id,
                    fill.order_ref,
                    fill.symbol,
                    fill.side,
                    fill.quantity,
                    fill.price,
                    iso(fill.time),
                    _num(fill.commission),
                    _num(fill.realized_pnl),
                    iso(at),
                    source,
                    day,
                ),
            )
            new = cur.rowcount == 1
            if not new and not math.isnan(fill.commission):
                db.execute(
                    "UPDATE fills SET commission = ?, realized_pnl = COALESCE(?, realized_pnl) WHERE exec_id = ? AND commission IS NULL",
                    (fill.commission, _num(fill.realized_pnl), fill.exec_id),
                )
            if fill.order_ref:
                agg = db.execute(
                    "SELECT SUM(quantity) q, SUM(quantity * price) v, SUM(COALESCE(commission, 0)) c FROM fills WHERE order_ref = ?",
                    (fill.order_ref,),
                ).fetchone()
                if agg["q"]:
                    db.execute(
                        "UPDATE orders SET filled = ?, avg_fill_price = ?, commission = ?, updated_at = ? WHERE order_ref = ?",
                        (agg["q"], agg["v"] / agg["q"], agg["c"], iso(at), fill.order_ref),
                    )
                if new:
                    db.execute(
                        "INSERT INTO order_events (order_ref, at, kind, status, detail) VALUES (?,?,?,?,?)",
                        (
                            fill.order_ref,
                            iso(at),
                            "fill",
                            None,
                            f"{fill.side} {fill.quantity:g} @ {fill.price:g} exec {fill.exec_id} ({source})",
                        ),
                    )
        return new

    def fill_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT exec_id FROM fills")}

    def fills(self, day: str | None = None) -> list[dict[str, Any]]:
        if day:
            return self.rows("SELECT * FROM fills WHERE day = ? ORDER BY time", (day,))
        return self.rows("SELECT * FROM fills ORDER BY time")

    # --- positions, baseline, equity ------------------------------------------------------
    def snapshot_positions(
        self, at: pd.Timestamp, positions: Mapping[str, Position], marks: Mapping[str, float]
    ) -> None:
        with self.tx() as db:
            snap = int(db.execute("SELECT COALESCE(MAX(snapshot), 0) + 1 FROM positions").fetchone()[0])
            for sym, p in sorted(positions.items()):
                db.execute(
                    "INSERT INTO positions (at, symbol, quantity, avg_cost, mark, snapshot) VALUES (?,?,?,?,?,?)",
                    (iso(at), sym, p.quantity, p.avg_cost, _num(marks.get(sym)), snap),
                )
            if not positions:
                db.execute(
                    "INSERT INTO positions (at, symbol, quantity, avg_cost, mark, snapshot) VALUES (?, '', 0, NULL, NULL, ?)",
                    (iso(at), snap),
                )

    def last_positions(self, until: str | None = None) -> tuple[str | None, dict[str, dict[str, Any]]]:
        sql = "SELECT MAX(snapshot) s FROM positions" + (" WHERE at <= ?" if until else "")
        snap = self.db.execute(sql, (until,) if until else ()).fetchone()["s"]
        if snap is None:
            return None, {}
        rows = self.rows("SELECT * FROM positions WHERE snapshot = ? AND symbol != ''", (snap,))
        at = self.db.execute("SELECT at FROM positions WHERE snapshot = ? LIMIT 1", (snap,)).fetchone()["at"]
        return at, {r["symbol"]: r for r in rows}

    def set_baseline(self, positions: Mapping[str, float], symbols: Sequence[str], at: pd.Timestamp) -> None:
        """Positions the ledger starts counting from (at first start, or on an acknowledged resume)."""
        with self.tx() as db:
            top = int(db.execute("SELECT COALESCE(MAX(rowid), 0) FROM fills").fetchone()[0])
            db.execute("DELETE FROM baseline")
            for sym in sorted(set(symbols) | set(positions)):
                db.execute("INSERT INTO baseline VALUES (?,?,?,?)", (sym, float(positions.get(sym, 0.0)), iso(at), top))

    def has_baseline(self) -> bool:
        return self.db.execute("SELECT 1 FROM baseline LIMIT 1").fetchone() is not None

    def expected_positions(self) -> dict[str, float]:
        """Baseline plus every fill recorded after it: what the broker should hold."""
        out: dict[str, float] = {}
        top = 0
        for r in self.rows("SELECT * FROM baseline"):
            out[r["symbol"]] = float(r["quantity"])
            top = int(r["fill_rowid"])
        for r in self.rows(
            "SELECT symbol, SUM(CASE side WHEN 'BUY' THEN quantity ELSE -quantity END) q FROM fills WHERE rowid > ? GROUP BY symbol",
            (top,),
        ):
            out[r["symbol"]] = out.get(r["symbol"], 0.0) + float(r["q"])
        return out

    def record_equity(self, at: pd.Timestamp, day: str, cash: float, equity: float, source: str) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO equity (at, day, cash, equity, source) VALUES (?,?,?,?,?)",
                (iso(at), day, _num(cash), _num(equity), source),
            )

    def equity_on(self, day: str) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM equity WHERE day = ? ORDER BY id", (day,))

    # --- decisions and risk ---------------------------------------------------------------------
    def record_decision(self, at: pd.Timestamp, **fields: Any) -> int:
        data = {k: _num(v) if isinstance(v, float) else v for k, v in fields.items()}
        data["at"] = iso(at)
        cols = ", ".join(data)
        with self.tx() as db:
            cur = db.execute(
                f"INSERT INTO decisions ({cols}) VALUES ({', '.join('?' for _ in data)})", tuple(data.values())
            )
            return int(cur.lastrowid or 0)

    def decisions(self, symbol: str | None = None) -> list[dict[str, Any]]:
        if symbol:
            return self.rows("SELECT * FROM decisions WHERE symbol = ? ORDER BY id", (symbol,))
        return self.rows("SELECT * FROM decisions ORDER BY id")

    def risk_event(self, at: pd.Timestamp, kind: str, detail: str, run_id: str = "") -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO risk_events (at, kind, detail, run_id) VALUES (?,?,?,?)", (iso(at), kind, detail, run_id)
            )

    def risk_events(self, kind: str | None = None) -> list[dict[str, Any]]:
        if kind:
            return self.rows("SELECT * FROM risk_events WHERE kind = ? ORDER BY id", (kind,))
        return self.rows("SELECT * FROM risk_events ORDER BY id")

    def risk_state(self) -> RiskState:
        r = self.db.execute("SELECT * FROM risk_state WHERE id = 1").fetchone()
        return RiskState(
            bool(r["kill_switch"]),
            bool(r["halted"]),
            r["reason"] or "",
            r["since"],
            r["day"],
            r["sod_equity"],
            r["loss_ref_equity"],
            bool(r["rebaseline"]),
        )

    def set_risk_state(self, at: pd.Timestamp, **fields: Any) -> None:
        fields["updated_at"] = iso(at)
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.tx() as db:
            db.execute(
                f"UPDATE risk_state SET {sets} WHERE id = 1",
                tuple(int(v) if isinstance(v, bool) else v for v in fields.values()),
            )

    def latch(self, at: pd.Timestamp, reason: str, kind: str, run_id: str = "") -> bool:
        """Latch the kill switch (idempotent); returns True if it was not latched before."""
        with self.tx() as db:
            was = bool(db.execute("SELECT kill_switch FROM risk_state WHERE id = 1").fetchone()[0])
            if not was:
                db.execute(
                    "UPDATE risk_state SET kill_switch = 1, halted = 1, reason = ?, since = ?, updated_at = ? WHERE id = 1",
                    (reason, iso(at), iso(at)),
                )
                db.execute(
                    "INSERT INTO risk_events (at, kind, detail, run_id) VALUES (?,?,?,?)",
                    (iso(at), kind, reason, run_id),
                )
        return not was

    # --- strategy state --------------------------------------------------------------------------
    def strategy_state(self, strategy: str, symbol: str) -> tuple[float, str | None]:
        r = self.db.execute(
            "SELECT last_target, last_bar FROM strategy_state WHERE strategy = ? AND symbol = ?", (strategy, symbol)
        ).fetchone()
        if r is None:
            return math.nan, None
        return (math.nan if r["last_target"] is None else float(r["last_target"])), r["last_bar"]

    def set_strategy_state(
        self,
        strategy: str,
        symbol: str,
        at: pd.Timestamp,
        *,
        last_target: float | None = None,
        last_bar: str | None = None,
        keep_target: bool = False,
    ) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO strategy_state (strategy, symbol, updated_at) VALUES (?,?,?)",
                (strategy, symbol, iso(at)),
            )
            if not keep_target:
                db.execute(
                    "UPDATE strategy_state SET last_target = ? WHERE strategy = ? AND symbol = ?",
                    (_num(last_target), strategy, symbol),
                )
            if last_bar is not None:
                db.execute(
                    "UPDATE strategy_state SET last_bar = ? WHERE strategy = ? AND symbol = ?",
                    (last_bar, strategy, symbol),
                )
            db.execute(
                "UPDATE strategy_state SET updated_at = ? WHERE strategy = ? AND symbol = ?",
                (iso(at), strategy, symbol),
            )

    def rollback_strategy_state(
        self,
        strategy: str,
        symbol: str,
        at: pd.Timestamp,
        target: float | None,
        bar: str | None,
        only_if_bar: str | None,
    ) -> bool:
        """Undo a decision whose order never reached the broker (reconcile found it void)."""
        with self.tx() as db:
            cur = db.execute(
                "UPDATE strategy_state SET last_target = ?, last_bar = ?, updated_at = ? WHERE strategy = ? AND symbol = ?"
                " AND last_bar IS ?",
                (_num(target), bar, iso(at), strategy, symbol, only_if_bar),
            )
            return cur.rowcount == 1

    def restore_target(
        self, strategy: str, symbol: str, at: pd.Timestamp, target: float | None, only_if: float | None
    ) -> bool:
        """Set the last target acted on back to ``target`` if it is still ``only_if`` (a broker
        rejection: a later decision is never undone). The last bar stays."""
        with self.tx() as db:
            cur = db.execute(
                "UPDATE strategy_state SET last_target = ?, updated_at = ? WHERE strategy = ? AND symbol = ? "
                "AND last_target IS ?",
                (target, iso(at), strategy, symbol, only_if),
            )
            return cur.rowcount == 1

    def all_refs(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT order_ref FROM orders")}

    def traded_symbols(self) -> set[str]:
        return {
            r[0] for r in self.db.execute("SELECT DISTINCT symbol FROM orders UNION SELECT DISTINCT symbol FROM fills")
        }

    # --- control (bridge stop / resume from other processes) -------------------------------------
    def request_control(self, command: str, args: Mapping[str, Any], at: pd.Timestamp, requested_by: str) -> int:
        with self.tx() as db:
            cur = db.execute(
                "INSERT INTO control (at, command, args, requested_by) VALUES (?,?,?,?)",
                (iso(at), command, json.dumps(dict(args)), requested_by),
            )
            return int(cur.lastrowid or 0)

    def pending_controls(self) -> list[ControlRequest]:
        return [
            ControlRequest(r["id"], r["at"], r["command"], json.loads(r["args"] or "{}"))
            for r in self.rows("SELECT * FROM control WHERE processed_at IS NULL ORDER BY id")
        ]

    def claim_control(self, control_id: int, at: pd.Timestamp, by: str) -> bool:
        """Mark a request as being handled by ``by``; False if another process got it first."""
        with self.tx() as db:
            cur = db.execute(
                "UPDATE control SET processed_at = ?, processed_by = ? WHERE id = ? AND processed_at IS NULL",
                (iso(at), by, control_id),
            )
            return cur.rowcount == 1

    def finish_control(self, control_id: int, result: str) -> None:
        with self.tx() as db:
            db.execute("UPDATE control SET result = ? WHERE id = ?", (result, control_id))

    def control(self, control_id: int) -> dict[str, Any] | None:
        rows = self.rows("SELECT * FROM control WHERE id = ?", (control_id,))
        return rows[0] if rows else None

    # --- summaries ----------------------------------------------------------------------------------
    def save_summary(self, day: str, summary: Mapping[str, Any], at: pd.Timestamp) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO daily_summaries VALUES (?,?,?)",
                (day, iso(at), json.dumps(summary, default=str, sort_keys=True)),
            )

    # --- alerts (issue 13) ------------------------------------------------------------------------------
    def record_alert(self, at: pd.Timestamp, kind: str, level: str, message: str, run_id: str = "") -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO alerts (at, kind, level, message, run_id) VALUES (?,?,?,?,?)",
                (iso(at), kind, level, message, run_id),
            )

    def recent_alerts(self, limit: int = 30) -> list[dict[str, Any]]:
        return self.rows("SELECT at, kind, level, message FROM alerts ORDER BY id DESC LIMIT ?", (limit,))

    def count_alerts(self, since: pd.Timestamp, kinds: Sequence[str]) -> int:
        """Alerts of ``kinds`` at or after ``since`` (the error-rate breaker's count)."""
        marks = ",".join("?" for _ in kinds)
        return int(
            self.db.execute(
                f"SELECT COUNT(*) FROM alerts WHERE at >= ? AND kind IN ({marks})", (iso(since), *kinds)
            ).fetchone()[0]
        )

    # --- named read queries for the dashboard and the breakers (no SQL outside this module) ----------------
    def held_orders(self) -> list[dict[str, Any]]:
        """Orders held for approval, newest first."""
        return self.rows(
            "SELECT * FROM orders WHERE status = 'needs_approval' ORDER BY created_at DESC, rowid DESC LIMIT 50"
        )

    def orders_today(self, day: str, limit: int = 200) -> list[dict[str, Any]]:
        """Today's orders plus every still-open one, newest first."""
        marks = ",".join("?" for _ in OPEN)
        return self.rows(
            f"SELECT order_ref, symbol, purpose, side, quantity, order_type, limit_price, status, filled, avg_fill_price,"
            f" reason, created_at, bar_time FROM orders WHERE day = ? OR status IN ({marks})"
            " ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (day, *OPEN, limit),
        )

    def recent_fills(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT exec_id, order_ref, symbol, side, quantity, price, time, commission, day FROM fills"
            " ORDER BY recorded_at DESC, rowid DESC LIMIT ?",
            (limit,),
        )

    def recent_decisions(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT at, bar_time, symbol, verdict, rule, reason, quantity, order_ref FROM decisions ORDER BY id DESC LIMIT ?",
            (limit,),
        )

    def equity_history(self, limit: int = 5000) -> list[dict[str, Any]]:
        """The latest ``limit`` equity records, oldest first."""
        rows = self.rows(
            "SELECT at, day, equity FROM equity WHERE equity IS NOT NULL ORDER BY id DESC LIMIT ?", (limit,)
        )
        return rows[::-1]

    def peak_equity(self, since: str | None = None) -> float | None:
        """The highest equity recorded (since ``since``, ISO): the drawdown breaker's peak, across days."""
        v = self.db.execute("SELECT MAX(equity) FROM equity WHERE at >= ?", (since or "",)).fetchone()[0]
        return None if v is None else float(v)

    def last_resume_at(self) -> str | None:
        """When the kill switch was last cleared (breakers measure from there)."""
        v = self.db.execute("SELECT MAX(at) FROM risk_events WHERE kind = 'resume'").fetchone()[0]
        return None if v is None else str(v)

    def equity_high_since(self, since: pd.Timestamp) -> float | None:
        v = self.db.execute("SELECT MAX(equity) FROM equity WHERE at >= ?", (iso(since),)).fetchone()[0]
        return None if v is None else float(v)

    def first_marks_since(self, since: pd.Timestamp) -> dict[str, float]:
        """Marks of the first position snapshot at or after ``since`` (start-of-day marks)."""
        row = self.db.execute("SELECT MIN(snapshot) FROM positions WHERE at >= ?", (iso(since),)).fetchone()[0]
        if row is None:
            return {}
        return {
            r["symbol"]: float(r["mark"])
            for r in self.rows(
                "SELECT symbol, mark FROM positions WHERE snapshot = ? AND symbol != '' AND mark IS NOT NULL", (row,)
            )
        }

    def realized_today(self, day: str) -> dict[str, float]:
        return {
            r["symbol"]: float(r["p"] or 0.0)
            for r in self.rows(
                "SELECT symbol, SUM(COALESCE(realized_pnl, 0)) p FROM fills WHERE day = ? GROUP BY symbol", (day,)
            )
        }

    def control_log(self, limit: int = 30) -> list[dict[str, Any]]:
        """Control actions (stop, resume, approve, reject) with who asked and when."""
        return self.rows(
            "SELECT id, at, command, args, requested_by, processed_at, processed_by, result FROM control"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        )

    def record_control(
        self, at: pd.Timestamp, command: str, args: Mapping[str, Any], by: str, result: Mapping[str, Any]
    ) -> int:
        """A control action handled in place (no runner needed), recorded with who and when."""
        with self.tx() as db:
            cur = db.execute(
                "INSERT INTO control (at, command, args, requested_by, processed_at, processed_by, result) VALUES (?,?,?,?,?,?,?)",
                (iso(at), command, json.dumps(dict(args)), by, iso(at), by, json.dumps(dict(result), default=str)),
            )
            return int(cur.lastrowid or 0)

    def orders_fill_mismatch(self) -> list[dict[str, Any]]:
        """Orders whose filled quantity differs from the sum of their fills (restore's self-check)."""
        return self.rows(
            "SELECT o.order_ref, o.filled, COALESCE((SELECT SUM(f.quantity) FROM fills f WHERE f.order_ref = o.order_ref), 0)"
            " summed FROM orders o WHERE ABS(o.filled - COALESCE((SELECT SUM(f.quantity) FROM fills f"
            " WHERE f.order_ref = o.order_ref), 0)) > 1e-6"
        )

    # --- backup (issue 13) -------------------------------------------------------------------------------
    def backup_to(self, dest: str | os.PathLike[str]) -> Path:
        """A consistent copy of the live ledger with SQLite's online backup API (writers keep going)."""
        out = Path(dest)
        out.parent.mkdir(parents=True, exist_ok=True)
        target = sqlite3.connect(make_private(out))
        try:
            self.db.backup(target, pages=256)
        finally:
            target.close()
        return out


def inspect_ledger(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check that a file is a bridge ledger (read-only); returns its schema version and counts.

    Raises:
        LedgerError: not a SQLite file, a newer schema, or tables missing.
    """
    p = Path(path)
    if not p.is_file():
        raise LedgerError("backup file not found", found=str(p), fix="pass a file written by `bridge backup`")
    try:
        db = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            db.execute("PRAGMA quick_check").fetchone()
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            missing = [t for t in REQUIRED_TABLES if t not in tables]
            counts = {
                t: int(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
                for t in ("orders", "fills")
                if t in tables
            }
        finally:
            db.close()
    except sqlite3.DatabaseError as err:
        raise LedgerError(
            "the file is not a bridge ledger", found=f"{p}: {err}", fix="pass a file written by `bridge backup`"
        ) from None
    if missing:
        raise LedgerError(
            "the file is not a bridge ledger",
            found=f"{p}: tables missing: {', '.join(missing)}",
            fix="pass a file written by `bridge backup`",
        )
    if version > SCHEMA_VERSION:
        raise LedgerError(
            "the backup was written by a newer bridge",
            found=f"schema {version} > {SCHEMA_VERSION}",
            fix="upgrade quantlab",
        )
    return {"path": str(p), "schema": version, **counts}
