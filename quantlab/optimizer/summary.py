"""The ``config`` (hashed into the run id) and ``summary.json`` of optimise and walk-forward runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from quantlab.engine.intervals import short_samples
from quantlab.engine.settings import SimConfig, inert_settings
from quantlab.engine.strategy import StrategySpec
from quantlab.inputs import MarketInputs
from quantlab.kernels.layout import METRIC_NAMES
from quantlab.optimizer.evaluate import Window
from quantlab.optimizer.folds import Fold, WalkForwardWindows
from quantlab.runs.record import clean_for_json, config_hash
from quantlab.runspec import RunSpec, SearchSpec

REPLAY_TOLERANCE = 1e-9
_PBO_ARRAYS = ("logits", "is_performance", "oos_performance")


def search_config(
    *,
    kind: str,
    spec: StrategySpec,
    inputs: MarketInputs,
    run: RunSpec,
    search: SearchSpec,
    grid: str | None,
    fixed: Mapping[str, float],
    **own: Any,
) -> dict[str, Any]:
    """The keys every search run is identified by (hashed into its run id), plus the
    command's ``own`` keys: ``grid`` and ``fixed`` as resolved against the strategy, not as
    typed; a TPE search adds its trial count and seed."""
    config: dict[str, Any] = {
        "kind": kind,
        "strategy": spec.name,
        "symbols": inputs.symbols,
        "interval": inputs.interval.name,
        "start": run.start,
        "end": run.end,
        "grid": grid,
        "fixed_params": dict(fixed),
        "metric": search.metric,
        "constraints": list(search.constraints),
        "method": search.method,
        "sim": run.sim.to_dict(),
        **own,
        **inputs.basis_info(),
    }
    if search.method == "tpe":
        config.update({"trials": search.trials, "seed": search.seed})
    return config


def optimize_config(
    *,
    spec: StrategySpec,
    inputs: MarketInputs,
    run: RunSpec,
    search: SearchSpec,
    grid: str | None,
    fixed: Mapping[str, float],
    top: int,
    holdout: float,
    n_blocks: int,
) -> dict[str, Any]:
    """What identifies an optimisation: :func:`search_config` plus its ranking and holdout."""
    own = {"top": top, "holdout": holdout, "n_blocks": n_blocks}
    return search_config(
        kind="optimize", spec=spec, inputs=inputs, run=run, search=search, grid=grid, fixed=fixed, **own
    )


def _summary_head(
    *, spec: StrategySpec, inputs: MarketInputs, metric: str, config: dict[str, Any], cfg_hash: str
) -> dict[str, Any]:
    """The keys that open every search run's ``summary.json`` (the kind comes from the config)."""
    return {
        "kind": config["kind"],
        "strategy": spec.name,
        "symbols": inputs.symbols,
        "interval": inputs.interval.name,
        "metric": metric,
        **inputs.basis_info(),
        "config": config,
        "config_hash": cfg_hash,
        "data_hash": inputs.data_hash,
    }


def optimize_summary(
    *,
    spec: StrategySpec,
    inputs: MarketInputs,
    sim: SimConfig,
    config: dict[str, Any],
    cfg_hash: str,
    metric: str,
    best: dict[str, float],
    best_combo: int,
    best_row: pd.Series,
    n_passing: int,
    nan_combinations: dict[str, Any],
    metric_distribution: dict[str, Any],
    holdout_table: pd.DataFrame | None,
    overfit: dict[str, Any],
    replay_diff: float,
    study_info: dict[str, Any],
    values: np.ndarray,
    evaluations: int,
    timings: dict[str, float],
    windows: dict[str, Window],
) -> dict[str, Any]:
    sweep_seconds = timings.get("sweep_compute", 0.0)
    inert = inert_settings(sim, stacklevel=6)  # the same frames as short_samples below
    summary = {
        **_summary_head(spec=spec, inputs=inputs, metric=metric, config=config, cfg_hash=cfg_hash),
        "period": {
            s: {
                "first": str(inputs.prices[s].index[0]),
                "last": str(inputs.prices[s].index[-1]),
                "in_sample_end": str(inputs.prices[s].index[w.end - 1]),
                "bars": len(inputs.prices[s]),
                "in_sample_bars": w.end - w.start,
            }
            for s, w in windows.items()
        },
        "short_sample": short_samples(
            {f"{s} in-sample": w.end - w.start for s, w in windows.items()}
            | {
                f"{s} holdout": len(inputs.prices[s]) - w.end
                for s, w in windows.items()
                if w.end < len(inputs.prices[s])
            },
            inputs.interval,
            stacklevel=6,  # short_samples < builder < _rank_and_report < _optimize < optimize/optimize_run < user
        ),
        "n_combinations": int(values.shape[0]),
        "n_passing": int(n_passing),
        "evaluations": evaluations,
        "evaluations_per_second": evaluations / sweep_seconds if sweep_seconds > 0 else None,
        "best": {
            "params": best,
            "combo": best_combo,
            "metrics_mean": {m: float(best_row[m]) for m in METRIC_NAMES},
        },
        "replay_check": {
            "max_relative_difference": replay_diff,
            "tolerance": REPLAY_TOLERANCE,
            "ok": bool(replay_diff <= REPLAY_TOLERANCE),
        },
        "nan_combinations": nan_combinations,
        "metric_distribution": metric_distribution,
        "holdout": holdout_table.to_dict("records") if holdout_table is not None else None,
        "overfit": {
            s: {k: v for k, v in stats.items() if k != "pbo"}
            | {"pbo": {k: v for k, v in stats.get("pbo", {}).items() if k not in _PBO_ARRAYS}}
            for s, stats in overfit.items()
        },
        "study": study_info,
        "timings": timings,
        **({"inert_settings": inert} if inert else {}),
    }
    cleaned: dict[str, Any] = clean_for_json(summary)
    return cleaned


def walkforward_config(
    *,
    spec: StrategySpec,
    inputs: MarketInputs,
    run: RunSpec,
    search: SearchSpec,
    grid: str | None,
    fixed: Mapping[str, float],
    windows: WalkForwardWindows,
) -> dict[str, Any]:
    """What defines a walk-forward run: :func:`search_config` plus its windows. Its hash
    names the run and keys its checkpoints, so it is known before the first fold (a
    resumed run must match it)."""
    own = {"train": windows.train, "test": windows.test, "embargo": windows.embargo, "anchored": windows.anchored}
    return search_config(
        kind="walkforward", spec=spec, inputs=inputs, run=run, search=search, grid=grid, fixed=fixed, **own
    )


def walkforward_summary(
    *,
    spec: StrategySpec,
    inputs: MarketInputs,
    run: RunSpec,
    search: SearchSpec,
    grid: str | None,
    fixed: Mapping[str, float],
    windows: WalkForwardWindows,
    bounds: list[Fold],
    folds: pd.DataFrame,
    drift: pd.DataFrame,
    oos: pd.DataFrame,
    efficiency: dict[str, dict[str, Any]],
    replay_diff: float,
    timings: dict[str, float],
) -> dict[str, Any]:
    metric = search.metric
    config = walkforward_config(
        spec=spec, inputs=inputs, run=run, search=search, grid=grid, fixed=fixed, windows=windows
    )
    drift_stats = {}
    for name in spec.param_names:
        series = drift[name].to_numpy(dtype=float)
        p = spec.param(name)
        drift_stats[name] = {
            "mean": float(series.mean()),
            "std": float(series.std()),
            "min": float(series.min()),
            "max": float(series.max()),
            "changes": int((np.diff(series) != 0).sum()),
            "relative_std": float(series.std() / (p.high - p.low)) if p.high > p.low else 0.0,
        }
    inert = inert_settings(run.sim, stacklevel=5)  # the same frames as short_samples below
    summary = {
        **_summary_head(spec=spec, inputs=inputs, metric=metric, config=config, cfg_hash=config_hash(config)),
        "short_sample": short_samples(
            {f"{s} out-of-sample": int(folds.loc[folds["symbol"] == s, "oos_bars"].sum()) for s in inputs.symbols},
            inputs.interval,
            stacklevel=5,  # short_samples < builder < _walkforward < walkforward/walkforward_run < user
        ),
        "n_folds": len(bounds),
        "folds": [
            {
                "fold": f.number,
                "train_start": str(f.train_start),
                "train_end": str(f.train_end),
                "test_start": str(f.test_start),
                "test_end": str(f.test_end),
                "partial": f.partial,
            }
            for f in bounds
        ],
        "walkforward": {
            "oos_metrics": oos.to_dict("index"),
            "efficiency": efficiency,
            "parameter_drift": drift_stats,
            "candidates_per_fold": int(folds["candidates"].iloc[0]) if len(folds) else 0,
            "overfit": {
                symbol: {
                    "pbo": float(np.mean(rows["oos_logit"].dropna() <= 0)) if rows["oos_logit"].notna().any() else None,
                    "median_oos_rank": float(rows["oos_rank"].median()),
                    "folds_ranked": int(rows["oos_logit"].notna().sum()),
                    # folds whose chosen set never traded in its test window: unranked, not "not overfit"
                    "folds_flat_out_of_sample": int((rows["oos_n_trades"] == 0).sum()),
                    "mean_is_dsr": float(rows["is_dsr"].mean()),
                    "logits": rows["oos_logit"].tolist(),
                }
                for symbol, rows in folds.groupby("symbol", sort=False)
            },
        },
        "replay_check": {"max_relative_difference": replay_diff, "ok": bool(replay_diff <= 1e-9)},
        "timings": timings,
        **({"inert_settings": inert} if inert else {}),
    }
    cleaned: dict[str, Any] = clean_for_json(summary)
    return cleaned
