"""quantlab: research framework for causal Numba strategy kernels.

Public API (imported lazily so the CLI starts fast)::

    import quantlab
    bars = quantlab.data.load("SPY")
    bt = quantlab.backtest("sma_cross", "SPY", "fast=20,slow=50")
    opt = quantlab.optimize("sma_cross", "SPY,QQQ", "fast=5:100:5,slow=10:250:10", holdout=0.3)
    wf = quantlab.walkforward("sma_cross", "SPY", "fast=5:100:5,slow=10:250:10", train="2y", test="6m")
    run = quantlab.load_run(bt.run_id)     # summary, metrics, trades, equity of a saved run
"""

from __future__ import annotations

import importlib
from typing import Any

from quantlab._startup import aliases as _aliases
from quantlab._startup import env as _env  # noqa: F401  (sets NUMBA_CACHE_DIR before numba loads)

_aliases.install()  # old module paths (quantlab.strategy, quantlab.config, ...) keep working

__version__ = "0.1.0"

_LAZY = {
    "backtest": ("quantlab.backtester", "backtest"),
    "optimize": ("quantlab.optimizer.api", "optimize"),
    "walkforward": ("quantlab.optimizer.walkforward", "walkforward"),
    "backtest_run": ("quantlab.backtester", "backtest_run"),
    "optimize_run": ("quantlab.optimizer.api", "optimize_run"),
    "walkforward_run": ("quantlab.optimizer.walkforward", "walkforward_run"),
    "RunSpec": ("quantlab.runspec", "RunSpec"),
    "SearchSpec": ("quantlab.runspec", "SearchSpec"),
    "WalkForwardWindows": ("quantlab.optimizer.folds", "WalkForwardWindows"),
    "load_run": ("quantlab.runs.load", "load_run"),
    "get_strategy": ("quantlab.engine.registry", "get_strategy"),
    "list_strategies": ("quantlab.engine.registry", "list_strategies"),
    "evaluate": ("quantlab.engine.signals", "evaluate"),
    "SimConfig": ("quantlab.engine.settings", "SimConfig"),
    "Costs": ("quantlab.engine.settings", "Costs"),
    "Sizing": ("quantlab.engine.settings", "Sizing"),
}

__all__ = ["__version__", "data", "overfit", "reports", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name in ("data", "overfit", "reports"):
        return importlib.import_module(f"quantlab.{name}")
    raise AttributeError(f"module 'quantlab' has no attribute {name!r}")
