"""Where things live: the project root, the market-data store, reports, caches.

Resolution order for the store: explicit argument, then ``QUANTLAB_STORE``, then
``data/market.h5`` under the project root. The project root is the nearest folder,
from the working directory upwards, that holds ``data/market.h5`` or a quantlab
``pyproject.toml``; failing that, the checkout this package was installed from.
Notebooks in ``studies/`` therefore find the same store as the shell.
"""

from __future__ import annotations

import os
from pathlib import Path

from quantlab._startup.env import default_cache_root

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def _is_project_root(folder: Path) -> bool:
    if (folder / "data" / "market.h5").is_file():
        return True
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        try:
            return 'name = "quantlab"' in pyproject.read_text(encoding="utf-8")
        except OSError:
            return False
    return False


def project_root(start: Path | None = None) -> Path:
    """Return the quantlab project folder that contains ``start`` (default: cwd)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if _is_project_root(folder):
            return folder
    if _is_project_root(_PACKAGE_ROOT):
        return _PACKAGE_ROOT
    return here


def store_path(path: str | os.PathLike[str] | None = None) -> Path:
    """Return the HDF5 store path: ``path``, ``$QUANTLAB_STORE`` or ``<root>/data/market.h5``."""
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get("QUANTLAB_STORE")
    if env:
        return Path(env).expanduser()
    return project_root() / "data" / "market.h5"


def reports_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Return the reports folder: ``path``, ``$QUANTLAB_REPORTS`` or ``<root>/reports``."""
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get("QUANTLAB_REPORTS")
    if env:
        return Path(env).expanduser()
    return project_root() / "reports"


def cache_dir(sub: str = "") -> Path:
    """Return (and create) a folder under the quantlab cache root."""
    folder = default_cache_root() / sub if sub else default_cache_root()
    folder.mkdir(parents=True, exist_ok=True)
    return folder
