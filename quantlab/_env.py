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


_CHECKOUT = Path(__file__).resolve().parent.parent


def default_cache_root() -> Path:
    """The quantlab cache folder: ``$QUANTLAB_CACHE_DIR``, else ``.cache/`` in the checkout
    quantlab runs from (the folder ``make`` uses, so the shell, notebooks and make share one
    compiled cache), else ``~/.cache/quantlab``."""
    env = os.environ.get("QUANTLAB_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    if (_CHECKOUT / "pyproject.toml").is_file() and _writable(_CHECKOUT / ".cache"):
        return _CHECKOUT / ".cache"
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
