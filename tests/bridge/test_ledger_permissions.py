"""Ledger files are private (0600): they hold account ids and the whole order history.

Checked under a permissive umask (0022, the usual default), for the database, its WAL and
shared-memory files, the lock file, a backup, the copy kept by a restore and the restored
ledger; a ledger created 0644 by an older bridge is tightened when opened.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from bridge.config import load_config
from bridge.ledger.backup import restore
from bridge.ledger.lease import LedgerLease, lock_path
from bridge.ledger.store import Ledger

NOW = pd.Timestamp("2024-01-05 14:30", tz="UTC")


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _write(led: Ledger) -> None:
    led.latch(NOW, "test", "manual_stop")  # a write: the WAL and SHM files exist now


def test_a_new_ledger_and_its_wal_and_shm_are_private(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    _write(led)
    files = [tmp_path / "l.sqlite", tmp_path / "l.sqlite-wal", tmp_path / "l.sqlite-shm"]
    assert all(f.exists() for f in files)
    assert {f.name: mode(f) for f in files} == {f.name: "0o600" for f in files}
    led.close()


def test_the_lock_file_is_private(tmp_path: Path) -> None:
    lease = LedgerLease(tmp_path / "l.sqlite")
    lease.acquire("r1")
    try:
        assert mode(lock_path(tmp_path / "l.sqlite")) == "0o600"
    finally:
        lease.release()


def test_an_old_world_readable_ledger_is_tightened_when_opened(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    _write(led)
    led.close()
    for f in tmp_path.glob("l.sqlite*"):
        f.chmod(0o644)
    led = Ledger(tmp_path / "l.sqlite", create=False)
    _write(led)
    assert {f.name: mode(f) for f in tmp_path.glob("l.sqlite*")} == {
        f.name: "0o600" for f in tmp_path.glob("l.sqlite*")
    }
    led.close()


def test_backups_the_restored_ledger_and_the_kept_copy_are_private(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    _write(led)
    out = led.backup_to(tmp_path / "backups" / "b.sqlite")
    led.close()
    assert mode(out) == "0o600"
    cfg = load_config(None, overrides={"ledger": {"path": str(tmp_path / "l.sqlite")}})
    result = restore(cfg, str(out))
    assert mode(Path(result["restored"])) == "0o600"
    assert mode(Path(result["previous_kept_as"])) == "0o600"
    fresh = load_config(None, overrides={"ledger": {"path": str(tmp_path / "new.sqlite")}})
    assert mode(Path(restore(fresh, str(out))["restored"])) == "0o600"


def test_the_daily_report_files_are_private(tmp_path: Path) -> None:
    """They list the day's orders and fills, as the ledger does."""
    from bridge.ops.report import write_report

    led = Ledger(tmp_path / "l.sqlite")
    jpath, hpath, _ = write_report(led, "2024-01-05", tmp_path / "reports")
    led.close()
    assert (mode(jpath), mode(hpath)) == ("0o600", "0o600")
