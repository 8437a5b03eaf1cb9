"""Run ids and run folders: the part of ``reports/<run_id>/`` the sweep backends need.

A chunked sweep checkpoints into the folder its run will be saved in, so the engine must
be able to create and find run folders; where the reports folder is (``--reports``,
``$QUANTLAB_REPORTS``) and what goes into a run is decided above it, in :mod:`quantlab.runs`.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

from quantlab.errors import ReportError


def new_run_id(kind: str, cfg_hash: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"{kind}-{now.strftime('%Y%m%d-%H%M%S')}-{cfg_hash[:8]}"


def unwritable(folder: Path, err: OSError) -> ReportError:
    """The one error for a reports folder (or a folder inside it) that cannot be written."""
    return ReportError(
        "cannot write to the reports folder",
        found=f"{folder} ({err.strerror or err})",
        fix="make it writable, or choose another folder with --reports or QUANTLAB_REPORTS",
    )


def ensure_folder(folder: Path) -> Path:
    """Create ``folder`` if needed and check that a file can be written in it.

    Raises:
        ReportError: the folder cannot be created or written.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise unwritable(folder, err) from None
    return folder


def create_run_folder(base: Path, run_id: str) -> tuple[str, Path]:
    """A new, empty folder ``base/<run_id>``; a second run with the same id gets ``<id>-2``
    (never the first run's folder). ``base`` must exist (see :func:`ensure_folder`)."""
    for n in range(1, 10_000):
        candidate = run_id if n == 1 else f"{run_id}-{n}"
        try:
            (base / candidate).mkdir()
        except FileExistsError:
            continue
        except OSError as err:
            raise unwritable(base, err) from None
        return candidate, base / candidate
    raise ReportError("too many runs with the same id", found=run_id, fix="wait a second and run again")
