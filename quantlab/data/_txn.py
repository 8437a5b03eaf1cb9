"""Crash-safe writes: lock, copy, change the copy, fsync, atomically replace.

HDF5 is not crash-safe in place: a process killed while it has the file open for
writing can leave B-trees and the superblock half updated and the file
unopenable. So writers never touch the store itself:

1. take an exclusive ``flock`` on ``<store>.lock`` (serialises writers; the kernel
   drops it when a process dies, so a killed writer never leaves a stale lock);
2. delete temp files a killed writer may have left (we hold the lock, so none is live);
3. copy the store to ``.<store>.tmp-<pid>`` in the same folder (same file system,
   so the final rename is atomic);
4. append in place on the copy (resizable chunked datasets: only new chunks and
   the last partial chunk are written);
5. close, ``fsync`` the copy, ``os.replace`` it onto the store, ``fsync`` the folder.

A crash before step 5 leaves the original untouched (plus a temp file that the
next writer removes); after the rename the new file is complete. Readers never
need the lock: they open either the old inode or the new one, never a file that is
being written. The cost is one sequential copy of the store per write
transaction, measured in ``benchmarks/bench_data.py`` (copy_file_range makes it
roughly disk speed): negligible for stores of tens of MB, about a second per GB.
Batch many series into one transaction (``write_many``) when importing a lot.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import h5py

from quantlab.data._h5 import check_readable, create_file, open_write
from quantlab.errors import StoreError

LOCK_TIMEOUT_SECONDS = 60.0


def lock_path(store: Path) -> Path:
    """The lock file that serialises writers of ``store``."""
    return store.with_name(store.name + ".lock")


def temp_prefix(store: Path) -> str:
    """File-name prefix of a writer's private copy of ``store``."""
    return f".{store.name}.tmp-"


@contextlib.contextmanager
def _exclusive_lock(store: Path, timeout: float) -> Iterator[None]:
    path = lock_path(store)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, timeout)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _acquire(fd: int, path: Path, timeout: float) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        deadline = time.monotonic() + timeout
        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
                return
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
    else:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
    raise StoreError(
        "Another quantlab process is writing the store",
        found=f"lock {path} held for more than {timeout:.0f} s",
        fix="wait for the other import/fetch/update to finish and try again",
    )


def _fsync_path(path: Path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # pragma: no cover - platforms that cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def remove_stale_temps(store: Path) -> list[Path]:
    """Delete private copies left by killed writers (call only while holding the lock)."""
    removed = []
    for leftover in store.parent.glob(temp_prefix(store) + "*"):
        with contextlib.suppress(OSError):
            leftover.unlink()
            removed.append(leftover)
    return removed


class Transaction:
    """The open private copy of the store; changes are published only if ``changed``."""

    def __init__(self, file: h5py.File, temp: Path) -> None:
        self.file = file
        self.temp = temp
        self.changed = False


@contextlib.contextmanager
def write_transaction(store: Path, *, lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[Transaction]:
    """Yield a :class:`Transaction` on a private copy of ``store``; publish it atomically.

    The store (and its folder) is created if missing. If the block raises, or
    leaves ``changed`` False, the store is left exactly as it was.

    Raises:
        StoreError: the existing file is not a readable quantlab store, the lock
            could not be taken within ``lock_timeout`` seconds, or the folder is not
            writable / the disk is full.
    """
    store = Path(store)
    try:
        with _transaction(store, lock_timeout) as txn:
            yield txn
    except OSError as err:
        raise StoreError(
            f"Cannot write the store {store}",
            found=f"{type(err).__name__}: {err}",
            fix="check that the folder is writable and the disk is not full; the store was left unchanged",
        ) from err


@contextlib.contextmanager
def _transaction(store: Path, lock_timeout: float) -> Iterator[Transaction]:
    store.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(store, lock_timeout):
        remove_stale_temps(store)
        temp = store.with_name(f"{temp_prefix(store)}{os.getpid()}")
        file: h5py.File | None = None
        try:
            if store.exists():
                check_readable(store)
                shutil.copyfile(store, temp)
                shutil.copymode(store, temp)
                file = open_write(temp)
            else:
                file = create_file(temp)
            txn = Transaction(file, temp)
            yield txn
            file.close()
            file = None
            if txn.changed:
                _fsync_path(temp)
                os.replace(temp, store)
                _fsync_path(store.parent, directory=True)
        finally:
            if file is not None:
                with contextlib.suppress(Exception):
                    file.close()
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
