"""The exits reference stays independent and research-only (checked on the source's AST):
it never imports the simulator it checks, and the engine, kernels and bridge never import it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = (
    "quantlab.replay_exits",
    "quantlab._exit_orders",
    "quantlab.replay_exit_rules",
    "quantlab.replay_exits_group",
    "quantlab._exit_orders_group",
)
#: The implementation under test: the simulator kernels, the sweep and the exits declaration.
CHECKED = (
    "quantlab.kernels.sim",
    "quantlab.kernels.group_sim",
    "quantlab.kernels.group_exits",
    "quantlab.shared_cash",
    "quantlab.kernels.codegen",
    "quantlab.engine.sweep",
    "quantlab.engine.codegen",
    "quantlab.engine.exits",
    "quantlab.exits",
    "quantlab.sweep",
    "quantlab.backtester",
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_reference_does_not_import_the_simulator_it_checks() -> None:
    for module in REFERENCE:
        path = ROOT / (module.replace(".", "/") + ".py")
        bad = {n for n in _imports(path) if n.startswith(CHECKED)}
        assert not bad, f"{module} imports {sorted(bad)}: the reference must not share the exit implementation"


def test_engine_kernels_and_bridge_do_not_import_the_reference() -> None:
    folders = [ROOT / "quantlab" / "engine", ROOT / "quantlab" / "kernels", ROOT / "bridge"]
    files = [p for folder in folders for p in folder.rglob("*.py")]
    assert len(files) > 20
    for path in files:
        bad = {n for n in _imports(path) if n.startswith(REFERENCE)}
        assert not bad, f"{path.relative_to(ROOT)} imports the research-only reference {sorted(bad)}"
