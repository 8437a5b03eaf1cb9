"""Atomic writes into the reports folder, with one clear error when it is not writable."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from quantlab.runs.record import ensure_folder, unwritable

__all__ = ["ensure_folder", "unwritable", "write_text"]


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
