"""Report pages of runs: QuantStats tearsheets, interactive plotly pages, index, comparisons.

Typical use::

    from quantlab import reports
    outcome = reports.build("reports/optimize-20260101-120000-abcdef12")   # or a run id
    outcome.pages          # {"report": .../report.html, "tearsheet": .../tearsheet.html}
    outcome.failures       # {} or {"tearsheet": "QuantStats 0.0.86 failed: ..."}
    reports.list_runs()    # what ``quantlab runs`` prints
    reports.compare(["backtest-...", "optimize-..."], metric="sharpe")

Pages open offline: plotly.js is embedded in every page; the benchmark comes from the
local store. See ``docs/reports.md``.
"""

from __future__ import annotations

from quantlab.reports.builder import REPORT, ReportOutcome, build, build_pages
from quantlab.reports.compare import Comparison, compare
from quantlab.reports.index import RunInfo, list_runs, runs_frame, write_index

__all__ = [
    "REPORT",
    "Comparison",
    "ReportOutcome",
    "RunInfo",
    "build",
    "build_pages",
    "compare",
    "list_runs",
    "runs_frame",
    "write_index",
]
