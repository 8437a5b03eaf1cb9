"""Overfitting charts: deflated Sharpe per symbol, PBO logit histogram, IS vs OOS degradation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from quantlab.reports._style import color, layout

DSR_TITLE = "Deflated Sharpe ratio"
PBO_TITLE = "PBO: logit distribution"
WF_PBO_TITLE = "Walk-forward PBO: logits of the chosen parameters' out-of-sample rank"
DEGRADATION_TITLE = "Performance degradation"
MAX_POINTS = 2000
N_BINS = 41


def deflated_sharpe(overfit: Mapping[str, Any]) -> Any:
    """DSR of the chosen parameters per symbol against the usual 0.95 bar."""
    import plotly.graph_objects as go

    symbols, values, text = [], [], []
    for symbol, stats in overfit.items():
        dsr = (stats or {}).get("deflated_sharpe", {})
        if "dsr" in dsr and dsr["dsr"] is not None:
            symbols.append(str(symbol))
            values.append(float(dsr["dsr"]))
            text.append(
                f"trials {stats.get('n_trials', '?')}, SR/bar {dsr.get('sr_per_bar', float('nan')):.4f} "
                f"vs SR0 {dsr.get('sr0_per_bar', float('nan')):.4f}"
            )
    if not symbols:
        return None
    fig = go.Figure(
        go.Bar(
            x=symbols,
            y=values,
            text=[f"{v:.3f}" for v in values],
            textposition="outside",
            customdata=text,
            marker=dict(color=[color(i) for i in range(len(symbols))]),
            width=0.5 if len(symbols) <= 3 else None,
            hovertemplate="%{x}: DSR %{y:.3f}<br>%{customdata}<extra></extra>",
        )
    )
    fig.add_hline(y=0.95, line=dict(color="#d62728", dash="dash"), annotation_text="0.95")
    fig.update_yaxes(title_text="probability the true Sharpe > 0 after the search", range=[0, 1.1])
    return layout(fig, DSR_TITLE, height=360, hovermode="closest")


def pbo_logits(overfit: Mapping[str, Any], title: str = PBO_TITLE, unit: str = "splits") -> Any:
    """Histogram of CSCV logits per symbol; mass left of 0 is the probability of overfitting."""
    import plotly.graph_objects as go

    series = {}
    for symbol, stats in overfit.items():
        pbo = (stats or {}).get("pbo", {})
        logits = np.asarray(pbo.get("logits") or [], dtype=np.float64)
        logits = logits[np.isfinite(logits)]
        if logits.size:
            series[str(symbol)] = (logits, pbo.get("pbo"))
    if not series:
        return None
    span = max(float(np.max(np.abs(v[0]))) for v in series.values()) or 1.0
    n_bins = N_BINS if max(v[0].size for v in series.values()) > 200 else 15
    edges = np.linspace(-span, span, n_bins + 1)
    centers = 0.5 * (edges[:-1] + edges[1:])
    fig = go.Figure()
    for i, (symbol, (logits, pbo)) in enumerate(series.items()):
        counts, _ = np.histogram(logits, bins=edges)
        label = f"{symbol} (PBO {pbo:.2f})" if isinstance(pbo, (int, float)) else symbol
        fig.add_trace(
            go.Bar(
                x=centers,
                y=counts / logits.size,
                name=label,
                opacity=0.6,
                marker=dict(color=color(i)),
                width=float(edges[1] - edges[0]),
                hovertemplate="logit %{x:.2f}: %{y:.1%}<extra>" + symbol + "</extra>",
            )
        )
    fig.add_vline(x=0.0, line=dict(color="#d62728", dash="dash"))
    fig.update_xaxes(title_text="logit of the in-sample winner's out-of-sample rank (< 0: below the median)")
    fig.update_yaxes(title_text=f"share of {unit}", tickformat=".0%")
    return layout(fig, title, height=400, barmode="overlay", hovermode="closest")


def degradation(overfit: Mapping[str, Any]) -> Any:
    """In-sample vs out-of-sample performance of the CSCV winners, with the fitted line."""
    import plotly.graph_objects as go

    fig = go.Figure()
    drawn = False
    for i, (symbol, stats) in enumerate(overfit.items()):
        pbo = (stats or {}).get("pbo", {})
        is_perf = np.asarray(pbo.get("is_performance") or [], dtype=np.float64)
        oos_perf = np.asarray(pbo.get("oos_performance") or [], dtype=np.float64)
        if not is_perf.size or is_perf.size != oos_perf.size:
            continue
        step = max(1, int(np.ceil(is_perf.size / MAX_POINTS)))
        x, y = is_perf[::step], oos_perf[::step]
        fig.add_trace(
            go.Scatter(x=x, y=y, mode="markers", name=str(symbol), marker=dict(color=color(i), size=4, opacity=0.4))
        )
        slope, intercept = pbo.get("degradation_slope"), pbo.get("degradation_intercept")
        if slope is not None and intercept is not None and np.isfinite(x).any():
            lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
            fig.add_trace(
                go.Scatter(
                    x=[lo, hi],
                    y=[intercept + slope * lo, intercept + slope * hi],
                    mode="lines",
                    name=f"{symbol} fit (slope {slope:.2f})",
                    line=dict(color=color(i), width=2),
                )
            )
        drawn = True
    if not drawn:
        return None
    fig.update_xaxes(title_text="in-sample Sharpe per bar (winner of each split)")
    fig.update_yaxes(title_text="out-of-sample Sharpe per bar")
    return layout(fig, f"{DEGRADATION_TITLE}: in-sample vs out-of-sample", height=420, hovermode="closest")
