"""Process environment defaults that must be set before numba is imported.

``NUMBA_CACHE_DIR`` defaults to a writable per-user folder so compiled kernels are
reused across runs (an unwritable cache made vectorbt's import hang, vectorbt #816).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
        return True
    except OSError:
        return False


def default_cache_root() -> Path:
    """Return the quantlab cache folder (``QUANTLAB_CACHE_DIR`` or ``~/.cache/quantlab``)."""
    env = os.environ.get("QUANTLAB_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "quantlab"


def configure() -> None:
    """Point numba's on-disk cache at a writable folder unless the user chose one."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    for candidate in (default_cache_root() / "numba", Path(tempfile.gettempdir()) / "quantlab-numba"):
        if _writable(candidate):
            os.environ["NUMBA_CACHE_DIR"] = str(candidate)
            return


configure()
