"""Broken or unusual strategy modules give one clear message, never a traceback."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import quantlab
import research
from quantlab.cli import cli
from quantlab.engine.registry import get_strategy, list_strategies
from quantlab.errors import StrategyError

TYPING_ERROR = textwrap.dedent(
    """
    import numpy as np
    from numba import njit
    from quantlab.engine.strategy import Param, StrategySpec

    @njit(cache=False)
    def untypable_nb(close, window):
        out = np.full(close.shape[0], np.nan)
        out[0] = "a string"
        return out

    SPEC = StrategySpec("untypable", untypable_nb, ("close",), (Param("window", "int", 5, 2, 10),), "window",
                        "Cannot compile.\\nA test fixture.")
    """
)


def test_kernel_that_numba_cannot_type(tmp_path: Path) -> None:
    path = tmp_path / "untypable.py"
    path.write_text(TYPING_ERROR)
    with pytest.raises(StrategyError, match="does not compile") as info:
        quantlab.backtest(str(path), "SPY", None, save=False)
    assert "untypable_nb" in str(info.value) and "NUMBA_DISABLE_JIT" in str(info.value)
    result = CliRunner().invoke(
        cli, ["optimize", "-s", str(path), "--symbols", "SPY", "--grid", "window=2:4", "--report", "none"]
    )
    assert result.exit_code == 1 and "does not compile" in result.output and "Traceback" not in result.output


def test_file_with_a_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("def oops(:\n")
    with pytest.raises(StrategyError, match="failed to import.*SyntaxError"):
        get_strategy(str(path))


def test_research_folder_helpers_are_skipped_and_broken_modules_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "zz_helper.py").write_text("VALUE = 1\n")
    (tmp_path / "zz_broken.py").write_text("import does_not_exist_anywhere\n")
    monkeypatch.setattr(research, "__path__", [*research.__path__, str(tmp_path)])
    errors: list[StrategyError] = []
    names = [s.name for s in list_strategies(errors)]
    assert "sma_cross" in names and "zz_helper" not in names
    assert len(errors) == 1 and "research/zz_broken failed to import" in str(errors[0])
    result = CliRunner().invoke(cli, ["strategies"])
    assert result.exit_code == 1 and "sma_cross" in result.output and "zz_broken failed to import" in result.output


def test_tiny_holdout_is_a_clear_error() -> None:
    from quantlab.errors import DataError

    with pytest.raises(DataError, match="held-out window of SPY has fewer than 2 bars"):
        quantlab.optimize("sma_cross", "SPY", "fast=5:10,slow=20", holdout=1e-17, save=False)
