"""Find strategies: modules or packages in ``research/`` that define ``SPEC``.

``get_strategy`` also accepts a dotted module path (``mypkg.my_strategy``) or a file path
(``path/to/my_strategy.py``), so strategies can live outside the repository.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path

from quantlab.errors import StrategyError
from quantlab.strategy import StrategySpec


def _research_names() -> list[str]:
    import research

    return sorted(
        info.name for info in pkgutil.iter_modules(research.__path__) if not info.name.startswith("_")
    )


def _spec_from_module(module: object, where: str) -> StrategySpec:
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, StrategySpec):
        raise StrategyError(
            f"{where} does not define SPEC = StrategySpec(...)",
            found=type(spec).__name__ if spec is not None else "no SPEC",
            fix="see research/sma_cross for the layout of a strategy module",
        )
    return spec


def list_strategies() -> list[StrategySpec]:
    """Every strategy shipped in (or dropped into) ``research/``."""
    return [_spec_from_module(importlib.import_module(f"research.{name}"), f"research/{name}") for name in _research_names()]


def _load_file(path: Path) -> StrategySpec:
    if not path.is_file():
        raise StrategyError("strategy file not found", found=str(path), fix="check the path")
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    module_name = f"quantlab_user_strategy_{path.stem}_{digest}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise StrategyError("cannot import the strategy file", found=str(path))
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return _spec_from_module(sys.modules[module_name], str(path))


def get_strategy(name: str | StrategySpec) -> StrategySpec:
    """Return the strategy called ``name`` (registry name, dotted module path or .py file)."""
    if isinstance(name, StrategySpec):
        return name
    if name.endswith(".py") or "/" in name:
        return _load_file(Path(name))
    if "." in name:
        try:
            return _spec_from_module(importlib.import_module(name), name)
        except ModuleNotFoundError as err:
            raise StrategyError("strategy module not found", found=name, fix="check the dotted module path") from err
    names = _research_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "run `quantlab strategies` to list them"
        raise StrategyError(f"unknown strategy {name!r}", found=f"available: {', '.join(names)}", fix=hint)
    return _spec_from_module(importlib.import_module(f"research.{name}"), f"research/{name}")
