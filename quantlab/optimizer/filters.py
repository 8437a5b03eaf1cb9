"""Metric names, ranking direction and ``--constraint`` filters over metric columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlab.engine import expr
from quantlab.errors import ParameterError, suggest
from quantlab.kernels.layout import METRIC_NAMES

METRIC_HELP = {
    "total_return": "final value / initial cash - 1",
    "cagr": "compound annual growth rate",
    "sharpe": "annualised Sharpe ratio (risk-free 0, ddof 1)",
    "sortino": "annualised Sortino ratio (downside deviation, target 0)",
    "max_drawdown": "largest peak-to-trough loss (negative, e.g. -0.25)",
    "calmar": "CAGR / |max drawdown|",
    "win_rate": "share of closed round trips with positive PnL",
    "profit_factor": "gross profit / gross loss of closed round trips",
    "n_trades": "round trips opened (including one still open)",
    "exposure": "share of bars holding a position",
    "volatility": "annualised standard deviation of bar returns",
    "n_orders": "orders filled",
    "fees": "commissions paid",
    "final_value": "portfolio value at the last close",
    "max_drawdown_duration": "bars under water in the longest drawdown (trading days on 1d bars)",
    "max_recovery_time": "bars from a drawdown's low back to its peak, longest (an open one counts to the end)",
    "avg_win": "mean PnL of closed winning round trips (account currency)",
    "avg_loss": "mean PnL of closed losing round trips (negative, account currency)",
}

#: Metrics where lower is better (ranking flips).
LOWER_IS_BETTER = frozenset({"volatility", "fees", "n_orders", "max_drawdown_duration", "max_recovery_time"})


def check_metric(name: str) -> str:
    """Return ``name`` if it is a metric, else raise with suggestions."""
    if name not in METRIC_NAMES:
        hint = suggest(name, METRIC_NAMES, otherwise=f"use one of {', '.join(METRIC_NAMES)}")
        raise ParameterError(f"unknown metric {name!r}", fix=hint)
    return name


def parse_constraints(constraints: list[str] | tuple[str, ...]) -> None:
    """Validate constraint expressions early (before any work runs): known metric names,
    and a comparison (or and/or/not of comparisons) at the top."""
    import ast

    for text in constraints:
        tree = expr.parse(text, frozenset(METRIC_NAMES), "--constraint")
        node = tree.body
        if not isinstance(node, (ast.Compare, ast.BoolOp)) and not (
            isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)
        ):
            raise ParameterError(
                "a --constraint must compare a metric with a value", found=repr(text), fix='e.g. "max_drawdown > -0.25"'
            )


def constraint_mask(frame: pd.DataFrame, constraints: list[str] | tuple[str, ...]) -> np.ndarray:
    """Rows of ``frame`` (metric columns) satisfying every constraint; NaN never satisfies."""
    mask = np.ones(len(frame), dtype=bool)
    for text in constraints:
        tree = expr.parse(text, frozenset(METRIC_NAMES), "--constraint")
        values = {name: frame[name].to_numpy() for name in METRIC_NAMES if name in frame}
        with np.errstate(invalid="ignore"):
            mask &= np.asarray(expr.evaluate(tree, values), dtype=bool)
    return mask
