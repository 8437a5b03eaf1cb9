"""Machine checks for ``/health``: free disk where the ledger lives, memory in use.

An unattended bridge dies of a full disk (the ledger cannot commit) or of memory pressure
long before anything else; ``/health`` turns both into a 503 the supervisor can see.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psutil


def system_checks(ledger_path: str | os.PathLike[str], min_free_mb: float, max_memory_pct: float) -> dict[str, Any]:
    """``{"disk_ok", "memory_ok", "disk_free_mb", "memory_pct", "rss_mb"}`` (never raises)."""
    folder = Path(ledger_path).resolve().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = psutil.disk_usage(str(folder)).free / 2**20
    except OSError:
        free = 0.0
    mem = psutil.virtual_memory().percent / 100.0
    rss = psutil.Process().memory_info().rss / 2**20
    return {
        "disk_ok": free >= min_free_mb,
        "memory_ok": mem <= max_memory_pct,
        "disk_free_mb": round(free, 1),
        "memory_pct": round(mem, 4),
        "rss_mb": round(rss, 1),
    }
