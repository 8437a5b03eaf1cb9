"""Numbers and tables for the terminal: plain digits, one precision per column, fitted width.

Money is printed as ``88,930.12``, never ``8.893e+04``; percentages with two decimals;
counts as integers; ratios (Sharpe, profit factor, DSR...) with three decimals; parameter
columns with the fewest decimals that show every value exactly. A column is formatted as
a whole, so its digits line up.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from typing import Any

PCT_METRICS = frozenset(
    {"total_return", "cagr", "max_drawdown", "win_rate", "exposure", "volatility", "avg_win", "avg_loss"}
)
MONEY = frozenset({"final_value", "fees", "init_cash", "cash", "value", "pnl", "end_value", "start_value"})
COUNTS = frozenset({"n_trades", "n_orders", "trades", "rank", "fold", "bars", "oos_trades", "candidates", "changes"})
_MAX_DECIMALS = 4


def _base(column: str) -> str:
    """``oos_total_return`` -> ``total_return``: prefixed columns format like their metric."""
    for prefix in ("in_sample_", "holdout_", "oos_", "is_"):
        if column.startswith(prefix) and column[len(prefix) :]:
            return column[len(prefix) :]
    return column


def kind_of(column: str) -> str:
    """``pct``, ``money``, ``count`` or ``number`` for a column name."""
    name = _base(column)
    if name in PCT_METRICS or column in PCT_METRICS:
        return "pct"
    if name in MONEY or column in MONEY:
        return "money"
    if name in COUNTS or column in COUNTS:
        return "count"
    return "number"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _decimals(x: float) -> int:
    """Fewest decimals (at most 4) that print ``x`` exactly as given."""
    for d in range(_MAX_DECIMALS + 1):
        if abs(round(x, d) - x) < 1e-9 * max(1.0, abs(x)):
            return d
    return _MAX_DECIMALS


def _special(x: float) -> str | None:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return None


def format_column(values: Sequence[Any], column: str = "", kind: str | None = None) -> list[str]:
    """Every value of one column with one precision (text passes through unchanged)."""
    kind = kind or kind_of(column)
    numbers = [_number(v) for v in values]
    finite = [x for x in numbers if x is not None and math.isfinite(x)]
    if kind == "number":
        if finite and all(float(x).is_integer() for x in finite):
            kind = "count"
        elif column and _base(column) not in _RATIOS and column not in _RATIOS:
            decimals = max((_decimals(x) for x in finite), default=0)
        else:
            decimals = 3
    out = []
    for raw, x in zip(values, numbers, strict=True):
        if x is None:
            out.append("" if raw is None else str(raw))
            continue
        special = _special(x)
        if special is not None:
            out.append(special)
        elif kind == "pct":
            out.append(f"{x * 100:,.2f}%")
        elif kind == "money":
            out.append(f"{x:,.2f}")
        elif kind == "count":
            out.append(f"{x:,.0f}" if abs(x) >= 10_000 else f"{x:.0f}")
        else:
            out.append(f"{x:,.{decimals}f}")
    return out


_RATIOS = frozenset(
    {
        "sharpe",
        "sortino",
        "calmar",
        "profit_factor",
        "dsr",
        "pbo",
        "efficiency",
        "median_oos_rank",
        "mean_is_dsr",
        "holdout_percentile",
        "mean",
        "std",
        "min",
        "max",
        "annualised_return",
        "relative_std",
        "degradation_slope",
    }
)


def fmt(value: Any, pct: bool = False, column: str = "") -> str:
    """One value, formatted as its column would be (``pct`` forces a percentage)."""
    return format_column([value], column, "pct" if pct else None)[0]


def terminal_width() -> int | None:
    """Columns of the terminal (``shutil.get_terminal_size``, which honours ``$COLUMNS``);
    None when printing to a pipe or file without ``$COLUMNS``: nothing is cut for scripts."""
    if os.environ.get("COLUMNS") or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    width: int | None = None,
    drop: Iterable[str] = (),
    shrink: Iterable[str] = (),
) -> str:
    """A plain aligned text table, each column formatted as a whole.

    With ``width``, the table is made to fit: columns in ``shrink`` are cut (ending in
    ``~``) down to 8 characters, then columns in ``drop`` are left out in that order.
    """
    columns = list(columns)
    cells = {c: format_column([r.get(c) for r in rows], c) for c in columns}

    def render(cols: list[str], cut: dict[str, int]) -> list[str]:
        def clip(text: str, c: str) -> str:
            limit = cut.get(c)
            return text if limit is None or len(text) <= limit else text[: limit - 1] + "~"

        grid = [[clip(c, c) for c in cols]] + [[clip(cells[c][i], c) for c in cols] for i in range(len(rows))]
        widths = [max(len(row[j]) for row in grid) for j in range(len(cols))]
        lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in grid]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return lines

    cut: dict[str, int] = {}
    lines = render(columns, cut)
    if width is None:
        return "\n".join(lines)
    for c in shrink:
        if c in columns and len(lines[0]) > width:
            longest = max([len(c), *(len(v) for v in cells[c])])
            over = len(lines[1]) - width
            cut[c] = max(8, longest - over)
            lines = render(columns, cut)
    for c in drop:
        if len(lines[1]) <= width:
            break
        if c in columns:
            columns.remove(c)
            lines = render(columns, cut)
    return "\n".join(lines)
