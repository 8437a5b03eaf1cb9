"""``quantlab.optimize``: search a strategy's parameters and report honestly on the winner.

Pipeline: load and validate bars -> expand the grid (or run a seeded optuna study) ->
sweep every combination over the in-sample window of every symbol (with CSCV block
statistics) and over the held-out tail -> rank by the mean metric over symbols, after
per-symbol constraints -> replay the top N through vectorbt and check the sweep
against it -> compare the winner in-sample vs held out -> deflated Sharpe and PBO ->
save everything under ``reports/<run_id>/``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Unpack

import numpy as np
import pandas as pd

from quantlab._startup.preload import Preload
from quantlab._startup.progress import Progress
from quantlab._startup.warmup import VectorbtWarmup
from quantlab.engine import expr
from quantlab.engine.backends import begin_run
from quantlab.engine.exits import apply_exits, check_shorting, exit_vector, merge_grid, tp_values
from quantlab.engine.intervals import get_interval
from quantlab.engine.params import (
    GridLike,
    grid_names,
    grid_text,
    parse_fixed,
    parse_grid,
    with_interval_params,
)
from quantlab.engine.registry import get_strategy
from quantlab.engine.settings import SimConfig
from quantlab.engine.signals import evaluate_arrays
from quantlab.engine.strategy import StrategySpec
from quantlab.errors import DataError, ParameterError
from quantlab.inputs import MarketInputs, holdout_split, load_inputs
from quantlab.kernels.layout import METRIC_NAMES
from quantlab.optimizer.evaluate import Window, evaluate, tidy
from quantlab.optimizer.filters import LOWER_IS_BETTER, check_metric, parse_constraints
from quantlab.optimizer.outputs import save_optimize
from quantlab.optimizer.ranking import rank, status_column
from quantlab.optimizer.result import OptimizeResult
from quantlab.optimizer.stats import (
    check_blocks,
    check_blocks_fit,
    overfit_stats,
    pbo_split_budget,
    returns_from_values,
)
from quantlab.optimizer.summary import optimize_config, optimize_summary
from quantlab.paths import store_path
from quantlab.replay import SimRecord, max_relative_difference, portfolio, simulate, vbt_metrics
from quantlab.runs.record import config_hash, ensure_writable
from quantlab.runspec import RunOptions, RunSpec, SearchOptions, SearchSpec, split_options


class OptimizeOptions(RunOptions, SearchOptions, total=False):
    """Keyword options of :func:`optimize`."""

    top: int
    holdout: float
    n_blocks: int
    stream: bool | None


def optimize(
    strategy: str | StrategySpec,
    symbols: str | Sequence[str] | None = None,
    grid: GridLike = None,
    **options: Unpack[OptimizeOptions],
) -> OptimizeResult:
    """Search ``strategy``'s parameters on ``symbols`` and return an :class:`OptimizeResult`.

    The keyword form of :func:`optimize_run`: the options build its :class:`RunSpec` and
    :class:`SearchSpec` (see them for each option), e.g.
    ``optimize("sma_cross", "SPY", "fast=5:100:5,slow=10:250:10", holdout=0.3, cash=50_000)``.

    Args:
        strategy: registry name, dotted module path, .py file or a StrategySpec.
        symbols: ``"SPY,QQQ"`` or a list; read from the store unless ``data`` is given.
        grid: e.g. ``"fast=5:100:1,slow=10:250:2"`` (method grid), or narrowed bounds for TPE;
            from Python also a mapping such as ``{"fast": range(5, 40, 5), "slow": [50, 100]}``
            (lists, ranges and numpy arrays are value lists, like ``fast=5|10|...``).
        options: the search (params, metric, constraints, method, trials, seed, study,
            storage, exits), ``top``, ``holdout``, ``n_blocks``, ``stream`` (see
            :func:`optimize_run`), the bars (interval, start, end, store, data, adjust,
            returns), the simulation (sim, or cash/costs/sizing) and the output (reports,
            save, report, progress).

    Raises:
        QuantlabError: bad input of any kind, with what was wrong and how to fix it.
        TypeError: an unknown option.
    """
    run, search, rest = split_options(
        "optimize", strategy, symbols, options, search=True, grid=grid, rest=("top", "holdout", "n_blocks", "stream")
    )
    assert search is not None
    return _optimize(run, search, **rest)


def optimize_run(
    run: RunSpec,
    search: SearchSpec,
    *,
    top: int = 10,
    holdout: float = 0.0,
    n_blocks: int = 16,
    stream: bool | None = None,
) -> OptimizeResult:
    """Search the parameters of ``run``'s strategy on its symbols; see :func:`optimize`.

    Args:
        run: the bars, the simulation and what to write.
        search: grid or seeded TPE (trials default 200), metric, constraints, fixed parameters, exits.
        top: how many winners to list and replay through vectorbt.
        holdout: share of the history (by time, at the end) kept out of the search.
        n_blocks: CSCV blocks for the probability of backtest overfitting.
        stream: write result rows to ``results.parquet`` as chunks finish instead of
            keeping them in memory (docs/scaling.md); default: when symbols x
            combinations reach ``$QUANTLAB_STREAM_ROWS`` (2,000,000) and ``save``.
            Streamed, ``results`` is None and ``ranking`` holds the top rows only.

    Raises:
        QuantlabError: bad input of any kind, with what was wrong and how to fix it.
    """
    return _optimize(run, search, top=top, holdout=holdout, n_blocks=n_blocks, stream=stream)


def _optimize(
    run: RunSpec,
    search: SearchSpec,
    *,
    top: int = 10,
    holdout: float = 0.0,
    n_blocks: int = 16,
    stream: bool | None = None,
) -> OptimizeResult:
    """The optimisation itself: both public forms call it directly, so a warning's
    ``stacklevel`` reaches the user's line from either."""
    trials = 200 if search.trials is None else search.trials
    search = replace(search, constraints=tuple(search.constraints), trials=trials)
    symbols, interval, start, end, sim = run.symbols, run.interval, run.start, run.end, run.sim
    store, data, adjust, returns = run.store, run.data, run.adjust, run.returns
    reports, save, progress, report = run.reports, run.save, run.progress, run.report
    params, metric, constraints, method = search.params, search.metric, search.constraints, search.method
    seed, study, storage = search.seed, search.study, search.storage
    timings: dict[str, float] = {}
    began = time.perf_counter()
    spec, exits_grid = apply_exits(get_strategy(run.strategy), search.exits, params)
    check_metric(metric)
    parse_constraints(constraints)
    if method not in ("grid", "tpe"):
        raise ParameterError("unknown search method", found=repr(method), fix="use grid or tpe")
    if top < 1:
        raise ParameterError("--top must be at least 1", found=top)
    n_blocks = check_blocks(n_blocks)
    fixed = parse_fixed(spec, params)
    grid = merge_grid(grid_text(spec, search.grid), exits_grid)
    fixed = with_interval_params(spec, get_interval(interval), fixed, grid_names(grid))
    if save or (method == "tpe" and storage is None):
        ensure_writable(reports)  # fail before the work, not after it
    vectorbt = Preload("vectorbt")  # hides its import behind the GIL-free sweep and CSCV
    warmup = VectorbtWarmup("columns")  # cold cache only: compiles vectorbt's side on the other core
    inputs = load_inputs(symbols, interval, start, end, store, data, adjust=adjust, returns=returns)
    sim.costs.check_symbols(inputs.symbols)
    check_shorting(spec, inputs.prices.values(), fixed, sim.sizing.allow_short, tp_values(params, exits_grid))
    timings["load"] = time.perf_counter() - began

    cuts = holdout_split(inputs, holdout)
    windows = {s: Window(0, cuts[s]) for s in inputs.symbols}
    for symbol, window in windows.items():
        if window.end < 2:
            raise DataError(f"in-sample window of {symbol} is empty", fix="lower --holdout")
        if holdout and len(inputs.prices[symbol]) - window.end < 2:
            raise DataError(f"held-out window of {symbol} has fewer than 2 bars", fix="raise --holdout")
    check_blocks_fit(n_blocks, {s: w.end - w.start for s, w in windows.items()})

    config = optimize_config(
        spec=spec,
        inputs=inputs,
        run=run,
        search=search,
        grid=grid,
        fixed=fixed,
        top=top,
        holdout=holdout,
        n_blocks=n_blocks,
    )

    cfg_hash = config_hash(config)
    if save:  # a chunked backend checkpoints into the run folder (resumed when unfinished)
        begin_run("optimize", cfg_hash, inputs.data_hash, ensure_writable(reports))
    study_info: dict[str, Any] = {}
    t0 = time.perf_counter()
    if method == "grid":
        expanded = parse_grid(spec, grid, fixed)
        values = expanded.values
        study_info = {"dropped_by_constraints": expanded.dropped_by_constraints}
    else:
        identity = config_hash({k: v for k, v in config.items() if k not in ("trials", "top")})
        values, study_info = _tpe(
            spec, inputs, sim, windows, grid, fixed, metric, trials, seed, study, storage, reports, identity, progress
        )
    timings["search_setup"] = time.perf_counter() - t0
    _check_lookback(spec, values, inputs, windows)

    total = values.shape[0] * len(inputs.symbols)
    from quantlab.optimizer import stream as streaming

    streamed: streaming.Streamed | None = None
    if streaming.wanted(total, stream, save):
        oos_windows = {s: Window(w.end, len(inputs.prices[s])) for s, w in windows.items()} if holdout else None
        t0 = time.perf_counter()
        with Progress(total, f"sweep {spec.name} (streamed)", "comb", progress) as bar:
            streamed = streaming.stream_sweep(
                spec,
                inputs,
                values,
                sim,
                windows,
                oos_windows,
                n_blocks,
                metric,
                constraints,
                top,
                ensure_writable(reports),
                bar.callback(),
            )
        timings["sweep"] = time.perf_counter() - t0
        timings["sweep_compute"] = streamed.seconds
    try:
        return _rank_and_report(
            spec,
            inputs,
            sim,
            values,
            windows,
            metric,
            constraints,
            top,
            holdout,
            n_blocks,
            config,
            cfg_hash,
            study_info,
            timings,
            began,
            vectorbt,
            warmup,
            streamed,
            progress,
            save,
            reports,
            report,
            store,
            data,
        )
    finally:
        if streamed is not None:
            streamed.cleanup()


def _rank_and_report(
    spec: StrategySpec,
    inputs: MarketInputs,
    sim: SimConfig,
    values: np.ndarray,
    windows: dict[str, Window],
    metric: str,
    constraints: tuple[str, ...],
    top: int,
    holdout: float,
    n_blocks: int,
    config: dict[str, Any],
    cfg_hash: str,
    study_info: dict[str, Any],
    timings: dict[str, float],
    began: float,
    vectorbt: Preload,
    warmup: VectorbtWarmup,
    streamed: Any,
    progress: bool | None,
    save: bool,
    reports: Any,
    report: bool | str,
    store: Any,
    data: Any,
) -> OptimizeResult:
    """Everything after the sweep: the same steps on in-memory tables or on what the
    streamed sweep kept (``quantlab.optimizer.stream``)."""
    from quantlab.optimizer import stream as streaming

    results: pd.DataFrame | None
    if streamed is None:
        total = values.shape[0] * len(inputs.symbols)
        t0 = time.perf_counter()
        with Progress(total, f"sweep {spec.name}", "comb", progress) as bar:
            in_sample = evaluate(spec, inputs, values, sim, windows, n_blocks, bar.callback())
        timings["sweep"] = time.perf_counter() - t0
        timings["sweep_compute"] = in_sample.seconds
        timings["kernel_load"] = float(sum(o.load_seconds for o in in_sample.outputs.values()))
        results = tidy(spec, values, in_sample)
        if holdout:
            t0 = time.perf_counter()
            oos_windows = {s: Window(w.end, len(inputs.prices[s])) for s, w in windows.items()}
            held = evaluate(spec, inputs, values, sim, oos_windows)
            oos = tidy(spec, values, held, prefix="holdout_")
            results = pd.concat([results, oos[[f"holdout_{m}" for m in METRIC_NAMES]]], axis=1)
            timings["holdout_sweep"] = time.perf_counter() - t0
        results["status"] = status_column(results)
        ranking = rank(results, spec.param_names, metric, constraints)
        passing = ranking[ranking["passes"]]
        n_passing, any_traded = int(len(passing)), bool(ranking["traded"].any())
        rows = results
        outputs = in_sample.outputs
        nan_combinations = streaming.nan_rows(results, spec.param_names)
        distribution = streaming.metric_distribution(
            streaming.distribution_columns(results, metric, values.shape[0]), metric
        )
        peers = _holdout_peers(results, metric) if holdout else {}
    else:
        results = None
        ranking = streamed.ranking
        passing = ranking[ranking["passes"]]
        n_passing, any_traded = streamed.n_passing, streamed.any_traded
        rows = streamed.top_rows
        outputs = streamed.outputs
        nan_combinations = streamed.nan_combinations
        distribution, peers = streamed.distribution, streamed.holdout_peers
    if passing.empty:
        if not any_traded:
            raise ParameterError(
                "no combination trades on every symbol, so there is nothing to rank "
                "(a combination that never trades is never a winner)",
                found=f"{values.shape[0]} combinations, none with an order on all of {', '.join(inputs.symbols)}",
                fix="widen the grid (shorter windows, looser thresholds) or use a longer date range",
            )
        raise ParameterError(
            f"no combination passes the constraints with a finite {metric}",
            found=f"{values.shape[0]} combinations; constraints {list(constraints) or 'none'}",
            fix="relax --constraint or widen the grid",
        )
    best = {n: float(passing.iloc[0][n]) for n in spec.param_names}
    head = passing.head(top)
    t0 = time.perf_counter()
    top_records = _top_records(spec, inputs, sim, windows, head)
    records = {s: recs[0] for s, recs in top_records.items()}
    timings["top_records"] = time.perf_counter() - t0

    holdout_table = _holdout_table(spec, rows, peers, best, metric) if holdout else None
    t0 = time.perf_counter()
    best_combo = int(passing.iloc[0]["combo"])
    n_trials = int(np.unique(values, axis=0).shape[0])
    from math import comb

    blocks_used = max((o.block_sum.shape[1] for o in outputs.values()), default=0)
    max_splits = (
        pbo_split_budget(len(inputs.symbols), values.shape[0], comb(blocks_used, blocks_used // 2))
        if blocks_used
        else None
    )
    overfit = {
        s: overfit_stats(outputs[s], returns_from_values(records[s].value, sim.init_cash), n_trials, max_splits)
        for s in inputs.symbols
    }
    timings["overfit"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    vectorbt.join()
    timings["vectorbt_import_wait"] = time.perf_counter() - t0
    if warmup.started:
        t0 = time.perf_counter()
        warmup.wait(*(["single"] if save else []))  # the saved winner's portfolio, compiled meanwhile
        timings["vectorbt_warmup_wait"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    top_table, replay_diff = _replay_top(spec, inputs, sim, windows, head, rows, top_records)
    timings["replay"] = time.perf_counter() - t0

    evaluations = int(sum(values.shape[0] * (w.end - w.start) for w in windows.values()))
    summary = optimize_summary(
        spec=spec,
        inputs=inputs,
        sim=sim,
        config=config,
        cfg_hash=cfg_hash,
        metric=metric,
        best=best,
        best_combo=best_combo,
        best_row=passing.iloc[0],
        n_passing=n_passing,
        nan_combinations=nan_combinations,
        metric_distribution=distribution,
        holdout_table=holdout_table,
        overfit=overfit,
        replay_diff=replay_diff,
        study_info=study_info,
        values=values,
        evaluations=evaluations,
        timings=timings,
        windows=windows,
    )
    result = OptimizeResult(
        spec,
        inputs,
        sim,
        metric,
        windows,
        results,
        ranking,
        top_table,
        best,
        holdout_table,
        overfit,
        summary,
        records=records,
        results_file=streamed.results_path if streamed is not None else None,
    )
    if save:
        result.summary["store"] = None if data is not None else str(store_path(store).resolve())
        save_optimize(result, reports, began)
        # deferred: plotly and QuantStats load only when a run writes its pages
        from quantlab.reports import build_pages

        result.report = build_pages(result.path, report, store)
    return result


def _check_lookback(spec: StrategySpec, values: np.ndarray, inputs: MarketInputs, windows: dict[str, Window]) -> None:
    columns = {n: values[:, i] for i, n in enumerate(spec.param_names)}

    lookbacks = np.broadcast_to(np.asarray(expr.evaluate(spec._trees["lookback"], columns)), (values.shape[0],))
    shortest = int(np.min(lookbacks))
    for symbol, window in windows.items():
        if shortest >= window.end - 1:
            raise DataError(
                f"{symbol} has too few bars for {spec.name}: every combination needs more history than the window holds",
                found=f"{window.end} in-sample bars, shortest lookback {shortest} bars",
                fix="use a longer date range, a smaller --holdout, or shorter windows in --grid",
            )


def _tpe(
    spec: StrategySpec,
    inputs: MarketInputs,
    sim: SimConfig,
    windows: dict[str, Window],
    grid: str | None,
    fixed: Mapping[str, float],
    metric: str,
    trials: int,
    seed: int,
    study: str | None,
    storage: str | None,
    reports: Any,
    study_hash: str,
    progress: bool | None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Seeded TPE on the in-sample windows; storage defaults to SQLite under reports/.

    ``study_hash`` is the run's configuration hash without ``trials``: asking for more
    trials extends the same study.
    """
    from quantlab.optimizer.study import distinct_sets, search

    if storage is None:
        storage = f"sqlite:///{ensure_writable(reports) / 'optuna.db'}"
    import hashlib

    default_name = f"{spec.name}-{hashlib.sha256((study_hash + inputs.data_hash).encode()).hexdigest()[:12]}"
    res = search(
        spec, inputs, sim, windows, grid, fixed, metric, trials, seed, study or default_name, storage, progress
    )
    first = distinct_sets(res.values)
    info = {
        "study": res.study_name,
        "storage": res.storage,
        "trials": int(len(res.objective)),
        "repeated_trials": int(len(res.objective) - len(first)),
        "rejected_by_constraints": res.n_rejected,
        "resumed_from": res.resumed_from,
        "trial_numbers": res.trial_numbers.tolist(),
        "set_trial_numbers": res.trial_numbers[
            first
        ].tolist(),  # combo i is the set trial set_trial_numbers[i] proposed
        "objective": [float(x) if np.isfinite(x) else None for x in res.objective],
        "seed": seed,
    }
    return res.values[first], info


def _top_records(
    spec: StrategySpec, inputs: MarketInputs, sim: SimConfig, windows: dict[str, Window], top: pd.DataFrame
) -> dict[str, list[SimRecord]]:
    """Recorded in-sample runs of the top rows per symbol (the winner first)."""
    out: dict[str, list[SimRecord]] = {}
    for symbol, window in windows.items():
        prices = inputs.prices[symbol]
        head = prices.slice(window.end)
        rows = [{n: float(row[n]) for n in spec.param_names} for _, row in top.iterrows()]
        out[symbol] = [
            simulate(
                evaluate_arrays(spec, head, p),
                prices,
                sim,
                inputs.interval,
                window.start,
                window.end,
                exits=exit_vector(spec, p),
            )
            for p in rows
        ]
    return out


def _replay_top(
    spec: StrategySpec,
    inputs: MarketInputs,
    sim: SimConfig,
    windows: dict[str, Window],
    top: pd.DataFrame,
    rows: pd.DataFrame,
    top_records: dict[str, list[SimRecord]],
) -> tuple[pd.DataFrame, float]:
    """Replay the top rows per symbol through vectorbt; return the table and the worst
    relative difference between the sweep's metrics and vectorbt's."""
    worst = 0.0
    frames = []
    for symbol, window in windows.items():
        prices = inputs.prices[symbol]
        pf = portfolio(
            top_records[symbol], prices, sim, inputs.interval, window.start, [str(int(c)) for c in top["combo"]]
        )
        replayed = vbt_metrics(pf, inputs.interval)
        mine = rows[rows["symbol"] == symbol].set_index("combo")  # results rows (all, or the top ones streamed)
        swept = pd.DataFrame(
            mine.loc[top["combo"].to_numpy(), list(METRIC_NAMES)].to_numpy(), columns=list(METRIC_NAMES)
        )
        worst = max(worst, max_relative_difference(swept, replayed))
        frame = top[["rank", "combo", *spec.param_names]].reset_index(drop=True).copy()
        frame.insert(0, "symbol", symbol)
        frames.append(pd.concat([frame, replayed.add_prefix("vbt_")], axis=1))
    return pd.concat(frames, ignore_index=True), worst


def _holdout_peers(results: pd.DataFrame, metric: str) -> dict[str, np.ndarray]:
    """Per symbol: the held-out ranking metric of every row that traded there."""
    out: dict[str, np.ndarray] = {}
    for symbol, same in results.groupby("symbol", sort=False):
        traded = same["holdout_n_orders"].to_numpy() > 0  # rows that never trade are not peers
        out[str(symbol)] = np.where(traded, same[f"holdout_{metric}"].to_numpy(dtype=np.float64), np.nan)
    return out


def _holdout_table(
    spec: StrategySpec, rows: pd.DataFrame, peers: Mapping[str, np.ndarray], best: Mapping[str, float], metric: str
) -> pd.DataFrame:
    """The winner's metrics in-sample vs held out per symbol, with its held-out percentile
    among ``peers`` (NaN: never traded)."""
    mask = np.ones(len(rows), dtype=bool)
    for n in spec.param_names:
        mask &= rows[n].to_numpy() == best[n]
    table = []
    for symbol, frame in rows[mask].groupby("symbol", sort=False):
        row = frame.iloc[0]
        found = peers[str(symbol)]
        found = found[np.isfinite(found)]
        value = row[f"holdout_{metric}"]
        better = (found < value) if metric not in LOWER_IS_BETTER else (found > value)
        pct = float(np.mean(better)) if found.size and np.isfinite(value) else float("nan")
        out: dict[str, Any] = {"symbol": symbol}
        for m in ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "n_trades"):
            out[f"in_sample_{m}"] = row[m]
            out[f"holdout_{m}"] = row[f"holdout_{m}"]
        out["holdout_percentile"] = pct
        table.append(out)
    return pd.DataFrame(table)
