"""Write an optimisation's artifacts under ``reports/<run_id>/``.

Files: ``results.parquet`` (every symbol x combination), ``top.csv`` (winners with
vectorbt's replayed metrics), ``holdout.csv``, ``equity.csv``, ``trades.csv`` and ``chart.csv`` (the
winner over the full history; bars and indicator lines for the price chart), ``overfit.json`` (DSR, PBO with its logits) and
``summary.json`` (run id, config and data hashes, git sha, versions, timings).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

import pandas as pd

from quantlab.chart_data import CHART, chart_frame
from quantlab.replay import equity_frame, records_frame
from quantlab.runs import RunDir, clean_for_json, git_sha

if TYPE_CHECKING:
    from quantlab.optimizer.api import OptimizeResult


def versions() -> dict[str, str]:
    import numba
    import numpy
    import vectorbt

    import quantlab

    return {
        "quantlab": quantlab.__version__,
        "numpy": numpy.__version__,
        "pandas": pd.__version__,
        "numba": numba.__version__,
        "vectorbt": vectorbt.__version__,
    }


def best_portfolios(result: OptimizeResult) -> dict[str, Any]:
    """The winner's vectorbt Portfolio over the full history, per symbol."""
    return {s: result.portfolio(result.best, symbol=s, window="full") for s in result.inputs.symbols}


def labelled(summary: dict[str, Any]) -> dict[str, Any]:
    """``headline`` (the run's headline window, its basis and every window it reports on)
    and ``verdict`` (per symbol and ``overall``; optimize and walk-forward only)."""
    from quantlab.headline import run_headline
    from quantlab.verdict import run_verdicts, worst

    out: dict[str, Any] = {"headline": run_headline(summary)}
    verdicts = run_verdicts(summary)
    if verdicts:
        out["verdict"] = {"overall": worst(verdicts.values()).to_dict(),
                          "symbols": {s: v.to_dict() for s, v in verdicts.items()}}
    return out


def finish_run(run: RunDir, result: Any, save_started: float, began: float) -> None:
    """Stamp the summary (run id, time, git sha, versions, timings), write it last, and
    point ``result`` at the run folder."""
    result.summary.setdefault("timings", {})
    result.summary["timings"]["save"] = time.perf_counter() - save_started
    result.summary["timings"]["total"] = time.perf_counter() - began
    inputs = getattr(result, "inputs", None)
    if "period" not in result.summary and inputs is not None:  # walk-forward: the bars' first and last day
        result.summary["period"] = {s: {"first": str(inputs.frames[s].index[0]), "last": str(inputs.frames[s].index[-1]),
                                        "bars": len(inputs.frames[s])} for s in inputs.symbols}
    result.summary.update(labelled(result.summary))
    result.summary.update(
        {
            "run_id": run.run_id,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "git_sha": git_sha(),
            "versions": versions(),
        }
    )
    run.write_json("summary.json", clean_for_json(result.summary))
    result.run_id = run.run_id
    result.path = run.path


def save_optimize(result: OptimizeResult, reports: Any, began: float) -> RunDir:
    from quantlab.backends import run_dir

    run = run_dir("optimize", result.summary["config_hash"], reports)  # the checkpointed folder, if any
    t0 = time.perf_counter()
    run.write_parquet("results.parquet", result.results)
    run.write_csv("top.csv", result.top, index=False)
    if result.holdout is not None:
        run.write_csv("holdout.csv", result.holdout, index=False)
    portfolios = best_portfolios(result)
    run.write_csv("equity.csv", equity_frame(portfolios))
    run.write_csv("trades.csv", records_frame(portfolios, "positions"), index=False)
    run.write_csv(CHART, chart_frame(result.spec, result.inputs, result.best))
    run.write_json("overfit.json", clean_for_json(result.overfit), indent=None)
    finish_run(run, result, t0, began)
    return run


def save_walkforward(result: Any, reports: Any, began: float) -> RunDir:
    """Write ``folds.csv``, ``drift.csv``, ``equity.csv`` (stitched out-of-sample),
    ``trades.csv`` and ``summary.json`` for a walk-forward run."""
    from quantlab.backends import run_dir

    run = run_dir("walkforward", result.summary["config_hash"], reports)  # the checkpointed folder, if any
    t0 = time.perf_counter()
    run.write_csv("folds.csv", result.folds, index=False)
    run.write_csv("drift.csv", result.drift, index=False)
    run.write_csv("equity.csv", result.equity)
    portfolios = {s: result.portfolio(s) for s in result.inputs.symbols}
    run.write_csv("trades.csv", records_frame(portfolios, "positions"), index=False)
    finish_run(run, result, t0, began)
    return run
