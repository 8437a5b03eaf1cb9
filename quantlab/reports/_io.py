"""Atomic writes into the reports folder, with one clear error when it is not writable."""

from __future__ import annotations

from pathlib import Path

from quantlab.data.atomic import atomic_write_text
from quantlab.runs.record import ensure_folder, unwritable

__all__ = ["ensure_folder", "unwritable", "write_text"]


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temp file in the same folder, then rename).

    Raises:
        ReportError: the folder is not writable.
    """
    try:
        return atomic_write_text(path, text)
    except OSError as err:
        raise unwritable(path.parent, err) from None
