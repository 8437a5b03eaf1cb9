"""The list of runs under a reports folder (``quantlab runs``) and ``reports/index.html``.

The listing reads only each run's ``summary.json``, so it stays fast with many runs.
Headline metrics are the ones the run itself reports: a backtest's full-history metrics
(mean over symbols), an optimisation winner's in-sample metrics (mean over symbols, plus
the held-out Sharpe when a holdout was kept), a walk-forward's out-of-sample metrics.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quantlab.paths import reports_dir
from quantlab.reports._io import ensure_folder, write_text
from quantlab.reports.page import render_page, table_html

INDEX = "index.html"
HEADLINE = ("sharpe", "total_return", "max_drawdown", "cagr")


@dataclass
class RunInfo:
    """One line of ``quantlab runs``."""

    run_id: str
    kind: str
    created_at: str
    strategy: str
    symbols: list[str]
    interval: str
    params: dict[str, float]
    metrics: dict[str, float | None]
    basis: str
    has_report: bool
    has_tearsheet: bool
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mean(values: list[Any]) -> float | None:
    arr = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else None


def _basis(summary: dict[str, Any]) -> str:
    """``in-sample, price``: the window the listed metrics cover and the return basis."""
    from quantlab.runs.headline import returns_basis, windows

    found = windows(summary)
    return f"{found[0]['window']}, {returns_basis(summary)}" if found else ""


def headline(summary: dict[str, Any]) -> tuple[dict[str, float | None], str, dict[str, Any]]:
    """Headline metrics of a run from its summary, the basis they are measured on, extras."""
    kind = summary.get("kind")
    extra: dict[str, Any] = {}
    if kind == "backtest":
        per = list((summary.get("metrics") or {}).values())
        return {m: _mean([row.get(m) for row in per]) for m in HEADLINE}, _basis(summary), extra
    if kind == "optimize":
        best = (summary.get("best") or {}).get("metrics_mean") or {}
        holdout = summary.get("holdout") or []
        if holdout:
            extra["holdout_sharpe"] = _mean([row.get("holdout_sharpe") for row in holdout])
        extra["metric"] = summary.get("metric")
        extra["n_combinations"] = summary.get("n_combinations")
        return {m: best.get(m) for m in HEADLINE}, _basis(summary), extra
    if kind == "walkforward":
        wf = summary.get("walkforward") or {}
        per = list((wf.get("oos_metrics") or {}).values())
        efficiency = [v.get("efficiency") for v in (wf.get("efficiency") or {}).values() if isinstance(v, dict)]
        extra["efficiency"] = _mean(efficiency)
        extra["n_folds"] = summary.get("n_folds")
        return {m: _mean([row.get(m) for row in per]) for m in HEADLINE}, _basis(summary), extra
    return dict.fromkeys(HEADLINE), "", extra


def run_info(folder: Path) -> RunInfo:
    """Listing entry of one run folder (an entry with ``error`` set when unreadable)."""
    try:
        with open(folder / "summary.json", encoding="utf-8") as fh:
            summary = json.load(fh)
        if not isinstance(summary, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as err:
        return RunInfo(
            folder.name,
            "?",
            "",
            "?",
            [],
            "",
            {},
            dict.fromkeys(HEADLINE),
            "",
            False,
            False,
            error=f"unreadable summary.json ({err})",
        )
    metrics, basis, extra = headline(summary)
    kind = str(summary.get("kind", "?"))
    params = (summary.get("best") or {}).get("params") if kind == "optimize" else summary.get("params")
    return RunInfo(
        run_id=str(summary.get("run_id") or folder.name),
        kind=kind,
        created_at=str(summary.get("created_at") or ""),
        strategy=str(summary.get("strategy", "?")),
        symbols=[str(s) for s in summary.get("symbols") or []],
        interval=str(summary.get("interval") or ""),
        params=dict(params or {}),
        metrics=metrics,
        basis=basis,
        has_report=(folder / "report.html").is_file(),
        has_tearsheet=(folder / "tearsheet.html").is_file(),
        extra=extra,
    )


def list_runs(reports: str | os.PathLike[str] | None = None, kind: str | None = None) -> list[RunInfo]:
    """Runs under the reports folder, newest first."""
    from quantlab.runs.artifacts import run_folders

    infos = [run_info(folder) for folder in run_folders(reports)]
    if kind:
        infos = [i for i in infos if i.kind == kind]
    return sorted(infos, key=lambda i: (i.created_at, i.run_id), reverse=True)


def runs_frame(infos: list[RunInfo]) -> pd.DataFrame:
    """The listing as a table (one row per run)."""
    rows = []
    for info in infos:
        row: dict[str, Any] = {
            "run_id": info.run_id,
            "date": info.created_at[:16].replace("T", " "),
            "kind": info.kind,
            "strategy": info.strategy,
            "symbols": ",".join(info.symbols),
            "params": ", ".join(f"{k}={v:g}" for k, v in info.params.items() if isinstance(v, (int, float))),
        }
        row.update({m: np.nan if info.metrics.get(m) is None else info.metrics[m] for m in HEADLINE})
        row["basis"] = info.error or info.basis
        rows.append(row)
    columns = ["run_id", "date", "kind", "strategy", "symbols", "params", *HEADLINE, "basis"]
    return pd.DataFrame(rows, columns=columns)


def compare_folders(base: Path) -> list[Path]:
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and (p / "compare.html").is_file())


def write_index(reports: str | os.PathLike[str] | None = None) -> Path:
    """Write ``<reports>/index.html`` linking every run's pages and every comparison.

    Raises:
        ReportError: the reports folder is not writable.
    """
    from quantlab.reports.page import Section

    base = reports_dir(reports)
    infos = list_runs(base)
    frame = runs_frame(infos)
    ids, pages = [], []
    for info in infos:
        rid = html.escape(info.run_id)
        ids.append(f'<a href="{rid}/report.html">{rid}</a>' if info.has_report else rid)
        links = []
        if info.has_report:
            links.append(f'<a href="{rid}/report.html">charts</a>')
        if info.has_tearsheet:
            links.append(f'<a href="{rid}/tearsheet.html">tearsheet</a>')
        pages.append(" ".join(links) or f"<code>quantlab report {rid}</code>")
    frame["run_id"] = ids
    frame["pages"] = pages
    body = table_html(frame, raw=("run_id", "pages")) if infos else "<p>No runs yet.</p>"
    comparisons = "".join(
        f'<li><a href="{html.escape(p.name)}/compare.html">{html.escape(p.name)}</a></li>'
        for p in compare_folders(base)
    )
    sections = [
        Section(
            "Runs",
            "runs",
            html=body,
            note="Newest first. Metrics: backtest full history (mean over "
            "symbols); optimize the winner in-sample (mean over symbols); walk-forward out-of-sample.",
        )
    ]
    if comparisons:
        sections.append(Section("Comparisons", "comparisons", html=f"<ul>{comparisons}</ul>"))
    header = [
        f"<p>{len(infos)} runs in {html.escape(str(base))}. Rebuild a run's pages with "
        "<code>quantlab report RUN_ID</code>; compare runs with <code>quantlab compare ID ID</code>.</p>"
    ]
    text = render_page("quantlab reports", header, sections)
    ensure_folder(base)
    return write_text(base / INDEX, text)
