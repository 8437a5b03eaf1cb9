"""One runner per ledger: an OS file lock held for the runner's lifetime.

Why a lock and not a lease row: ``flock`` is taken atomically by the kernel and released by
the kernel when the holder exits, however it exits (SIGKILL, OOM, power loss of the
process), so there is never a stale lease to judge and no takeover race between two
starters that both think the holder is dead. A row would need exactly that judgement (pid
alive? same host? heartbeat age?) and a second transaction to take it over. The lock file
sits next to the ledger (``<ledger>.lock``); SQLite in WAL mode already requires a local
filesystem, where ``flock`` is reliable. The holder writes its pid, host, run id and start
time into the file so a refused starter can name it.

The lock is taken **before** connecting to the gateway: a second runner never connects,
never reconciles (so never voids the first runner's orders) and never sends anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import pandas as pd

from bridge.errors import LedgerError


def lock_path(ledger_path: Path) -> Path:
    return ledger_path.with_name(ledger_path.name + ".lock")


def read_holder(path: Path) -> dict[str, Any]:
    """What the current holder wrote into the lock file ({} if unreadable or not yet written)."""
    try:
        return dict(json.loads(path.read_text() or "{}"))
    except (OSError, ValueError):
        return {}


def probe(ledger_path: Path) -> dict[str, Any]:
    """Who holds the ledger's lock, for ``bridge status`` and ``bridge stop``.

    Returns the holder's details with ``state``: ``alive`` (a process holds the lock),
    ``stale`` (nobody holds it but the file still names a holder: that process died
    without releasing, e.g. SIGKILL; the kernel already freed the lock, nothing to clean
    up), ``none``, or ``unknown`` (the file cannot be opened: ``error`` says why); and
    ``lock``, the lock file's path. The check takes a shared lock for
    an instant, never creates the file; :meth:`LedgerLease.acquire` retries briefly so a
    runner starting at that instant is not refused.
    """
    path = lock_path(Path(ledger_path))
    out: dict[str, Any] = {"state": "none", "lock": str(path)}
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return out
    except OSError as err:  # e.g. another user's private lock file: do not guess "none"
        return {**out, "state": "unknown", "error": f"{type(err).__name__}: {err.strerror}"}
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return {**read_holder(path), **out, "state": "alive"}
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    holder = read_holder(path)
    return {**holder, **out, "state": "stale"} if holder else out


#: How long :meth:`LedgerLease.acquire` keeps trying while the lock is taken (a status
#: probe holds it for microseconds; a runner holds it for its lifetime).
_ACQUIRE_PATIENCE = 0.25


class LedgerLease:
    """The exclusive right of one process to run a bridge on one ledger."""

    def __init__(self, ledger_path: Path) -> None:
        self.path = lock_path(Path(ledger_path))
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, run_id: str) -> None:
        """Take the lock without waiting, or raise naming the holder and the fix.

        Raises:
            LedgerError: another process holds the lock (another bridge runs on this ledger).
        """
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # private, like the ledger
        if not _try_lock(fd):
            os.close(fd)
            raise LedgerError(
                "another bridge is running on this ledger",
                found=self._describe_holder(),
                fix="stop it first (`bridge stop --shutdown --ledger ...`), or run this strategy with its "
                "own --ledger; the lock is released as soon as that process exits",
            ) from None
        if os.fstat(fd).st_mode & 0o077:  # a lock file left by an older bridge
            with contextlib.suppress(PermissionError):  # another user's file: only its owner may chmod
                os.fchmod(fd, 0o600)
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "run_id": run_id,
            "since": pd.Timestamp.now(tz="UTC").isoformat(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (the kernel does it anyway when the process exits)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _describe_holder(self) -> str:
        # the winner writes its details right after locking: give it a moment
        holder: dict[str, Any] = {}
        for _ in range(20):
            holder = read_holder(self.path)
            if holder:
                break
            time.sleep(0.025)
        if not holder:
            return f"{self.path} is locked (holder details not written yet)"
        return (
            f"pid {holder.get('pid')} on {holder.get('host')} (run {holder.get('run_id')}) holds {self.path} "
            f"since {holder.get('since')}"
        )


def _try_lock(fd: int) -> bool:
    """The exclusive lock without blocking, retried for a moment (see :func:`probe`)."""
    deadline = time.monotonic() + _ACQUIRE_PATIENCE
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
