"""``compare(run_ids)``: runs side by side, overlaid equity curves, the best by one metric.

Every run kind saves ``equity.csv``, so the comparison recomputes the same metrics from it
for every run and symbol (see :mod:`quantlab.reports.metrics`). Output goes to
``reports/compare-<hash of the sorted ids>/`` (``compare.html``, ``compare.csv``).
"""

from __future__ import annotations

import hashlib
import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from quantlab.errors import ParameterError, ReportError, suggest
from quantlab.paths import reports_dir
from quantlab.reports import charts
from quantlab.reports._io import ensure_folder, write_text
from quantlab.reports.metrics import EQUITY_METRICS, LOWER_IS_BETTER, bars_per_year, equity_metrics
from quantlab.reports.page import Section, notice_html, render_page, table_html
from quantlab.runs.artifacts import open_run
from quantlab.runs.headline import equity_window, returns_basis

COMPARE_HTML = "compare.html"
COMPARE_CSV = "compare.csv"
OUT_OF_SAMPLE = "out-of-sample"
#: What a run's equity curve is, for ranking: never rank one group against another.
SAMPLE = {"backtest": "not searched", "optimize": "in-sample winner", "walkforward": OUT_OF_SAMPLE}


@dataclass
class Comparison:
    """A written comparison.

    Attributes:
        table: one row per run and equity column, with the recomputed metrics.
        metric: the metric the best was chosen by.
        best: position in ``table`` of the best row (None when every value is NaN).
        path, html, csv: the output folder and files.
        warnings: why the ranking may not be like for like (intervals or periods differ).
        best_by_sample: position of the best row within each ``sample`` group. Runs whose
            curves were chosen in-sample (optimize), never searched (backtest) or are out of
            sample (walk-forward) are never ranked against each other: with more than one
            group, ``best`` is the best out-of-sample row (None without one).
    """

    table: pd.DataFrame
    metric: str
    best: int | None
    path: Path
    html: Path
    csv: Path
    warnings: list[str] = field(default_factory=list)
    best_by_sample: dict[str, int] = field(default_factory=dict)

    @property
    def best_row(self) -> pd.Series | None:
        return None if self.best is None else self.table.iloc[self.best]


def check_metric(metric: str) -> str:
    if metric not in EQUITY_METRICS:
        hint = suggest(metric, EQUITY_METRICS, then=f"use one of {', '.join(EQUITY_METRICS)}")
        raise ParameterError(f"unknown comparison metric {metric!r}", fix=hint)
    return metric


def compare_id(run_ids: Sequence[str]) -> str:
    """Folder name of a comparison: the same set of runs always maps to the same folder."""
    digest = hashlib.sha256("\n".join(sorted(run_ids)).encode()).hexdigest()
    return f"compare-{digest[:8]}"


def best_position(values: pd.Series, metric: str) -> int | None:
    arr = values.to_numpy(dtype=np.float64)
    if not np.isfinite(arr).any():
        return None
    arr = np.where(np.isfinite(arr), arr, np.inf if metric in LOWER_IS_BETTER else -np.inf)
    return int(np.argmin(arr) if metric in LOWER_IS_BETTER else np.argmax(arr))


def compare(
    runs: Sequence[str | os.PathLike[str]],
    metric: str = "sharpe",
    reports: str | os.PathLike[str] | None = None,
) -> Comparison:
    """Compare two or more runs and write ``compare.html`` and ``compare.csv``.

    Raises:
        ReportError: fewer than two runs, an unknown run, missing artifacts, or an
            unwritable reports folder.
        ParameterError: unknown metric.
    """
    check_metric(metric)
    loaded = []
    for run in dict.fromkeys(str(r) for r in runs):
        loaded.append(open_run(run, reports))
    if len(loaded) < 2:
        raise ReportError(
            "compare needs at least two different runs",
            found=len(loaded),
            fix="pass two or more run ids (see `quantlab runs`)",
        )
    rows, curves = [], {}
    for r in loaded:
        equity = r.equity()
        per_year = bars_per_year(r.interval)
        params = ", ".join(f"{k}={v:g}" for k, v in r.params.items() if isinstance(v, (int, float)))
        for column in equity.columns:
            series = equity[column].dropna()
            label = f"{r.run_id} {column} ({SAMPLE[r.kind]})"
            start = r.init_cash or float(series.iloc[0])
            curves[label] = series / start
            rows.append(
                {
                    "run_id": r.run_id,
                    "kind": r.kind,
                    "sample": SAMPLE[r.kind],
                    "window": equity_window(r.summary),
                    "returns_basis": returns_basis(r.summary),
                    "strategy": r.strategy,
                    "symbol": str(column),
                    "params": params,
                    "interval": r.interval,
                    "first": str(series.index[0].date()),
                    "last": str(series.index[-1].date()),
                    "bars": len(series),
                    **equity_metrics(series, per_year, r.init_cash),
                }
            )
    table = pd.DataFrame(rows)
    by_sample = {}
    for group, frame in table.groupby("sample", sort=False):
        pos = best_position(frame[metric], metric)
        if pos is not None:
            by_sample[str(group)] = int(frame.index[pos])
    if table["sample"].nunique() == 1:
        best = best_position(table[metric], metric)
    else:
        best = by_sample.get(OUT_OF_SAMPLE)
    warnings = comparability_warnings(table)
    base = reports_dir(reports)
    folder = ensure_folder(base / compare_id([r.run_id for r in loaded]))
    csv_path = folder / COMPARE_CSV
    write_text(csv_path, table.to_csv(index=False, float_format="%.12g", lineterminator="\n"))
    growth = pd.DataFrame(curves).sort_index()
    page = _page(table, growth, metric, best, [r.run_id for r in loaded], warnings, by_sample)
    html_path = write_text(folder / COMPARE_HTML, page)
    from quantlab.reports.index import write_index

    write_index(base)
    return Comparison(table, metric, best, folder, html_path, csv_path, warnings, by_sample)


def comparability_warnings(table: pd.DataFrame) -> list[str]:
    """Reasons the rows are not like for like: in- and out-of-sample curves, other return
    bases, other bar intervals, other periods."""
    warnings = []
    if "sample" in table and table["sample"].nunique() > 1:
        groups = ", ".join(
            f"{g} ({', '.join(sorted(set(f['run_id'])))})" for g, f in table.groupby("sample", sort=False)
        )
        warnings.append(
            f"the runs mix curves of different samples: {groups}. An optimisation's curve is its in-sample "
            "winner, a walk-forward's is out of sample only; they are ranked separately, never against "
            "each other"
        )
    if "returns_basis" in table and table["returns_basis"].nunique() > 1:
        warnings.append(
            "the runs use different return bases (price vs total return): dividends make the "
            "total-return runs look better"
        )
    intervals = sorted(set(table["interval"].astype(str)))
    if len(intervals) > 1:
        warnings.append(
            f"the runs use different bar intervals ({', '.join(intervals)}): annualised metrics are not comparable"
        )
    periods = sorted(set(zip(table["first"], table["last"], strict=True)))
    if len(periods) > 1:
        shown = "; ".join(f"{a}..{b}" for a, b in periods[:4]) + (" ..." if len(periods) > 4 else "")
        warnings.append(
            f"the runs cover different periods ({shown}): rank them over the same dates for a fair comparison"
        )
    return warnings


def _page(
    table: pd.DataFrame,
    growth: pd.DataFrame,
    metric: str,
    best: int | None,
    ids: list[str],
    warnings: list[str],
    by_sample: dict[str, int] | None = None,
) -> str:
    import plotly.graph_objects as go

    from quantlab.reports._style import color, layout

    notices = []
    if by_sample and len(set(table["sample"])) > 1:
        for group, pos in by_sample.items():
            row = table.iloc[pos]
            notices.append(
                notice_html(
                    "info",
                    f"<b>Best by {html.escape(metric)} among {html.escape(group)} runs:</b> "
                    f"{html.escape(row['run_id'])} ({html.escape(row['symbol'])}), "
                    f"{metric} = {row[metric]:.4g}",
                )
            )
    elif best is not None:
        row = table.iloc[best]
        notices.append(
            notice_html(
                "info",
                f"<b>Best by {html.escape(metric)}:</b> {html.escape(row['run_id'])} "
                f"({html.escape(row['symbol'])}), {metric} = {row[metric]:.4g}",
            )
        )
    else:
        notices.append(notice_html("warning", f"No run has a finite {html.escape(metric)}."))
    notices += [notice_html("warning", html.escape(w)) for w in warnings]
    figure = charts.equity_drawdown(growth.ffill(), title="Equity curves (growth of 1)")
    labels = [f"{a} {b}" for a, b in zip(table["run_id"], table["symbol"], strict=True)]
    bars = go.Figure(
        go.Bar(
            x=table[metric],
            y=labels,
            orientation="h",
            marker=dict(color=[color(3) if i == best else color(0) for i in range(len(table))]),
        )
    )
    bars.update_yaxes(autorange="reversed")
    layout(bars, f"{metric} by run", height=max(260, 40 * len(table) + 140), hovermode="closest")
    sections = [
        Section("Equity curves", "equity", figure=figure, note="Each curve divided by its initial cash."),
        Section(f"{metric} by run", "metric", figure=bars),
        Section(
            "Side by side",
            "table",
            html=table_html(table, highlight=[i == best for i in range(len(table))]),
            note="Metrics recomputed from each run's equity.csv (risk-free 0, annualised with the bar interval).",
        ),
    ]
    header = [
        f"<p>{len(ids)} runs: {html.escape(', '.join(ids))}</p>",
        '<p><a href="compare.csv">compare.csv</a> &middot; <a href="../index.html">all runs</a></p>',
    ]
    return render_page(f"Comparison by {metric}", header, sections, notices)
