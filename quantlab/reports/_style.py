"""Shared look of the report charts: template, palette, sizes, axis helpers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

TEMPLATE = "plotly_white"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
BENCHMARK_COLOR = "#7f7f7f"
CHOSEN = dict(symbol="star", size=16, color="#d62728", line=dict(color="white", width=1.5))
DIVERGING = "RdYlGn"


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def layout(fig: Any, title: str, height: int = 450, **extra: Any) -> Any:
    """Apply the common layout; ``title`` is what the page and the tests look for."""
    settings: dict[str, Any] = dict(
        title=dict(text=title, x=0.01, xanchor="left"),
        template=TEMPLATE,
        height=height,
        margin=dict(l=60, r=30, t=70, b=50),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1),
        hovermode="x unified",
    )
    settings.update(extra)
    fig.update_layout(**settings)
    return fig


def x_dates(index: pd.Index) -> list[str]:
    """Dates as short ISO strings (``YYYY-MM-DD`` for daily bars) for compact, stable JSON."""
    idx = pd.DatetimeIndex(index)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    daily = bool(len(idx)) and bool((idx == idx.normalize()).all())
    return list(idx.strftime("%Y-%m-%d" if daily else "%Y-%m-%d %H:%M"))


def finite(values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    return arr[np.isfinite(arr)]


def pct(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "n/a" if not np.isfinite(number) else f"{number:.1%}"


def num(value: Any, digits: int = 3) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not np.isfinite(number):
        return "n/a"
    if number.is_integer() and abs(number) < 1e9:
        return f"{int(number):,}"
    return f"{number:,.{digits}f}" if abs(number) < 1e5 else f"{number:,.0f}"
