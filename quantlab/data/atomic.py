"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half.

The one copy for quantlab and bridge (run artifacts, report pages, sweep checkpoints,
generated sweep modules, the bundled store). It lives in ``quantlab.data`` because that
is the storage layer every other layer may import (engine, research wrappers, bridge).
The HDF5 store's own transactions (lock, copy, fsync) are in ``quantlab.data._txn``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_text"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object], *, mode: int = 0o644) -> Path:
    """Create or replace ``path`` in one step.

    ``write`` fills a fresh temporary file in the same folder (so the final rename stays
    on one file system, where it is atomic); the file then gets ``mode`` (a temporary
    file starts private, 0o600) and replaces ``path``. If ``write`` raises, the target
    is untouched and the temporary file is removed.

    Args:
        path: the file to write; its folder must exist.
        write: called with the temporary file's path; writes the whole content there.
        mode: permission bits of the finished file.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        OSError: the folder is missing or not writable (callers turn it into their error).
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str, *, mode: int = 0o644) -> Path:
    """Create or replace the text file ``path`` (UTF-8) in one step; see :func:`atomic_write`."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), mode=mode)
