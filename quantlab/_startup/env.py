"""Process environment defaults that must be set before numba is imported.

``NUMBA_CACHE_DIR`` defaults to a writable folder so compiled kernels are reused across
runs (an unwritable cache made vectorbt's import hang, vectorbt #816).

Numba decides whether a cached function is stale by looking only at the file that
defines it, so editing a helper (say ``quantlab/kernels/rolling.py``) would leave every
strategy kernel that calls it running the old compiled code. quantlab therefore stamps a
hash of its numba sources (quantlab/, research/, bridge/ and the numba version) in the
cache folder and, when it changes, deletes the cache entries of those folders only;
third-party entries (vectorbt's, which take ~20 s to rebuild) are kept.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from importlib import metadata
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


_CHECKOUT = Path(__file__).resolve().parent.parent.parent


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


_SOURCE_PACKAGES = ("quantlab", "research", "bridge")
_STAMP = "quantlab-sources.sha256"


def numba_cache_subdir(folder: Path) -> str:
    """The cache subfolder numba uses for kernels defined in ``folder``
    (``numba.core.caching._CacheLocator.get_suitable_cache_subpath``)."""
    path = os.path.abspath(folder)
    return f"{os.path.basename(path)}_{hashlib.sha1(path.encode()).hexdigest()}"


def _source_folders() -> list[Path]:
    folders = []
    for package in _SOURCE_PACKAGES:
        root = _CHECKOUT / package
        if root.is_dir():
            folders += [root, *sorted(p for p in root.rglob("*") if p.is_dir() and p.name != "__pycache__")]
    return folders


def sources_digest() -> str:
    """Hash of quantlab's own numba sources (files that mention numba) and the numba version."""
    digest = hashlib.sha256()
    try:
        digest.update(metadata.version("numba").encode())
    except metadata.PackageNotFoundError:
        pass
    for folder in _source_folders():
        for path in sorted(folder.glob("*.py")):
            text = path.read_bytes()
            if b"numba" in text:
                digest.update(str(path.relative_to(_CHECKOUT)).encode())
                digest.update(text)
    return digest.hexdigest()


def invalidate_stale_kernels(cache: Path) -> bool:
    """Drop cached kernels of quantlab's folders when any of its sources changed."""
    stamp = cache / _STAMP
    digest = sources_digest()
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    for folder in _source_folders():
        shutil.rmtree(cache / numba_cache_subdir(folder), ignore_errors=True)
    shutil.rmtree(default_cache_root() / "sweeps", ignore_errors=True)  # where older versions wrote them
    shutil.rmtree(cache / "quantlab-sweeps", ignore_errors=True)  # quantlab.engine.codegen.SWEEPS_SUBDIR
    # ... and numba's compiled code of those generated modules (each source change writes
    # them under new keys, so the old entries would otherwise pile up for ever)
    shutil.rmtree(cache / numba_cache_subdir(cache / "quantlab-sweeps"), ignore_errors=True)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest)
    except OSError:
        pass
    return True


def configure() -> None:
    """Point numba's on-disk cache at a writable folder unless the user chose one, and
    invalidate quantlab's cached kernels if its sources changed since they were compiled."""
    if not os.environ.get("NUMBA_CACHE_DIR"):
        for candidate in (default_cache_root() / "numba", Path(tempfile.gettempdir()) / "quantlab-numba"):
            if _writable(candidate):
                os.environ["NUMBA_CACHE_DIR"] = str(candidate)
                break
    if os.environ.get("NUMBA_CACHE_DIR") and os.environ.get("QUANTLAB_KEEP_KERNEL_CACHE") != "1":
        invalidate_stale_kernels(Path(os.environ["NUMBA_CACHE_DIR"]))


configure()
