"""Assemble one self-contained HTML page: plotly.js embedded once, no CDN, stable ids.

Charts are plotly figures rendered with fixed ``div_id`` values, so the same run gives
the same page; tables are plain HTML. A small script records JavaScript errors in
``window.__quantlabErrors`` (the browser test reads it).
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantlab.reports._style import num, pct

PCT_COLUMNS = ("total_return", "cagr", "max_drawdown", "win_rate", "exposure", "volatility", "holdout_percentile")
_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f2937;color:#f9fafb;padding:18px 28px}
header h1{margin:0 0 6px 0;font-size:22px} header p{margin:2px 0;color:#d1d5db;font-size:13px}
header a{color:#93c5fd}
main{padding:8px 28px 40px 28px;max-width:1400px}
nav{font-size:13px;margin:12px 0} nav a{margin-right:14px;color:#2563eb;text-decoration:none}
section{background:#fff;border:1px solid #e5e7eb;border-radius:6px;margin:18px 0;padding:10px 14px;overflow-x:auto}
h2{font-size:17px;margin:6px 0 8px 0}
.note{color:#555;font-size:13px;margin:4px 0 8px 0}
.notice{border-radius:6px;padding:10px 14px;margin:14px 0;font-size:14px}
.notice.error{background:#fef2f2;border:1px solid #fca5a5;color:#7f1d1d}
.notice.warning{background:#fffbeb;border:1px solid #fcd34d;color:#78350f}
.notice.info{background:#eff6ff;border:1px solid #93c5fd;color:#1e3a8a}
table.tbl{border-collapse:collapse;font-size:13px;margin:6px 0}
table.tbl th,table.tbl td{padding:4px 10px;border-bottom:1px solid #e5e7eb;text-align:right;white-space:nowrap}
table.tbl th{background:#f3f4f6} table.tbl td:first-child,table.tbl th:first-child{text-align:left}
tr.best td{font-weight:600;background:#ecfdf5}
"""
_ERROR_HOOK = (
    "<script>window.__quantlabErrors=[];"
    "window.addEventListener('error',function(e){window.__quantlabErrors.push(String(e.message||e))});"
    "window.addEventListener('unhandledrejection',function(e){window.__quantlabErrors.push(String(e.reason))});"
    "</script>"
)


@dataclass
class Section:
    """One block of the page: a heading, an optional chart, table HTML and a note."""

    title: str
    slug: str
    figure: Any = None
    html: str = ""
    note: str = ""


@functools.lru_cache(maxsize=1)
def plotly_js() -> str:
    """plotly.min.js as shipped with the installed plotly (embedded, never fetched)."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def figure_html(figure: Any, div_id: str) -> str:
    """The figure as a ``<div>`` plus its ``Plotly.newPlot`` call (plotly.js not included)."""
    import plotly.io as pio

    height = figure.layout.height or 450
    return str(
        pio.to_html(
            figure,
            full_html=False,
            include_plotlyjs=False,
            div_id=div_id,
            default_height=f"{height}px",
            config={"displaylogo": False, "responsive": True},
        )
    )


def format_cell(column: str, value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        base = column.removeprefix("holdout_").removeprefix("in_sample_").removeprefix("vbt_")
        base = base.removeprefix("is_").removeprefix("oos_")
        return pct(value) if base in PCT_COLUMNS or column in PCT_COLUMNS else num(value)
    if isinstance(value, pd.Timestamp):
        return str(value.date()) if value == value.normalize() else str(value)
    return "" if value is None else str(value)


def table_html(frame: pd.DataFrame, highlight: Sequence[bool] | None = None, raw: Sequence[str] = ()) -> str:
    """A small HTML table with metrics formatted by name (percentages where they belong).

    Columns named in ``raw`` hold ready-made HTML and are inserted as they are.
    """
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for i, (_, row) in enumerate(frame.iterrows()):
        cells = []
        for column in frame.columns:
            text = str(row[column]) if column in raw else html.escape(format_cell(str(column), row[column]))
            cells.append(f"<td>{text}</td>")
        cls = ' class="best"' if highlight is not None and highlight[i] else ""
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f'<table class="tbl"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def notice_html(level: str, text: str) -> str:
    return f'<div class="notice {level}">{text}</div>'


def render_page(title: str, header: Iterable[str], sections: Sequence[Section], notices: Iterable[str] = ()) -> str:
    """The full HTML document; charts share one embedded copy of plotly.js."""
    needs_js = any(s.figure is not None for s in sections)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style>",
        _ERROR_HOOK,
    ]
    if needs_js:
        parts.append(f'<script type="text/javascript">{plotly_js()}</script>')
    parts.append("</head><body>")
    parts.append(f"<header><h1>{html.escape(title)}</h1>{''.join(header)}</header><main>")
    parts.extend(notices)
    if len(sections) > 1:
        links = "".join(f'<a href="#{s.slug}">{html.escape(s.title)}</a>' for s in sections)
        parts.append(f"<nav>{links}</nav>")
    for section in sections:
        parts.append(f'<section id="{section.slug}">')
        if section.figure is None:  # a chart carries its own title
            parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.note:
            parts.append(f'<p class="note">{section.note}</p>')
        if section.figure is not None:
            parts.append(figure_html(section.figure, f"chart-{section.slug}"))
        if section.html:
            parts.append(section.html)
        parts.append("</section>")
    parts.append("</main></body></html>\n")
    return "\n".join(parts)
