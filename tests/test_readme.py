"""The README's examples work: the strategy example loads, is causal and backtests."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

import quantlab
from quantlab.engine.registry import get_strategy
from quantlab.engine.signals import evaluate_arrays, price_arrays

README = Path(__file__).resolve().parent.parent / "README.md"


def _strategy_example() -> str:
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    return next(b for b in blocks if "StrategySpec(" in b)


def test_readme_names_the_two_commands() -> None:
    text = README.read_text()
    assert "make demo" in text and "make test" in text


def test_readme_strategy_example_runs(tmp_path: Path) -> None:
    path = tmp_path / "my_breakout.py"
    path.write_text(_strategy_example())
    spec = get_strategy(str(path))
    assert spec.name == "my_breakout"
    prices = price_arrays(quantlab.data.load("SPY"), "SPY")
    full = evaluate_arrays(spec, prices, {"window": 50})
    for cut in (60, 1000, 4000):
        np.testing.assert_array_equal(evaluate_arrays(spec, prices.slice(cut + 1), {"window": 50}), full[: cut + 1])
    result = quantlab.backtest(str(path), "SPY", {"window": 50}, save=False)
    assert result.metrics.loc["SPY", "n_orders"] > 0


def test_readme_strategy_example_names_its_indicator_line(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "my_breakout.py"
    path.write_text(_strategy_example())
    result = quantlab.backtest(str(path), "SPY", {"window": 50}, reports=tmp_path / "reports", report=False)
    chart = pd.read_csv(Path(result.path) / "chart.csv", index_col=0)
    np.testing.assert_allclose(chart["price:50-bar high"], chart["close"].rolling(50).max(), rtol=1e-12)
    run = quantlab.load_run(result.run_id, reports=tmp_path / "reports")
    assert run.metrics.loc[0, "window"] == "full history" and len(run.equity) == len(chart)
