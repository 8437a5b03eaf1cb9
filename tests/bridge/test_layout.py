"""Layout rules: one module imports the IB library; the example config and the guide cover every key."""

from __future__ import annotations

import ast
import dataclasses
import tomllib
from pathlib import Path

from bridge.config import SECTIONS

ROOT = Path(__file__).resolve().parents[2]


def test_only_bridge_ib_imports_the_ib_library() -> None:
    offenders = []
    for path in sorted((ROOT / "bridge").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n.split(".")[0] in ("ib_async", "ib_insync") for n in names) and path.name != "ib.py":
                offenders.append(path.name)
    assert offenders == []


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
