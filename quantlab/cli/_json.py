"""``--json`` on the research commands: one JSON document on stdout and nothing else.

Human-readable lines are not printed; warnings and progress bars go to stderr as always.
The document is the run's ``summary.json`` (with its labelled ``headline`` and ``verdict``)
plus the tables a script needs, all with NaN and infinities as ``null``.
"""

from __future__ import annotations

import json
from typing import Any

import click
import pandas as pd

from quantlab.runs.record import clean_for_json

json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON document (summary, headline, verdict, tables) on stdout instead of text.",
)


def records(frame: pd.DataFrame | None) -> list[dict[str, Any]] | None:
    """Rows of ``frame`` as JSON-safe dicts (timestamps as ISO text)."""
    if frame is None:
        return None
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].map(lambda t: None if pd.isna(t) else t.isoformat())
    rows: list[dict[str, Any]] = out.to_dict("records")
    return rows


def emit(result: Any, **tables: pd.DataFrame | None) -> None:
    """Write the document for ``result`` (a backtest, optimize or walk-forward result)."""
    report = getattr(result, "report", None)
    doc: dict[str, Any] = {
        "run_id": getattr(result, "run_id", None),
        "path": None if getattr(result, "path", None) is None else str(result.path),
        "summary": result.summary,
        **{name: records(frame) for name, frame in tables.items()},
        "report": None
        if report is None
        else {
            "pages": {k: str(v) for k, v in report.pages.items()},
            "failures": dict(report.failures),
            "warnings": list(report.warnings),
        },
    }
    click.echo(json.dumps(clean_for_json(doc), indent=2, sort_keys=True, allow_nan=False, default=str))
