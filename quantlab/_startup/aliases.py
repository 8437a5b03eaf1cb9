"""Old public module paths, kept importable for a release: ``quantlab.strategy`` is
:mod:`quantlab.engine.strategy` (the same module object, so monkeypatching and
``isinstance`` behave as before).

These are import-system aliases rather than files at the old paths, and stay so (checked
after the engine move landed). A re-export file (``from quantlab.engine.strategy import *``)
makes a second module object: ``isinstance`` still holds, but monkeypatching the old path
no longer reaches the code. A file that swaps itself for the new module in ``sys.modules``
keeps plain modules identical, but not a package: ``quantlab.backends.checkpoint`` would
then be found through the new package's ``__path__`` and loaded a second time under the
old name (tried: two module objects), so it would need one such file per submodule, kept
in step by hand. One finder covers every old path and submodule.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

OLD_TO_NEW = {
    "quantlab.strategy": "quantlab.engine.strategy",
    "quantlab.expr": "quantlab.engine.expr",
    "quantlab.registry": "quantlab.engine.registry",
    "quantlab.signals": "quantlab.engine.signals",
    "quantlab.config": "quantlab.engine.settings",
    "quantlab.intervals": "quantlab.engine.intervals",
    "quantlab.sweep": "quantlab.engine.sweep",
    "quantlab.backends": "quantlab.engine.backends",  # and its submodules
    "quantlab.load": "quantlab.runs.load",
    "quantlab.headline": "quantlab.runs.headline",
    "quantlab.verdict": "quantlab.runs.verdict",
    "quantlab.basis": "quantlab.data.basis",
}


def new_name(fullname: str) -> str | None:
    """The module an old path now names, or None when ``fullname`` is not an old path."""
    for old, new in OLD_TO_NEW.items():
        if fullname == old or fullname.startswith(old + "."):
            return new + fullname[len(old) :]
    return None


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self) -> None:
        self._own_specs: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = new_name(fullname)
        return importlib.machinery.ModuleSpec(fullname, self, origin=new) if new else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(str(spec.origin))
        self._own_specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system stamped the alias's spec on the real module: give it back its own.
        module.__spec__ = self._own_specs.pop(module.__spec__.name, module.__spec__)  # type: ignore[union-attr]


def install() -> None:
    """Put the alias finder first (before the path finder, which would otherwise load a
    second copy of ``quantlab.backends.X`` from the aliased package's ``__path__``)."""
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.insert(0, _Alias())
