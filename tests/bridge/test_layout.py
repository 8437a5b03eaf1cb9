"""Layout rules: one module imports the IB library; SQL only in the ledger package; the runtime
is composed with calls pointing one way; the example config and the guide cover every key."""

from __future__ import annotations

import ast
import dataclasses
import tomllib
from pathlib import Path

from bridge.config import SECTIONS

ROOT = Path(__file__).resolve().parents[2]


#: The runtime's layers, lowest first: a module may import only modules listed before it.
RUNTIME_LAYERS = (
    "state",
    "ops_hook",
    "context",
    "trailing",
    "killswitch",
    "protecting",
    "rejections",
    "oversight",
    "reconciling",
    "time_exits",
    "decision",
    "recovery",
    "session",
    "tasks",
    "runner",
)


def _imports(path: Path) -> list[str]:
    out: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            out += [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
    return out


def test_only_bridge_ib_imports_the_ib_library() -> None:
    offenders = []
    for path in sorted((ROOT / "bridge").rglob("*.py")):
        if any(n.split(".")[0] in ("ib_async", "ib_insync") for n in _imports(path)):
            offenders.append(str(path.relative_to(ROOT / "bridge")))
    assert offenders == ["brokers/ib.py"]


#: The parts of quantlab the bridge may use (issue 11: not the optimizer, the vectorbt replay,
#: the backtester or other research wrappers).
QUANTLAB_ALLOWED = ("engine", "kernels", "errors", "data", "paths")


def test_bridge_imports_only_the_engine_kernels_errors_data_and_paths_of_quantlab() -> None:
    offenders = []
    for path in sorted((ROOT / "bridge").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module == "quantlab":
                names = [f"quantlab.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "quantlab" and (len(parts) < 2 or parts[1] not in QUANTLAB_ALLOWED):
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


def test_sql_lives_in_the_ledger_package() -> None:
    offenders = []
    for path in sorted((ROOT / "bridge").rglob("*.py")):
        if path.parent.name != "ledger" and any(
            w in path.read_text() for w in ("SELECT ", "UPDATE ", "INSERT ", ".execute(")
        ):
            offenders.append(str(path.relative_to(ROOT / "bridge")))
    assert offenders == []


def test_runtime_is_composed_with_calls_pointing_one_way() -> None:
    runtime = ROOT / "bridge" / "runtime"
    assert sorted(p.stem for p in runtime.glob("*.py") if p.stem != "__init__") == sorted(RUNTIME_LAYERS)
    for i, name in enumerate(RUNTIME_LAYERS):
        path = runtime / f"{name}.py"
        used = {n.split(".")[2] for n in _imports(path) if n.startswith("bridge.runtime.")}
        assert used <= set(RUNTIME_LAYERS[:i]), (name, sorted(used - set(RUNTIME_LAYERS[:i])))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):  # composition: no base classes (mixins) in the runtime
                assert not node.bases, (name, node.name)


def test_example_config_lists_every_key_and_the_guide_every_section() -> None:
    example = tomllib.loads((ROOT / "bridge.example.toml").read_text())
    guide = (ROOT / "docs" / "bridge.md").read_text()
    for section, cls in SECTIONS.items():
        assert section in example, section
        assert f"`[{section}]`" in guide, section
        missing = {f.name for f in dataclasses.fields(cls)} - set(example[section])
        assert not missing, (section, missing)
    for key in ("Enable ActiveX and Socket Clients", "4002", "4001", "Trusted IPs", "Read-Only API"):
        assert key in guide
