"""Old public module paths keep working after the engine moved to quantlab/engine/."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from quantlab._startup.aliases import OLD_TO_NEW, new_name


@pytest.mark.parametrize("old", sorted(OLD_TO_NEW))
def test_an_old_path_is_the_new_module(old: str) -> None:
    module = importlib.import_module(old)
    assert module is importlib.import_module(OLD_TO_NEW[old])
    assert module.__spec__.name == OLD_TO_NEW[old]  # the real module keeps its own spec


def test_submodules_of_an_old_package_are_not_loaded_twice() -> None:
    old = importlib.import_module("quantlab.backends.checkpoint")
    assert old is importlib.import_module("quantlab.engine.backends.checkpoint")
    assert new_name("quantlab.backends.checkpoint") == "quantlab.engine.backends.checkpoint"
    assert new_name("quantlab.backtester") is None and new_name("quantlab.configx") is None


def test_a_users_strategy_file_with_old_imports_still_loads() -> None:
    code = (
        "from quantlab.strategy import StrategySpec, Param\n"
        "from quantlab.config import SimConfig\n"
        "from quantlab.engine.strategy import StrategySpec as New\n"
        "assert StrategySpec is New and SimConfig().init_cash > 0\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
