"""Performance charts of one equity curve per column: equity/drawdown, monthly returns, trades.

One function per chart; each takes plain pandas objects and returns a plotly Figure
whose title the page shows (and the tests check), or None when there is nothing to draw.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from quantlab.reports._style import BENCHMARK_COLOR, DIVERGING, color, layout, x_dates

EQUITY_TITLE = "Equity and drawdown"
MONTHLY_TITLE = "Monthly returns"
TRADES_TITLE = "Trade returns"
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def drawdown(equity: pd.DataFrame | pd.Series) -> Any:
    """Fractional distance below the running peak (0 at new highs, negative below)."""
    return equity / equity.cummax() - 1.0


def equity_drawdown(
    equity: pd.DataFrame,
    benchmark: pd.Series | None = None,
    benchmark_name: str = "benchmark",
    title: str = EQUITY_TITLE,
    marker: tuple[str, str] | None = None,
) -> Any:
    """Equity per column (and the benchmark, dashed) above their underwater curves.

    A menu switches the equity axis between linear and log scale; ``marker`` is an
    optional ``(date, label)`` drawn as a dotted vertical line (e.g. where a holdout starts).
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.68, 0.32], vertical_spacing=0.04)
    x = x_dates(equity.index)
    many = equity.shape[1] > 3  # many curves: no filled drawdowns, legend below the chart
    for i, col in enumerate(equity.columns):
        series = equity[col]
        fig.add_trace(
            go.Scatter(
                x=x, y=series.to_numpy(), name=str(col), legendgroup=str(col), line=dict(color=color(i), width=1.5)
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=drawdown(series).to_numpy(),
                name=f"{col} drawdown",
                legendgroup=str(col),
                showlegend=False,
                line=dict(color=color(i), width=1),
                fill=None if many else "tozeroy",
            ),
            row=2,
            col=1,
        )
    if benchmark is not None:
        bench = benchmark.reindex(equity.index)
        fig.add_trace(
            go.Scatter(
                x=x, y=bench.to_numpy(), name=benchmark_name, line=dict(color=BENCHMARK_COLOR, width=1.2, dash="dash")
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=drawdown(bench).to_numpy(),
                name=f"{benchmark_name} drawdown",
                showlegend=False,
                line=dict(color=BENCHMARK_COLOR, width=1, dash="dash"),
            ),
            row=2,
            col=1,
        )
    if marker is not None:
        fig.add_vline(x=marker[0], line=dict(color="#444", dash="dot", width=1.2))
        fig.add_annotation(
            x=marker[0],
            y=1.0,
            yref="paper",
            text=marker[1],
            showarrow=False,
            xanchor="left",
            yanchor="top",
            font=dict(size=11, color="#444"),
        )
    fig.update_yaxes(title_text="value", row=1, col=1)
    fig.update_yaxes(title_text="drawdown", tickformat=".0%", row=2, col=1)
    menu = dict(
        type="buttons",
        direction="left",
        x=0.0,
        y=1.0,
        xanchor="left",
        yanchor="bottom",
        pad=dict(t=0, b=6),
        buttons=[
            dict(label="linear", method="relayout", args=[{"yaxis.type": "linear"}]),
            dict(label="log", method="relayout", args=[{"yaxis.type": "log"}]),
        ],
    )
    extra: dict[str, Any] = {}
    if many:
        extra["legend"] = dict(orientation="h", yanchor="top", y=-0.08, xanchor="left", x=0)
    height = 580 + (22 * ((equity.shape[1] + 1) // 2) if many else 0)
    return layout(fig, title, height=height, updatemenus=[menu], margin=dict(l=60, r=30, t=100, b=50), **extra)


def monthly_returns(equity: pd.Series) -> pd.DataFrame:
    """Compounded return per calendar month: years as rows, ``Jan``..``Dec`` as columns."""
    series = equity.dropna()
    index = pd.DatetimeIndex(series.index)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    series = pd.Series(series.to_numpy(), index=index)
    month_end = series.groupby([index.year, index.month]).last()
    previous = month_end.shift(1)
    previous.iloc[0] = series.iloc[0]
    rets = month_end / previous - 1.0
    table = rets.unstack(level=1).reindex(columns=range(1, 13))
    table.columns = _MONTHS
    table.index.name = "year"
    return table


def monthly_heatmap(equity: pd.DataFrame, title: str = MONTHLY_TITLE) -> Any:
    """Years x months heatmap of monthly returns; a menu picks the column when several."""
    import plotly.graph_objects as go

    fig = go.Figure()
    columns = list(equity.columns)
    years = 0
    for i, col in enumerate(columns):
        table = monthly_returns(equity[col])
        years = max(years, len(table))
        z = table.to_numpy()
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=list(table.columns),
                y=[str(y) for y in table.index],
                name=str(col),
                visible=i == 0,
                colorscale=DIVERGING,
                zmid=0.0,
                texttemplate="%{z:.1%}",
                textfont=dict(size=9),
                hovertemplate="%{y} %{x}: %{z:.2%}<extra>" + str(col) + "</extra>",
                colorbar=dict(tickformat=".0%", title="return"),
            )
        )
    menus = []
    if len(columns) > 1:
        buttons = [
            dict(label=str(col), method="update", args=[{"visible": [j == i for j in range(len(columns))]}])
            for i, col in enumerate(columns)
        ]
        menus = [dict(type="dropdown", x=0.0, y=1.0, xanchor="left", yanchor="bottom", pad=dict(b=6), buttons=buttons)]
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    return layout(
        fig,
        title,
        height=max(340, 22 * years + 170),
        updatemenus=menus,
        hovermode="closest",
        margin=dict(l=60, r=30, t=110 if menus else 70, b=50),
    )


def trade_returns(trades: pd.DataFrame | None, title: str = TRADES_TITLE) -> Any:
    """Each round trip's return at its entry date, per symbol (None when no trades)."""
    import plotly.graph_objects as go

    if trades is None or trades.empty or not {"Return", "Entry Timestamp"} <= set(trades.columns):
        return None
    fig = go.Figure()
    symbols = trades["Symbol"].astype(str) if "Symbol" in trades.columns else pd.Series("all", index=trades.index)
    for i, symbol in enumerate(dict.fromkeys(symbols)):
        rows = trades[symbols == symbol]
        ret = rows["Return"].to_numpy(dtype=np.float64)
        text = [
            f"entry {str(a)[:10]}, exit {str(b)[:10]}, PnL {p:,.0f}"
            for a, b, p in zip(
                rows["Entry Timestamp"],
                rows.get("Exit Timestamp", rows["Entry Timestamp"]),
                rows.get("PnL", pd.Series(np.nan, index=rows.index)),
                strict=True,
            )
        ]
        fig.add_trace(
            go.Scatter(
                x=x_dates(pd.to_datetime(rows["Entry Timestamp"], utc=True)),
                y=ret,
                mode="markers",
                name=symbol,
                text=text,
                hovertemplate="%{y:.2%} %{text}<extra>" + symbol + "</extra>",
                marker=dict(color=color(i), size=7, opacity=0.75, line=dict(width=0.5, color="white")),
            )
        )
    fig.add_hline(y=0.0, line=dict(color="#444", width=1))
    fig.update_yaxes(title_text="return per trade", tickformat=".0%")
    return layout(fig, title, height=380, hovermode="closest")
