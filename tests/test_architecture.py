"""The architecture rules of docs/architecture.md, checked on the import graph of the tree.

Every ``import`` and ``from ... import`` in every module of quantlab/, research/ and bridge/
counts, wherever it is written: at the top, inside a function (deferred) or under
``if TYPE_CHECKING:`` (a type-only import is still a dependency). Each rule has a
self-test that builds a small tree breaking it and checks that the rule notices.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("quantlab", "research", "bridge")

# Process set-up every layer may import: the root package's __init__ and the module that
# points numba's cache at a writable folder before any kernel is imported.
SETUP = {"quantlab", "quantlab._startup", "quantlab._startup.env"}
KERNEL_ALLOWED = {"numpy", "numba", "math", "__future__"}
ENGINE_ALLOWED = ("quantlab.engine", "quantlab.kernels", "quantlab.errors", "quantlab.data")
STRATEGY_ALLOWED = ("quantlab.engine.strategy", "quantlab.kernels")
BRIDGE_ALLOWED = ("quantlab.engine", "quantlab.kernels", "quantlab.errors", "quantlab.data", "quantlab.paths")
IB_MODULES = {"bridge.brokers.ib", "bridge.ib"}  # the IB broker (bridge.ib until BRIDGE-COMPOSED)
IB_LIBRARIES = ("ib_async", "ib_insync")


# --- the import graph -------------------------------------------------------------------


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def find_modules(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Every module under ``root/<package>`` that Python can import (no __pycache__, no
    generated or hidden folders)."""
    found: dict[str, Path] = {}
    for package in packages:
        base = root / package
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(root).parts
            if any(p.startswith((".", "__pycache__")) for p in rel):
                continue
            found[module_name(root, path)] = path
    return found


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Absolute names this module imports. ``from a import b`` counts as ``a.b`` when that
    is a module of the tree, else as ``a``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in modules else target)
    return out


def import_graph(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, set[str]]:
    modules = find_modules(root, packages)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


# --- the rules: each returns the offending "module -> import" lines ----------------------


def kernels_are_pure(graph: dict[str, set[str]]) -> list[str]:
    """quantlab.kernels and research/*/kernel.py import only numpy, numba, math and quantlab.kernels."""
    bad = []
    for module, targets in graph.items():
        if _within(module, "quantlab.kernels") or (module.startswith("research.") and module.endswith(".kernel")):
            bad += [
                f"{module} -> {t}"
                for t in sorted(targets)
                if t.split(".")[0] not in KERNEL_ALLOWED and not _within(t, "quantlab.kernels")
            ]
    return bad


def _quantlab_outside(graph: dict[str, set[str]], scope: str, allowed: Iterable[str]) -> list[str]:
    allowed = tuple(allowed)
    return [
        f"{module} -> {t}"
        for module, targets in sorted(graph.items())
        if _within(module, scope)
        for t in sorted(targets)
        if _within(t, "quantlab") and t not in SETUP and not any(_within(t, a) for a in allowed)
    ]


def engine_imports_only_kernels_errors_data(graph: dict[str, set[str]]) -> list[str]:
    return _quantlab_outside(graph, "quantlab.engine", ENGINE_ALLOWED)


def strategies_import_only_the_contract_and_kernels(graph: dict[str, set[str]]) -> list[str]:
    bad = _quantlab_outside(graph, "research", STRATEGY_ALLOWED)
    return bad + [
        f"{m} -> {t}"
        for m, ts in sorted(graph.items())
        if _within(m, "research")
        for t in sorted(ts)
        if _within(t, "bridge")
    ]


def bridge_imports_only_the_engine_layer(graph: dict[str, set[str]]) -> list[str]:
    return _quantlab_outside(graph, "bridge", BRIDGE_ALLOWED)


def only_the_ib_broker_imports_ib(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{m} -> {t}"
        for m, ts in sorted(graph.items())
        if m not in IB_MODULES
        for t in sorted(ts)
        if any(_within(t, lib) for lib in IB_LIBRARIES)
    ]


def research_never_reaches_the_bridge(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{m} -> {t}"
        for m, ts in sorted(graph.items())
        if _within(m, "quantlab") or _within(m, "research")
        for t in sorted(ts)
        if _within(t, "bridge")
    ]


def import_cycles(graph: dict[str, set[str]]) -> list[str]:
    """Strongly connected groups of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[str] = []
    counter = [0]

    def visit(v: str) -> None:  # recursion depth is bounded by the module count (a few hundred)
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(" <-> ".join(sorted(group)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(groups)


RULES = [
    kernels_are_pure,
    engine_imports_only_kernels_errors_data,
    strategies_import_only_the_contract_and_kernels,
    only_the_ib_broker_imports_ib,
    research_never_reaches_the_bridge,
    import_cycles,
]


# --- the rules on this tree ---------------------------------------------------------------


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(REPO)


def test_the_graph_sees_the_tree(graph: dict[str, set[str]]) -> None:
    """Guards the rules against passing vacuously (say, after a folder rename)."""
    assert {"quantlab.kernels.sim", "quantlab.engine.sweep", "research.sma_cross.kernel", "bridge.cli"} <= set(graph)
    assert "quantlab.kernels.sim" in graph["quantlab.engine.codegen"] or "numba" in graph["quantlab.engine.codegen"]
    assert "quantlab.engine.strategy" in graph["research.sma_cross.spec"]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_rule_holds(graph: dict[str, set[str]], rule) -> None:  # type: ignore[no-untyped-def]
    assert rule(graph) == [], f"{rule.__name__}: {rule.__doc__ or ''}"


def test_bridge_imports_only_the_engine_layer(graph: dict[str, set[str]]) -> None:
    assert bridge_imports_only_the_engine_layer(graph) == []


# --- each rule can fail ---------------------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> dict[str, set[str]]:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        for parent in path.relative_to(tmp_path).parents:
            if str(parent) != ".":
                (tmp_path / parent / "__init__.py").touch()
    return import_graph(tmp_path)


BROKEN = {
    kernels_are_pure: {"quantlab/kernels/sim.py": "import pandas\n"},
    engine_imports_only_kernels_errors_data: {
        "quantlab/engine/sweep.py": "def f():\n    from quantlab.overfit import block_bounds\n",  # deferred counts
        "quantlab/overfit/__init__.py": "",
    },
    strategies_import_only_the_contract_and_kernels: {
        "research/mine/spec.py": "from quantlab.optimizer.grid import parse_grid\n",
    },
    only_the_ib_broker_imports_ib: {"bridge/ib.py": "import ib_async\n", "bridge/feed.py": "from ib_async import IB\n"},
    research_never_reaches_the_bridge: {"quantlab/backtester.py": "from bridge import risk\n", "bridge/risk.py": ""},
    import_cycles: {
        "quantlab/runs/record.py": "def pages():\n    from quantlab.reports import build\n",
        "quantlab/reports/__init__.py": "from quantlab.reports.build import build\n",
        "quantlab/reports/build.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from quantlab.runs.record import RunDir\n",
    },
    bridge_imports_only_the_engine_layer: {
        "bridge/decide.py": "from quantlab.replay import simulate\n",
        "quantlab/replay.py": "",
    },
}


@pytest.mark.parametrize("rule", [*RULES, bridge_imports_only_the_engine_layer], ids=lambda r: r.__name__)
def test_rule_can_fail(tmp_path: Path, rule) -> None:  # type: ignore[no-untyped-def]
    found = rule(_tree(tmp_path, BROKEN[rule]))
    assert found, f"{rule.__name__} did not notice {BROKEN[rule]}"


def test_allowed_imports_pass(tmp_path: Path) -> None:
    """The other half of each self-test: a tree that keeps every rule is clean."""
    graph = _tree(
        tmp_path,
        {
            "quantlab/kernels/sim.py": "import math\nimport numpy as np\nfrom numba import njit\nfrom quantlab.kernels import layout\n",
            "quantlab/kernels/layout.py": "",
            "quantlab/engine/sweep.py": "from quantlab.kernels.sim import x\nfrom quantlab.errors import E\nimport pandas\n",
            "quantlab/errors.py": "",
            "research/__init__.py": "from quantlab._startup import env\n",
            "quantlab/_startup/env.py": "",
            "research/mine/spec.py": "from quantlab.engine.strategy import StrategySpec\nfrom .kernel import k\n",
            "research/mine/kernel.py": "from numba import njit\nfrom quantlab.kernels.sim import x\n",
            "quantlab/engine/strategy.py": "",
            "bridge/ib.py": "import ib_async\n",
            "bridge/run.py": "from quantlab.engine.signals import evaluate_arrays\nfrom quantlab.paths import p\n",
            "quantlab/engine/signals.py": "",
            "quantlab/paths.py": "",
        },
    )
    assert graph["research.mine.spec"] == {"quantlab.engine.strategy", "research.mine.kernel"}
    for rule in [*RULES, bridge_imports_only_the_engine_layer]:
        assert rule(graph) == [], rule.__name__


if __name__ == "__main__":  # print every finding, e.g. while untangling
    g = import_graph(REPO)
    for r in [*RULES, bridge_imports_only_the_engine_layer]:
        for line in r(g):
            print(f"{r.__name__}: {line}")
    sys.exit(0)
