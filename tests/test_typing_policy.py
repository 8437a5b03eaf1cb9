"""The typing policy behind `make typecheck` (mypy strict on quantlab, bridge, research).

The one exemption from strict is setup.cfg's override for numba kernel modules. These
tests keep it narrow: an exempt module holds only @njit functions, the stub that types
the rolling kernels for typed callers matches the kernels, and every remaining
``# type: ignore`` names the error it silences.
"""

from __future__ import annotations

import ast
import configparser
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("quantlab", "bridge", "research")


def exempt_patterns() -> list[str]:
    """Module patterns of setup.cfg sections that turn ``disallow_untyped_defs`` off."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    patterns: list[str] = []
    for section in cfg.sections():
        if section.startswith("mypy-") and cfg[section].get("disallow_untyped_defs", "").strip() == "False":
            patterns += [p.strip() for p in section.removeprefix("mypy-").split(",")]
    return patterns


def module_files(pattern: str) -> list[Path]:
    return sorted(ROOT.glob(pattern.replace(".", "/") + ".py"))


def not_njit(source: str) -> list[str]:
    """Top-level definitions of a module that are not @njit functions."""
    bad = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef):
            bad.append(node.name)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names = {ast.unparse(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list}
            if not names & {"njit", "numba.njit", "jit", "numba.jit"}:
                bad.append(node.name)
    return bad


def test_the_exemption_names_only_kernel_modules_that_exist() -> None:
    patterns = exempt_patterns()
    assert "research.*.kernel" in patterns
    for pattern in patterns:
        assert module_files(pattern), f"setup.cfg exempts {pattern}, which matches no module"


@pytest.mark.parametrize("pattern", exempt_patterns())
def test_exempt_modules_hold_only_njit_functions(pattern: str) -> None:
    for path in module_files(pattern):
        assert not_njit(path.read_text(encoding="utf-8")) == [], f"{path}: type it, or move it out of the kernel module"


def test_the_njit_check_can_fail() -> None:
    source = "from numba import njit\n\n@njit(cache=True)\ndef a_nb(x):\n    return x\n\ndef helper(x):\n    return x\n"
    assert not_njit(source) == ["helper"]


def test_the_rolling_stub_matches_the_kernels() -> None:
    from quantlab.kernels import rolling

    stub = ast.parse((ROOT / "quantlab/kernels/rolling.pyi").read_text(encoding="utf-8"))
    typed = {n.name: [a.arg for a in n.args.args] for n in stub.body if isinstance(n, ast.FunctionDef)}
    public = {
        name: list(inspect.signature(obj.py_func).parameters)
        for name, obj in vars(rolling).items()
        if name.endswith("_nb") and not name.startswith("_") and hasattr(obj, "py_func")
    }
    assert typed == public


def test_every_type_ignore_names_its_error_code() -> None:
    bare = re.compile(r"#\s*type:\s*ignore(?!\[)")
    found = [
        f"{path.relative_to(ROOT)}:{i}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if bare.search(line)
    ]
    assert found == []


@pytest.mark.parametrize("pattern", exempt_patterns())
def test_kernel_modules_need_no_type_ignore(pattern: str) -> None:
    for path in module_files(pattern):
        assert "type: ignore" not in path.read_text(encoding="utf-8"), path
