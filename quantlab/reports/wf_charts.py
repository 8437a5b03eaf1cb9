"""Walk-forward charts: fold windows over the stitched out-of-sample curve, IS vs OOS per
fold, and how the chosen parameters drift from fold to fold.

Built against ``folds.csv`` (``fold``, ``symbol``, ``train_start``, ``train_end``,
``test_start``, ``test_end``, parameter columns, ``is_<metric>``, ``oos_<metric>``) and
``drift.csv`` (``fold``, ``test_start``, parameter columns, ``symbol``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from quantlab.reports._style import BENCHMARK_COLOR, color, layout, x_dates

FOLDS_TITLE = "Walk-forward folds and stitched out-of-sample equity"
FOLD_METRICS_TITLE = "In-sample vs out-of-sample by fold"
DRIFT_TITLE = "Parameter drift"
FOLD_METRICS = ("sharpe", "total_return", "max_drawdown", "cagr")


def fold_metric(folds: pd.DataFrame, metric: str) -> str | None:
    """``metric`` if folds.csv has its is_/oos_ columns, else the first one it has."""
    for name in (metric, *FOLD_METRICS):
        if f"is_{name}" in folds.columns and f"oos_{name}" in folds.columns:
            return name
    return None


def _windows(folds: pd.DataFrame) -> pd.DataFrame:
    cols = ["fold", "train_start", "train_end", "test_start", "test_end"]
    return folds[cols].drop_duplicates("fold").sort_values("fold").reset_index(drop=True)


def folds_chart(folds: pd.DataFrame, equity: pd.DataFrame, title: str = FOLDS_TITLE) -> Any:
    """Stitched out-of-sample equity (test windows shaded) above the train/test timeline."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    windows = _windows(folds)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.62, 0.38], vertical_spacing=0.05)
    x = x_dates(equity.index)
    for i, col in enumerate(equity.columns):
        fig.add_trace(
            go.Scatter(x=x, y=equity[col].to_numpy(), name=f"{col} out-of-sample", line=dict(color=color(i))),
            row=1,
            col=1,
        )
    for k, w in windows.iterrows():
        start, end = x_dates(pd.DatetimeIndex([w["test_start"], w["test_end"]]))
        fig.add_vrect(x0=start, x1=end, fillcolor=color(k), opacity=0.06, line_width=0, row=1, col=1)
    for label, lo, hi, colour, width in (
        ("train", "train_start", "train_end", BENCHMARK_COLOR, 9),
        ("test", "test_start", "test_end", color(0), 9),
    ):
        xs: list[Any] = []
        ys: list[Any] = []
        for _, w in windows.iterrows():
            a, b = x_dates(pd.DatetimeIndex([w[lo], w[hi]]))
            xs += [a, b, None]
            ys += [int(w["fold"]), int(w["fold"]), None]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                name=label,
                line=dict(color=colour, width=width),
                hovertemplate=f"{label} fold %{{y}}: %{{x}}<extra></extra>",
            ),
            row=2,
            col=1,
        )
    fig.update_yaxes(title_text="value", row=1, col=1)
    fig.update_yaxes(title_text="fold", autorange="reversed", dtick=1 if len(windows) <= 12 else None, row=2, col=1)
    return layout(fig, title, height=620, hovermode="closest")


def fold_metrics_chart(folds: pd.DataFrame, metric: str, efficiency: Mapping[str, Any] | None = None) -> Any:
    """Grouped bars of the in-sample and out-of-sample metric of each fold and symbol;
    ``efficiency`` (walk-forward efficiency per symbol) is shown in the legend."""
    import plotly.graph_objects as go

    name = fold_metric(folds, metric)
    if name is None:
        return None
    fig = go.Figure()
    symbols = folds["symbol"].astype(str) if "symbol" in folds.columns else pd.Series("all", index=folds.index)
    for i, symbol in enumerate(dict.fromkeys(symbols)):
        rows = folds[symbols == symbol].sort_values("fold")
        labels = [f"fold {int(f)}" for f in rows["fold"]]
        fig.add_trace(
            go.Bar(
                x=labels, y=rows[f"is_{name}"], name=f"{symbol} in-sample", marker=dict(color=color(i), opacity=0.45)
            )
        )
        wfe = (efficiency or {}).get(symbol)
        label = f"{symbol} out-of-sample" + (
            f" (efficiency {wfe:.2f})" if isinstance(wfe, (int, float)) and np.isfinite(wfe) else ""
        )
        fig.add_trace(go.Bar(x=labels, y=rows[f"oos_{name}"], name=label, marker=dict(color=color(i))))
    fig.update_yaxes(title_text=name, tickformat=".0%" if name in ("total_return", "max_drawdown", "cagr") else None)
    return layout(fig, f"{FOLD_METRICS_TITLE}: {name}", height=420, barmode="group", hovermode="closest")


def drift_chart(drift: pd.DataFrame, params: Sequence[str]) -> Any:
    """The chosen value of each parameter per fold (a step line per symbol)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    params = [p for p in params if p in drift.columns]
    if not params or drift.empty:
        return None
    xcol = "test_start" if "test_start" in drift.columns else "fold"
    fig = make_subplots(rows=len(params), cols=1, shared_xaxes=True, vertical_spacing=0.06)
    symbols = drift["symbol"].astype(str) if "symbol" in drift.columns else pd.Series("chosen", index=drift.index)
    for i, symbol in enumerate(dict.fromkeys(symbols)):
        rows = drift[symbols == symbol].sort_values(xcol)
        xs = x_dates(pd.DatetimeIndex(rows[xcol])) if xcol == "test_start" else rows[xcol].tolist()
        for r, p in enumerate(params):
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=rows[p],
                    mode="lines+markers",
                    name=str(symbol),
                    legendgroup=str(symbol),
                    showlegend=r == 0,
                    line=dict(shape="hv", color=color(i)),
                    hovertemplate=f"{p}=%{{y}}<extra>{symbol}</extra>",
                ),
                row=r + 1,
                col=1,
            )
            fig.update_yaxes(title_text=p, row=r + 1, col=1)
    fig.update_xaxes(title_text="test window start" if xcol == "test_start" else "fold", row=len(params), col=1)
    return layout(fig, DRIFT_TITLE, height=max(300, 200 * len(params) + 120), hovermode="closest")
