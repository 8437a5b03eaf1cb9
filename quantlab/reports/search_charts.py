"""Charts of a parameter search: grid heatmaps, in-sample vs holdout, optuna history and importances."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from quantlab.optimizer.filters import LOWER_IS_BETTER
from quantlab.reports._style import CHOSEN, color, layout

HEATMAP_TITLE = "Parameter heatmap"
HOLDOUT_TITLE = "In-sample vs holdout"
HISTORY_TITLE = "Optuna trial history"
IMPORTANCE_TITLE = "Parameter importances"
MAX_PAIRS = 6


def varying(results: pd.DataFrame, params: Sequence[str]) -> list[str]:
    """Parameters that take more than one value in ``results``."""
    return [p for p in params if p in results.columns and results[p].nunique(dropna=True) > 1]


def mean_over_symbols(results: pd.DataFrame, params: Sequence[str], column: str) -> pd.DataFrame:
    """One row per parameter combination with ``column`` averaged over symbols (as ranked)."""
    keys = [p for p in params if p in results.columns]
    return results.groupby(keys, sort=True, dropna=False)[column].mean().reset_index()


def _on_grid(frame: pd.DataFrame, a: str, b: str) -> bool:
    cells = frame[a].nunique() * frame[b].nunique()
    return len(frame) >= 4 and len(frame.drop_duplicates([a, b])) >= 0.5 * cells


def param_heatmap(
    results: pd.DataFrame,
    params: Sequence[str],
    best: Mapping[str, float],
    metric: str,
    title: str | None = None,
) -> Any:
    """2-D slices of ``metric`` (mean over symbols) for each pair of searched parameters.

    Other searched parameters are held at the chosen values; the chosen point is a star.
    Points that do not lie on a grid (TPE) are drawn as a coloured scatter instead.
    One searched parameter gives a line; none gives None.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    searched = varying(results, params)
    if not searched or metric not in results.columns:
        return None
    table = mean_over_symbols(results, params, metric)
    reverse = metric in LOWER_IS_BETTER
    if len(searched) == 1:
        p = searched[0]
        line = table.sort_values(p)
        fig = go.Figure(go.Scatter(x=line[p], y=line[metric], mode="lines+markers", name=metric))
        if p in best:
            chosen = line[np.isclose(line[p], best[p])]
            fig.add_trace(go.Scatter(x=chosen[p], y=chosen[metric], mode="markers", marker=CHOSEN, name="chosen"))
        fig.update_xaxes(title_text=p)
        fig.update_yaxes(title_text=metric)
        return layout(
            fig, title or f"{HEATMAP_TITLE}: {metric} by {p} (mean over symbols)", height=400, hovermode="closest"
        )
    pairs = list(itertools.combinations(searched, 2))[:MAX_PAIRS]
    cols = min(len(pairs), 3)
    rows = math.ceil(len(pairs) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[f"{b} vs {a}" for a, b in pairs],
        horizontal_spacing=0.08,
        vertical_spacing=0.14,
    )
    finite = table[metric].replace([np.inf, -np.inf], np.nan).dropna()
    cmin, cmax = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    coloraxis = dict(colorscale="Viridis", reversescale=reverse, cmin=cmin, cmax=cmax, colorbar=dict(title=metric))
    for k, (a, b) in enumerate(pairs):
        r, c = divmod(k, cols)
        others = [p for p in searched if p not in (a, b)]
        mask = np.ones(len(table), dtype=bool)
        for p in others:
            mask &= np.isclose(table[p].to_numpy(), float(best.get(p, np.nan)))
        sliced = table[mask]
        if len(sliced) and _on_grid(sliced, a, b):
            grid = sliced.pivot_table(index=b, columns=a, values=metric, aggfunc="mean")
            fig.add_trace(
                go.Heatmap(
                    x=grid.columns.to_numpy(),
                    y=grid.index.to_numpy(),
                    z=grid.to_numpy(),
                    coloraxis="coloraxis",
                    hovertemplate=f"{a}=%{{x}}<br>{b}=%{{y}}<br>{metric}=%{{z:.4g}}<extra></extra>",
                ),
                row=r + 1,
                col=c + 1,
            )
        else:
            points = table
            fig.add_trace(
                go.Scatter(
                    x=points[a],
                    y=points[b],
                    mode="markers",
                    showlegend=False,
                    marker=dict(
                        color=points[metric], coloraxis="coloraxis", size=8, line=dict(width=0.5, color="white")
                    ),
                    hovertemplate=f"{a}=%{{x}}<br>{b}=%{{y}}<br>{metric}=%{{marker.color:.4g}}<extra></extra>",
                ),
                row=r + 1,
                col=c + 1,
            )
        if a in best and b in best:
            fig.add_trace(
                go.Scatter(
                    x=[best[a]],
                    y=[best[b]],
                    mode="markers",
                    marker=CHOSEN,
                    name="chosen",
                    showlegend=k == 0,
                    hovertemplate=f"chosen: {a}=%{{x}}, {b}=%{{y}}<extra></extra>",
                ),
                row=r + 1,
                col=c + 1,
            )
        fig.update_xaxes(title_text=a, row=r + 1, col=c + 1)
        fig.update_yaxes(title_text=b, row=r + 1, col=c + 1)
    held = ", others at the chosen values" if len(searched) > 2 else ""
    name = title or f"{HEATMAP_TITLE}: {metric} (mean over symbols{held})"
    return layout(fig, name, height=max(420, 380 * rows), coloraxis=coloraxis, hovermode="closest")


def holdout_scatter(results: pd.DataFrame, params: Sequence[str], best: Mapping[str, float], metric: str) -> Any:
    """Every combination's in-sample ``metric`` against its held-out value, per symbol."""
    import plotly.graph_objects as go

    oos = f"holdout_{metric}"
    if oos not in results.columns or metric not in results.columns:
        return None
    fig = go.Figure()
    chosen = np.ones(len(results), dtype=bool)
    for p in params:
        if p in results.columns and p in best:
            chosen &= np.isclose(results[p].to_numpy(), best[p])
    symbols = results["symbol"].astype(str) if "symbol" in results.columns else pd.Series("all", index=results.index)
    for i, symbol in enumerate(dict.fromkeys(symbols)):
        rows = results[symbols == symbol]
        rho = rows[metric].rank().corr(rows[oos].rank())
        fig.add_trace(
            go.Scatter(
                x=rows[metric],
                y=rows[oos],
                mode="markers",
                name=f"{symbol} (rank corr {rho:.2f})",
                marker=dict(color=color(i), size=6, opacity=0.6),
                hovertemplate=f"in-sample %{{x:.4g}}<br>holdout %{{y:.4g}}<extra>{symbol}</extra>",
            )
        )
        pick = results[chosen & (symbols == symbol).to_numpy()]
        fig.add_trace(
            go.Scatter(x=pick[metric], y=pick[oos], mode="markers", marker=CHOSEN, name="chosen", showlegend=i == 0)
        )
    both = pd.concat([results[metric], results[oos]]).replace([np.inf, -np.inf], np.nan).dropna()
    if len(both):
        lo, hi = float(both.min()), float(both.max())
        fig.add_trace(
            go.Scatter(
                x=[lo, hi], y=[lo, hi], mode="lines", name="holdout = in-sample", line=dict(color="#999", dash="dot")
            )
        )
    fig.update_xaxes(title_text=f"in-sample {metric}")
    fig.update_yaxes(title_text=f"holdout {metric}")
    return layout(fig, f"{HOLDOUT_TITLE}: {metric} of every combination", height=460, hovermode="closest")


def optuna_history(study: Mapping[str, Any], metric: str) -> Any:
    """Objective of each completed TPE trial and the best so far."""
    import plotly.graph_objects as go

    numbers = list(study.get("trial_numbers") or [])
    values = np.array([np.nan if v is None else float(v) for v in study.get("objective") or []], dtype=np.float64)
    if not numbers or len(numbers) != len(values):
        return None
    filled = np.where(np.isfinite(values), values, np.inf if metric in LOWER_IS_BETTER else -np.inf)
    best = np.minimum.accumulate(filled) if metric in LOWER_IS_BETTER else np.maximum.accumulate(filled)
    best = np.where(np.isfinite(best), best, np.nan)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=numbers, y=values, mode="markers", name="trial", marker=dict(size=7, opacity=0.7)))
    fig.add_trace(go.Scatter(x=numbers, y=best, mode="lines", name="best so far", line=dict(shape="hv", width=2)))
    fig.update_xaxes(title_text="trial")
    fig.update_yaxes(title_text=f"{metric} (mean over symbols)")
    return layout(fig, f"{HISTORY_TITLE}: {metric}", height=400)


def param_importances(results: pd.DataFrame, params: Sequence[str], metric: str, seed: int = 0) -> Any:
    """fANOVA importances of the searched parameters for ``metric`` (mean over symbols).

    Computed by optuna from the trials in ``results`` (an in-memory study, seeded), so the
    chart does not depend on the study's storage still being there.
    """
    import optuna
    import plotly.graph_objects as go

    searched = varying(results, params)
    if not searched:
        return None
    table = mean_over_symbols(results, params, metric).replace([np.inf, -np.inf], np.nan).dropna(subset=[metric])
    if len(table) < 2 or table[metric].nunique() < 2:
        return None
    dists: dict[str, optuna.distributions.BaseDistribution] = {
        p: optuna.distributions.FloatDistribution(float(table[p].min()), float(table[p].max())) for p in searched
    }
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize" if metric in LOWER_IS_BETTER else "maximize")
    study.add_trials(
        [
            optuna.trial.create_trial(
                params={p: float(row[p]) for p in searched}, distributions=dists, value=float(row[metric])
            )
            for _, row in table.iterrows()
        ]
    )
    if len(searched) == 1:
        importances = {searched[0]: 1.0}
    else:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
        importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
    names = list(importances)[::-1]
    fig = go.Figure(
        go.Bar(
            x=[importances[n] for n in names], y=names, orientation="h", hovertemplate="%{y}: %{x:.3f}<extra></extra>"
        )
    )
    fig.update_xaxes(title_text="share of the objective's variance (fANOVA)", range=[0, 1])
    return layout(fig, f"{IMPORTANCE_TITLE}: {metric}", height=max(260, 60 * len(names) + 140), hovermode="closest")
