"""``quantlab.load_run(run_id)``: a saved run's summary, metrics, trades and equity.

Reads only what the run wrote under ``reports/<run_id>/``; nothing is recomputed, so a
notebook gets the numbers the command line printed. Every metrics row says which window it
covers (see :mod:`quantlab.runs.headline`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from quantlab.runs.artifacts import open_run
from quantlab.runs.headline import FULL, HELD_OUT, IN_SAMPLE, OOS, returns_basis


@dataclass
class LoadedRun:
    """A saved run.

    Attributes:
        run_id, kind, path: the run and its folder.
        summary: ``summary.json`` as a dict (config, hashes, headline, verdict, timings...).
        metrics: one row per (window, symbol): ``window`` and ``symbol`` columns, then the
            metrics. Backtest: full history; optimize: the winner in-sample (and held out
            when a holdout was kept); walk-forward: the stitched out-of-sample account.
        trades: round trips (``trades.csv``; empty when there were none).
        equity: portfolio value per bar, one column per symbol (``equity.csv``; the window
            is ``summary["headline"]["equity_window"]``).
    """

    run_id: str
    kind: str
    path: Path
    summary: dict[str, Any]
    metrics: pd.DataFrame
    trades: pd.DataFrame
    equity: pd.DataFrame
    extra: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def returns_basis(self) -> str:
        return returns_basis(self.summary)


def _frame(window: str, per_symbol: dict[str, dict[str, Any]]) -> pd.DataFrame:
    rows = [{"window": window, "symbol": str(symbol), **(values or {})} for symbol, values in per_symbol.items()]
    return pd.DataFrame(rows)


def _optimize_metrics(run: Any) -> pd.DataFrame:
    best = run.params
    results = run.results()
    mask = pd.Series(True, index=results.index)
    for name, value in best.items():
        if name in results.columns:
            mask &= results[name] == value
    rows = results[mask]
    metric_cols = [
        c for c in rows.columns if c not in ("symbol", "combo", "status", *best) and not c.startswith("holdout_")
    ]
    frames = [_frame(IN_SAMPLE, {r["symbol"]: {c: r[c] for c in metric_cols} for _, r in rows.iterrows()})]
    held = [c for c in rows.columns if c.startswith("holdout_")]
    if held:
        frames.append(
            _frame(HELD_OUT, {r["symbol"]: {c[len("holdout_") :]: r[c] for c in held} for _, r in rows.iterrows()})
        )
    return pd.concat(frames, ignore_index=True)


def load_run(run_id: str | os.PathLike[str], reports: str | os.PathLike[str] | None = None) -> LoadedRun:
    """Load a saved run by id (or folder path) from ``reports`` (default reports/ or $QUANTLAB_REPORTS).

    Raises:
        ReportError: unknown run id (with the closest ids), or a missing or unreadable file.
    """
    run = open_run(run_id, reports)
    s = run.summary
    if run.kind == "backtest":
        metrics = _frame(FULL, s.get("metrics") or {})
    elif run.kind == "optimize":
        metrics = _optimize_metrics(run)
    else:
        metrics = _frame(OOS, (s.get("walkforward") or {}).get("oos_metrics") or {})
    trades = run.trades()
    extra = {}
    for name, reader in (("top", run.top), ("holdout", run.holdout), ("results", run.results), ("folds", run.folds)):
        if run.has({"results": "results.parquet", "folds": "folds.csv"}.get(name, f"{name}.csv")):
            extra[name] = reader()
    return LoadedRun(
        run_id=run.run_id,
        kind=run.kind,
        path=run.path,
        summary=s,
        metrics=metrics,
        trades=trades if trades is not None else pd.DataFrame(),
        equity=run.equity(),
        extra=extra,
    )
