"""Price with trades: the close, the strategy's indicator lines, entries, exits and shading
while a position is open; the first chart a backtesting.py or vectorbt user looks for.

Reads ``chart.csv`` (bars and indicator lines, see :mod:`quantlab.runs.chart`) and
``trades.csv`` from the run folder. Several symbols share one chart with a menu; the
shading of the selected symbol is swapped in with it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from quantlab.reports._style import color, layout, x_dates

PRICE_TITLE = "Price and trades"
ENTRY = dict(symbol="triangle-up", size=10, color="#2ca02c", line=dict(color="white", width=0.8))
EXIT = dict(symbol="triangle-down", size=10, color="#d62728", line=dict(color="white", width=0.8))
SHADE = "rgba(44, 160, 44, 0.10)"


def _day(values: Any) -> list[str]:
    return x_dates(pd.DatetimeIndex(pd.to_datetime(values, utc=True)))


def _shapes(trades: pd.DataFrame, last: str) -> list[dict[str, Any]]:
    """One shaded band per round trip, from entry to exit (or the last bar while open)."""
    shapes = []
    for entry, exit_, status in zip(
        _day(trades["Entry Timestamp"]),
        _day(trades["Exit Timestamp"].fillna(trades["Entry Timestamp"])),
        trades.get("Status", pd.Series("Closed", index=trades.index)),
        strict=True,
    ):
        end = last if str(status) == "Open" else exit_
        shapes.append(
            dict(
                type="rect",
                xref="x",
                yref="paper",
                x0=entry,
                x1=end,
                y0=0,
                y1=1,
                fillcolor=SHADE,
                line=dict(width=0),
                layer="below",
            )
        )
    return shapes


def price_trades(chart: pd.DataFrame | None, trades: pd.DataFrame | None, title: str = PRICE_TITLE) -> Any:
    """Close and indicator lines with entry/exit markers and position shading (None without bars)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if chart is None or chart.empty or "close" not in chart.columns:
        return None
    symbols = list(dict.fromkeys(chart["symbol"].astype(str))) if "symbol" in chart.columns else ["all"]
    lower = [c for c in chart.columns if c.startswith("lower:")]
    upper = [c for c in chart.columns if c.startswith("price:")]
    rows = 2 if lower else 1
    fig = make_subplots(
        rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=[0.72, 0.28] if lower else [1.0]
    )
    owner: list[int] = []
    shapes_by_symbol: list[list[dict[str, Any]]] = []
    for k, symbol in enumerate(symbols):
        bars = chart[chart["symbol"].astype(str) == symbol] if "symbol" in chart.columns else chart
        x = x_dates(bars.index)
        show = k == 0

        def add(trace: Any, row: int = 1, _k: int = k) -> None:
            fig.add_trace(trace, row=row, col=1)
            owner.append(_k)

        add(
            go.Scatter(
                x=x,
                y=bars["close"].to_numpy(),
                name=f"{symbol} close",
                visible=show,
                line=dict(color="#333", width=1.2),
            )
        )
        for i, column in enumerate(upper):
            add(
                go.Scatter(
                    x=x,
                    y=bars[column].to_numpy(),
                    name=column.split(":", 1)[1],
                    visible=show,
                    line=dict(color=color(i), width=1.1),
                )
            )
        for i, column in enumerate(lower):
            add(
                go.Scatter(
                    x=x,
                    y=bars[column].to_numpy(),
                    name=column.split(":", 1)[1],
                    visible=show,
                    line=dict(color=color(i + len(upper)), width=1.0, dash="solid" if i == 0 else "dot"),
                ),
                row=2,
            )
        mine = pd.DataFrame()
        if trades is not None and not trades.empty and "Entry Timestamp" in trades.columns:
            sym = trades["Symbol"].astype(str) if "Symbol" in trades.columns else pd.Series(symbol, index=trades.index)
            mine = trades[sym == symbol]
        if not mine.empty:
            add(
                go.Scatter(
                    x=_day(mine["Entry Timestamp"]),
                    y=mine["Avg Entry Price"].to_numpy(),
                    mode="markers",
                    name="entry",
                    marker=ENTRY,
                    visible=show,
                    hovertemplate="entry %{x}: %{y:,.2f}<extra>" + symbol + "</extra>",
                )
            )
            closed = mine[mine.get("Status", pd.Series("Closed", index=mine.index)).astype(str) != "Open"]
            if not closed.empty:
                text = [
                    f"PnL {p:,.2f}, return {r:.2%}"
                    for p, r in zip(
                        closed["PnL"].to_numpy(dtype=np.float64),
                        closed["Return"].to_numpy(dtype=np.float64),
                        strict=True,
                    )
                ]
                add(
                    go.Scatter(
                        x=_day(closed["Exit Timestamp"]),
                        y=closed["Avg Exit Price"].to_numpy(),
                        mode="markers",
                        name="exit",
                        marker=EXIT,
                        visible=show,
                        text=text,
                        hovertemplate="exit %{x}: %{y:,.2f}, %{text}<extra>" + symbol + "</extra>",
                    )
                )
        shapes_by_symbol.append(_shapes(mine, x[-1]) if not mine.empty else [])
    menus = []
    if len(symbols) > 1:
        buttons = [
            dict(label=s, method="update", args=[{"visible": [o == k for o in owner]}, {"shapes": shapes_by_symbol[k]}])
            for k, s in enumerate(symbols)
        ]
        menus = [dict(type="dropdown", x=0.0, y=1.0, xanchor="left", yanchor="bottom", pad=dict(b=6), buttons=buttons)]
    fig.update_layout(shapes=shapes_by_symbol[0])
    fig.update_yaxes(title_text="price", row=1, col=1)
    if lower:
        fig.update_yaxes(title_text="indicator", row=2, col=1)
    return layout(
        fig,
        title,
        height=620 if lower else 480,
        updatemenus=menus,
        hovermode="closest",
        margin=dict(l=60, r=30, t=110 if menus else 80, b=50),
    )
