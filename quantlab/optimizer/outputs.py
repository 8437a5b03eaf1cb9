"""Write an optimisation's artifacts under ``reports/<run_id>/``.

Files: ``results.parquet`` (every symbol x combination), ``top.csv`` (winners with
vectorbt's replayed metrics), ``holdout.csv``, ``equity.csv``, ``trades.csv`` and ``chart.csv`` (the
winner over the full history; bars and indicator lines for the price chart), ``overfit.json`` (DSR, PBO with its logits) and
``summary.json`` (run id, config and data hashes, git sha, versions, timings).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from quantlab.engine.backends import checkpoint_run
from quantlab.replay import equity_frame, records_frame
from quantlab.runs.chart import CHART, chart_frame
from quantlab.runs.record import RunDir, clean_for_json, finish_run, new_run_id

if TYPE_CHECKING:
    from quantlab.optimizer.result import OptimizeResult


def best_portfolios(result: OptimizeResult) -> dict[str, Any]:
    """The winner's vectorbt Portfolio over the full history, per symbol."""
    return {s: result.portfolio(result.best, symbol=s, window="full") for s in result.inputs.symbols}


def run_dir(kind: str, cfg_hash: str, reports: Any) -> RunDir:
    """The folder to save a run in: the checkpointed one when there is one, else a new one."""
    run = checkpoint_run(kind)
    return RunDir(run.run_id, run.path) if run is not None else RunDir.create(new_run_id(kind, cfg_hash), reports)


def save_optimize(result: OptimizeResult, reports: Any, began: float) -> RunDir:
    run = run_dir("optimize", result.summary["config_hash"], reports)  # the checkpointed folder, if any
    t0 = time.perf_counter()
    if result.results is None:  # streamed: the finished file moves in (same filesystem, atomic)
        os.replace(result.results_file, run.path / "results.parquet")
    else:
        from quantlab.optimizer.stream import write_results  # the backends load the sweep kernels

        run.write_bytes("results.parquet", lambda p: write_results(result.results, p))
    run.write_csv("top.csv", result.top, index=False)
    if result.holdout is not None:
        run.write_csv("holdout.csv", result.holdout, index=False)
    portfolios = best_portfolios(result)
    run.write_csv("equity.csv", equity_frame(portfolios))
    sims = {s: result.record(result.best, s, "full") for s in result.inputs.symbols}
    run.write_csv("trades.csv", records_frame(portfolios, "positions", sims), index=False)
    run.write_csv(CHART, chart_frame(result.spec, result.inputs, result.best))
    run.write_json("overfit.json", clean_for_json(result.overfit), indent=None)
    finish_run(run, result, t0, began)
    return run


def save_walkforward(result: Any, reports: Any, began: float) -> RunDir:
    """Write ``folds.csv``, ``drift.csv``, ``equity.csv`` (stitched out-of-sample),
    ``trades.csv`` and ``summary.json`` for a walk-forward run."""
    run = run_dir("walkforward", result.summary["config_hash"], reports)  # the checkpointed folder, if any
    t0 = time.perf_counter()
    run.write_csv("folds.csv", result.folds, index=False)
    run.write_csv("drift.csv", result.drift, index=False)
    run.write_csv("equity.csv", result.equity)
    portfolios = {s: result.portfolio(s) for s in result.inputs.symbols}
    run.write_csv("trades.csv", records_frame(portfolios, "positions", result.records), index=False)
    finish_run(run, result, t0, began)
    return run
