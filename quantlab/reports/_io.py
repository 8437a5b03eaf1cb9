"""Atomic writes into the reports folder, with one clear error when it is not writable."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from quantlab.errors import ReportError


def unwritable(folder: Path, err: OSError) -> ReportError:
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


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temp file in the same folder, then rename).

    Raises:
        ReportError: the folder is not writable.
    """
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise unwritable(path.parent, err) from None
    return path
