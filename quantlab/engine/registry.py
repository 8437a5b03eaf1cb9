"""Find strategies: modules or packages in ``research/`` that define ``SPEC``.

``get_strategy`` also accepts a dotted module path (``mypkg.my_strategy``) or a file path
(``path/to/my_strategy.py``), so strategies can live outside the repository.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path

from quantlab.engine.strategy import StrategySpec
from quantlab.errors import StrategyError, suggest


def _research_names() -> list[str]:
    import research

    return sorted(info.name for info in pkgutil.iter_modules(research.__path__) if not info.name.startswith("_"))


def _spec_from_module(module: object, where: str) -> StrategySpec:
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, StrategySpec):
        raise StrategyError(
            f"{where} does not define SPEC = StrategySpec(...)",
            found=type(spec).__name__ if spec is not None else "no SPEC",
            fix="see research/sma_cross for the layout of a strategy module",
        )
    return spec


def _import(module_name: str, where: str) -> object:
    """Import a strategy module; its own errors (syntax, imports) become a StrategyError."""
    try:
        return importlib.import_module(module_name)
    except StrategyError:
        raise
    except ModuleNotFoundError as err:
        if err.name == module_name:
            raise
        raise StrategyError(
            f"{where} failed to import", found=f"{type(err).__name__}: {err}", fix="fix the module"
        ) from None
    except Exception as err:  # a broken user module must not become a traceback
        raise StrategyError(
            f"{where} failed to import", found=f"{type(err).__name__}: {err}", fix="fix the module"
        ) from None


def list_strategies(errors: list[StrategyError] | None = None) -> list[StrategySpec]:
    """Every strategy shipped in (or dropped into) ``research/``.

    Modules without ``SPEC`` are helpers and are skipped. A module that fails to import
    raises, unless ``errors`` is given: then its error is appended there and the others
    are still listed.
    """
    specs = []
    for name in _research_names():
        try:
            module = _import(f"research.{name}", f"research/{name}")
        except StrategyError as err:
            if errors is None:
                raise
            errors.append(err)
            continue
        if getattr(module, "SPEC", None) is not None:
            specs.append(_spec_from_module(module, f"research/{name}"))
    return specs


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
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # syntax errors, failing imports: one clear message
            del sys.modules[module_name]
            raise StrategyError(
                f"{path} failed to import", found=f"{type(err).__name__}: {err}", fix="fix the module"
            ) from None
    return _spec_from_module(sys.modules[module_name], str(path))


def get_strategy(name: str | StrategySpec) -> StrategySpec:
    """Return the strategy called ``name`` (registry name, dotted module path or .py file)."""
    if isinstance(name, StrategySpec):
        return name
    if name.endswith(".py") or "/" in name:
        return _load_file(Path(name))
    if "." in name:
        try:
            return _spec_from_module(_import(name, name), name)
        except ModuleNotFoundError:
            raise StrategyError("strategy module not found", found=name, fix="check the dotted module path") from None
    names = _research_names()
    if name not in names:
        hint = suggest(name, names, otherwise="run `quantlab strategies` to list them")
        raise StrategyError(f"unknown strategy {name!r}", found=f"available: {', '.join(names)}", fix=hint)
    return _spec_from_module(_import(f"research.{name}", f"research/{name}"), f"research/{name}")
