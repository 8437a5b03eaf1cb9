"""``bridge backup`` / ``bridge restore``: ledger copies with SQLite's online backup API.

A backup is taken while the bridge runs (the backup API copies a consistent snapshot;
writers are never blocked for long). A restore refuses while a runner is alive, checks
that the file is a ledger (tables, schema, ``quick_check``) and that it reconciles with
itself (baseline + fills = the last position snapshot; every order's filled quantity =
its fills), keeps the current ledger as ``<name>.before-restore-<time>.sqlite``, then
copies the backup in through the same API (so the WAL is handled by SQLite, not by us).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd

from bridge.config import BridgeConfig
from bridge.control import runner_alive
from bridge.errors import LedgerError
from bridge.ledger.store import Ledger, inspect_ledger, make_private

_TOL = 1e-6


def backup_dir(cfg: BridgeConfig) -> Path:
    return Path(cfg.ops.backup_dir).expanduser() if cfg.ops.backup_dir else cfg.ledger_path().parent / "backups"


def backup(cfg: BridgeConfig, dest: str | None = None, prune: bool = False) -> dict[str, Any]:
    """Copy the ledger to ``dest`` (default ``backups/<ledger>-<UTC time>.sqlite``)."""
    ledger = Ledger(cfg.ledger_path(), synchronous=cfg.ledger.synchronous, create=False)
    try:
        stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S%f")
        out = Path(dest) if dest else backup_dir(cfg) / f"{cfg.ledger_path().stem}-{stamp}.sqlite"
        if out.exists():
            raise LedgerError(
                "the backup file already exists", found=str(out), fix="choose another --out or remove the old file"
            )
        ledger.backup_to(out)
    finally:
        ledger.close()
    info = inspect_ledger(out)
    removed: list[str] = []
    if prune and not dest:
        olds = sorted(backup_dir(cfg).glob(f"{cfg.ledger_path().stem}-*.sqlite"))
        for old in olds[: max(0, len(olds) - cfg.ops.backup_keep)]:
            old.unlink()
            removed.append(str(old))
    return {"backup": str(out), **info, "pruned": removed}


def self_check(path: Path) -> list[str]:
    """Reasons the ledger at ``path`` does not reconcile with itself (empty: it does)."""
    led = Ledger(path, create=False)
    try:
        problems: list[str] = []
        expected = led.expected_positions()
        _, snap = led.last_positions()
        if led.has_baseline() and snap:
            for sym in sorted(set(expected) | set(snap)):
                want, have = expected.get(sym, 0.0), float((snap.get(sym) or {}).get("quantity") or 0.0)
                if abs(want - have) > _TOL:
                    problems.append(f"{sym}: baseline + fills = {want:g} but the last position snapshot has {have:g}")
        for r in led.orders_fill_mismatch():
            problems.append(f"order {r['order_ref']}: filled {r['filled']:g} but its fills add up to {r['summed']:g}")
        return problems
    finally:
        led.close()


def restore(cfg: BridgeConfig, src: str, force: bool = False) -> dict[str, Any]:
    """Replace the configured ledger with the backup ``src`` (refused while a runner is alive)."""
    info = inspect_ledger(src)  # not a ledger: nothing is touched
    problems = self_check(Path(src))
    if problems and not force:
        raise LedgerError(
            "the backup does not reconcile with itself",
            found="; ".join(problems[:5]),
            fix="pick an older backup, or pass --force to restore it anyway and reconcile with the broker at start",
        )
    target = cfg.ledger_path()
    if not target.parent.is_dir():
        raise LedgerError(
            "the ledger's folder does not exist",
            found=str(target.parent),
            fix="check --ledger (or [ledger] path), or create the folder first",
        )
    if target.exists() and target.resolve() == Path(src).resolve():
        raise LedgerError(
            "the backup file is the current ledger", found=str(target), fix="pass a file written by `bridge backup`"
        )
    kept = None
    if target.exists():
        current = Ledger(target, create=False)
        try:
            if runner_alive(current, pd.Timestamp.now(tz="UTC")) is not None:
                raise LedgerError(
                    "a bridge is running on this ledger",
                    found=str(target),
                    fix="stop it first (`bridge stop --shutdown`)",
                )
            kept = target.with_name(f"{target.stem}.before-restore-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}.sqlite")
            current.backup_to(kept)
        finally:
            current.close()
    src_db = sqlite3.connect(f"file:{Path(src)}?mode=ro", uri=True)
    dst_db = sqlite3.connect(make_private(target))
    try:
        src_db.backup(dst_db)
    finally:
        src_db.close()
        dst_db.close()
    return {
        "restored": str(target),
        "from": info["path"],
        "schema": info["schema"],
        "previous_kept_as": str(kept) if kept else None,
        "self_check": problems or "ok",
        "note": "the bridge reconciles the restored ledger with the broker when it starts",
    }
