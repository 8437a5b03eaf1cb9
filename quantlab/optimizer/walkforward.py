"""``quantlab.walkforward``: optimise in-sample, trade out of sample, fold after fold.

For every fold the sweep ranks the grid (or a seeded TPE study's trials) on the training
window and the winner trades the following test window. Overfitting is measured fold by
fold: the winner's relative rank among all candidates on the test window (its logit;
the share of folds with logit <= 0 is a walk-forward PBO) and the deflated Sharpe ratio
of the in-sample winner given how many candidates were tried. The test windows are stitched
into one continuous account replayed through vectorbt with costs.

Fold boundaries: the new fold's parameters take over at the close of the bar before its
test window (when they become known), so the first order of a test window already
follows the new parameters. An open position is carried across the boundary: if the new
parameters want the same exposure it is simply kept (no round trip, no costs); if they
want another one, the position is resized at the first open of the new window.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Unpack

import numpy as np
import pandas as pd

from quantlab._startup.progress import Progress
from quantlab._startup.warmup import VectorbtWarmup
from quantlab.engine.exits import (
    apply_exits,
    check_shorting,
    exit_vector,
    merge_grid,
    no_exits,
    tp_values,
)
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
from quantlab.errors import ParameterError
from quantlab.inputs import MarketInputs, load_inputs
from quantlab.kernels.layout import METRIC_NAMES
from quantlab.optimizer.evaluate import Window, evaluate, tidy
from quantlab.optimizer.filters import check_metric, parse_constraints
from quantlab.optimizer.folds import Fold, WalkForwardWindows, make_folds
from quantlab.optimizer.outputs import save_walkforward
from quantlab.optimizer.ranking import rank
from quantlab.optimizer.stats import fold_dsr, relative_rank
from quantlab.optimizer.summary import walkforward_config, walkforward_summary
from quantlab.paths import store_path
from quantlab.replay import SimRecord, max_relative_difference, portfolio, simulate, vbt_metrics
from quantlab.runs.record import config_hash, ensure_writable
from quantlab.runspec import RunOptions, RunSpec, SearchOptions, SearchSpec, split_options

FOLD_METRICS = ("sharpe", "total_return", "cagr", "max_drawdown", "n_trades")


@dataclass
class WalkForwardResult:
    """A walk-forward analysis.

    Attributes:
        folds: one row per fold and symbol: dates, chosen parameters, ``is_*`` and
            ``oos_*`` metrics (each test window on a fresh account).
        drift: chosen parameters per fold.
        equity: stitched out-of-sample value per symbol (one continuous account).
        oos_metrics: metrics of the stitched out-of-sample run per symbol (vectorbt).
        efficiency: walk-forward efficiency per symbol (see ``summary["walkforward"]``).
    """

    spec: StrategySpec
    inputs: MarketInputs
    sim: SimConfig
    metric: str
    fold_bounds: list[Fold]
    folds: pd.DataFrame
    drift: pd.DataFrame
    equity: pd.DataFrame
    oos_metrics: pd.DataFrame
    efficiency: dict[str, dict[str, Any]]
    summary: dict[str, Any]
    run_id: str | None = None
    path: Any = None
    report: Any = None
    records: dict[str, SimRecord] = field(default_factory=dict, repr=False)
    targets: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    oos_start: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def returns_basis(self) -> str:
        """``"price"`` or ``"total"``: see :mod:`quantlab.data.basis`."""
        return self.inputs.returns_basis

    def portfolio(self, symbol: str | None = None) -> Any:
        """vectorbt Portfolio of the stitched out-of-sample run of ``symbol``."""
        symbol = symbol or self.inputs.symbols[0]
        if symbol not in self.records:
            raise ParameterError(f"symbol {symbol!r} is not part of this run", found=self.inputs.symbols)
        return portfolio(
            self.records[symbol], self.inputs.prices[symbol], self.sim, self.inputs.interval, self.oos_start[symbol]
        )


class WalkForwardOptions(RunOptions, SearchOptions, total=False):
    """Keyword options of :func:`walkforward`."""

    train: str
    test: str
    anchored: bool
    embargo: str


def walkforward(
    strategy: str | StrategySpec,
    symbols: str | Sequence[str] | None = None,
    grid: GridLike = None,
    **options: Unpack[WalkForwardOptions],
) -> WalkForwardResult:
    """Walk ``strategy`` forward over ``symbols``; see :class:`WalkForwardResult`.

    The keyword form of :func:`walkforward_run`, e.g.
    ``walkforward("sma_cross", "SPY", "fast=5:100:5,slow=10:250:10", train="2y", test="6m")``.

    Args:
        options: ``train``, ``test``, ``embargo`` (calendar spans: ``2y``, ``6m``, ``13w``,
            ``5d``) and ``anchored`` (expanding training windows); the search (method,
            trials per fold (default 100), seed, metric, constraints, params, exits: each
            fold's winning exit rules hold over its test bars); the bars,
            simulation and output options as :func:`quantlab.optimize`.

    Raises:
        QuantlabError: windows longer than the data, no folds, an embargo as long as the
            test window, fewer than two candidate parameter sets, and the usual bad input.
        TypeError: an unknown option.
    """
    run, search, layout = split_options(
        "walkforward",
        strategy,
        symbols,
        options,
        search=True,
        grid=grid,
        rest=("train", "test", "anchored", "embargo"),
        without=("study", "storage"),
    )
    assert search is not None
    return _walkforward(run, search, WalkForwardWindows(**layout))


def walkforward_run(run: RunSpec, search: SearchSpec, layout: WalkForwardWindows | None = None) -> WalkForwardResult:
    """Walk ``run``'s strategy forward with ``search`` in every fold cut by ``layout``.

    Raises:
        QuantlabError: as :func:`walkforward`.
    """
    return _walkforward(run, search, layout or WalkForwardWindows())


def _walkforward(run: RunSpec, search: SearchSpec, layout: WalkForwardWindows) -> WalkForwardResult:
    """The walk-forward itself: both public forms call it directly, so a warning's
    ``stacklevel`` reaches the user's line from either."""
    trials = 100 if search.trials is None else search.trials  # per fold
    search = replace(search, constraints=tuple(search.constraints), trials=trials)
    metric, constraints, method, seed = search.metric, search.constraints, search.method, search.seed
    sim = run.sim
    timings: dict[str, float] = {}
    began = time.perf_counter()
    spec, exits_grid = apply_exits(get_strategy(run.strategy), search.exits, search.params)
    check_metric(metric)
    parse_constraints(constraints)
    if method not in ("grid", "tpe"):
        raise ParameterError("unknown search method", found=repr(method), fix="use grid or tpe")
    fixed = parse_fixed(spec, search.params)
    grid = merge_grid(grid_text(spec, search.grid), exits_grid)
    fixed = with_interval_params(spec, get_interval(run.interval), fixed, grid_names(grid))
    if run.save:
        ensure_writable(run.reports)
    inputs = load_inputs(
        run.symbols, run.interval, run.start, run.end, run.store, run.data, adjust=run.adjust, returns=run.returns
    )
    sim.costs.check_symbols(inputs.symbols)
    check_shorting(spec, inputs.prices.values(), fixed, sim.sizing.allow_short, tp_values(search.params, exits_grid))
    warmup = VectorbtWarmup("single")  # cold cache only: compiles vectorbt's side on the other core
    # Folds start where every symbol has data (the latest first bar), so no fold trains a
    # symbol on a window before its history begins.
    common_start = max(int(p.index.asi8[0]) for p in inputs.prices.values())
    stamps = np.unique(np.concatenate([p.index.asi8 for p in inputs.prices.values()]))
    union = pd.DatetimeIndex(stamps[stamps >= common_start]).tz_localize("UTC")
    bounds = make_folds(union, layout.train, layout.test, layout.embargo, layout.anchored)
    values = parse_grid(spec, grid, fixed).values if method == "grid" else None
    if method == "grid" and values is not None and len(values) < 2:
        raise ParameterError(
            "walk-forward needs at least 2 parameter sets to choose from in each fold",
            found=f"{len(values)} combination",
            fix="give ranges in --grid",
        )
    if method == "tpe" and trials < 2:
        raise ParameterError("walk-forward with TPE needs at least 2 trials per fold", found=trials)
    if run.save:  # a chunked backend checkpoints every fold's sweeps into the run folder (resumed when unfinished)
        from quantlab.engine.backends import begin_run

        config = walkforward_config(
            spec=spec, inputs=inputs, run=run, search=search, grid=grid, fixed=fixed, windows=layout
        )
        begin_run("walkforward", config_hash(config), inputs.data_hash, ensure_writable(run.reports))
    timings["setup"] = time.perf_counter() - began

    fold_rows: list[dict[str, Any]] = []
    chosen: list[dict[str, float]] = []
    t_search = 0.0

    with Progress(len(bounds), f"walk-forward {spec.name}", "fold", run.progress) as bar:
        for fold in bounds:
            windows = _windows(inputs, fold.train_start, fold.train_end)
            t0 = time.perf_counter()
            fold_values = (
                values
                if values is not None
                else _tpe_values(spec, inputs, sim, windows, grid, fixed, metric, trials, seed + fold.number)
            )
            evaluation = evaluate(spec, inputs, fold_values, sim, windows)
            table = tidy(spec, fold_values, evaluation)
            ranking = rank(table, spec.param_names, metric, constraints)
            t_search += time.perf_counter() - t0
            passing = ranking[ranking["passes"]]
            if passing.empty and not ranking["traded"].any():
                raise ParameterError(
                    f"fold {fold.number}: every candidate parameter set would never trade in the training window, "
                    "so the fold can only pick a do-nothing set",
                    found=f"training {fold.train_start.date()} .. {fold.train_end.date()}, {len(ranking)} candidates",
                    fix="widen the grid (shorter windows, looser thresholds) or lengthen --train",
                )
            if passing.empty:
                raise ParameterError(
                    f"fold {fold.number}: no parameter set passes the constraints with a finite {metric}",
                    found=f"training {fold.train_start.date()} .. {fold.train_end.date()}",
                    fix="relax --constraint, widen the grid or lengthen --train",
                )
            best = {n: float(passing.iloc[0][n]) for n in spec.param_names}
            chosen.append(best)
            combo = int(passing.iloc[0]["combo"])
            test_windows = {s: Window(*_test_bounds(inputs, s, fold)) for s in inputs.symbols}
            test_windows = {s: w for s, w in test_windows.items() if w.end - w.start >= 2}
            oos_all = tidy(spec, fold_values, evaluate(spec, inputs, fold_values, sim, test_windows))

            def test_bars(symbol: str, fold: Fold = fold) -> int:
                j0, j1 = _test_bounds(inputs, symbol, fold)
                return j1 - j0

            for symbol in inputs.symbols:
                is_row = table[(table["symbol"] == symbol) & (table["combo"] == combo)].iloc[0]
                oos = _oos_metrics(spec, inputs, sim, symbol, best, fold)
                peers = oos_all.loc[oos_all["symbol"] == symbol, [metric, "n_orders"]].to_numpy()
                rank_pct = _oos_rank(peers, combo, metric)
                dsr = fold_dsr(spec, inputs, sim, symbol, best, windows[symbol], table, len(fold_values))
                row: dict[str, Any] = {
                    "fold": fold.number,
                    "symbol": symbol,
                    "train_start": fold.train_start,
                    "train_end": fold.train_end,
                    "test_start": fold.test_start,
                    "test_end": fold.test_end,
                    "partial": fold.partial,
                    **best,
                    **{f"is_{m}": float(is_row[m]) for m in FOLD_METRICS},
                    **{f"oos_{m}": oos[m] for m in FOLD_METRICS},
                    "oos_trades": oos["n_trades"],
                    "oos_bars": int(test_bars(symbol)),
                    "candidates": int(len(fold_values)),
                    "oos_rank": rank_pct,
                    "oos_logit": float(np.log(rank_pct / (1 - rank_pct))) if 0 < rank_pct < 1 else float("nan"),
                    "is_dsr": dsr,
                }
                fold_rows.append(row)
            bar.update_to(fold.number + 1)
    timings["search"] = t_search

    t0 = time.perf_counter()
    folds_table = pd.DataFrame(fold_rows)
    drift = pd.DataFrame(
        [{"fold": f.number, "test_start": f.test_start, **p} for f, p in zip(bounds, chosen, strict=True)]
    )
    records, targets, starts, oos_rows, replay_diff, equity = _stitch(spec, inputs, sim, bounds, chosen, warmup)
    oos_metrics = pd.DataFrame(oos_rows).set_index("symbol")
    timings["stitch"] = time.perf_counter() - t0
    efficiency = _efficiency(folds_table, oos_metrics, metric, inputs.symbols)
    summary = walkforward_summary(
        spec=spec,
        inputs=inputs,
        run=run,
        search=search,
        grid=grid,
        fixed=fixed,
        windows=layout,
        bounds=bounds,
        folds=folds_table,
        drift=drift,
        oos=oos_metrics,
        efficiency=efficiency,
        replay_diff=replay_diff,
        timings=timings,
    )
    result = WalkForwardResult(
        spec,
        inputs,
        sim,
        metric,
        bounds,
        folds_table,
        drift,
        equity,
        oos_metrics,
        efficiency,
        summary,
        records=records,
        targets=targets,
        oos_start=starts,
    )
    if run.save:
        result.summary["store"] = None if run.data is not None else str(store_path(run.store).resolve())
        save_walkforward(result, run.reports, began)
        # deferred: plotly and QuantStats load only when a run writes its pages
        from quantlab.reports import build_pages

        result.report = build_pages(result.path, run.report, run.store)
    return result


def _oos_rank(peers: np.ndarray, combo: int, metric: str) -> float:
    """Relative rank of the chosen set on the test window among the sets that trade there.

    NaN when the chosen set itself does not trade in the test window (a flat test window's
    zero drawdown would otherwise rank "best" and count as not overfit) or when the test
    window was too short to score; such folds are left out of the walk-forward PBO.
    """
    if combo >= len(peers) or peers[combo, 1] == 0:
        return float("nan")
    values = np.where(peers[:, 1] > 0, peers[:, 0], np.nan)
    return relative_rank(values, combo, metric)


def _windows(inputs: MarketInputs, lo: pd.Timestamp, hi: pd.Timestamp) -> dict[str, Window]:
    windows = {}
    for symbol, prices in inputs.prices.items():
        i0 = int(np.searchsorted(prices.index.asi8, lo.value))
        i1 = int(np.searchsorted(prices.index.asi8, hi.value))
        if i1 - i0 < 2:
            raise ParameterError(
                f"{symbol} has fewer than 2 bars in the training window {lo.date()} .. {hi.date()}",
                fix="lengthen --train or check the symbol's history (quantlab data list)",
            )
        windows[symbol] = Window(i0, i1)
    return windows


def _test_bounds(inputs: MarketInputs, symbol: str, fold: Fold) -> tuple[int, int]:
    asi8 = inputs.prices[symbol].index.asi8
    return int(np.searchsorted(asi8, fold.test_start.value)), int(np.searchsorted(asi8, fold.test_end.value))


def _oos_metrics(
    spec: StrategySpec, inputs: MarketInputs, sim: SimConfig, symbol: str, params: dict[str, float], fold: Fold
) -> dict[str, float]:
    j0, j1 = _test_bounds(inputs, symbol, fold)
    if j1 - j0 < 2:
        return {m: float("nan") for m in METRIC_NAMES}
    prices = inputs.prices[symbol]
    target = evaluate_arrays(spec, prices.slice(j1), params)
    return simulate(target, prices, sim, inputs.interval, j0, j1, exits=exit_vector(spec, params)).metrics


def _stitch(
    spec: StrategySpec,
    inputs: MarketInputs,
    sim: SimConfig,
    bounds: list[Fold],
    chosen: list[dict[str, float]],
    warmup: VectorbtWarmup | None = None,
) -> tuple[dict[str, SimRecord], dict[str, np.ndarray], dict[str, int], list[dict[str, Any]], float, pd.DataFrame]:
    """One continuous out-of-sample account per symbol, parameters switching per fold."""
    records, targets, starts, rows = {}, {}, {}, []
    worst = 0.0
    equity = {}
    for symbol, prices in inputs.prices.items():
        stitched = np.full(len(prices), np.nan)
        exits = np.tile(no_exits(), (len(prices), 1)) if spec.exit_params else None
        first, last = None, None
        for fold, params in zip(bounds, chosen, strict=True):
            j0, j1 = _test_bounds(inputs, symbol, fold)
            if j1 - j0 < 1:
                continue
            target = evaluate_arrays(spec, prices.slice(j1), params)
            lo = max(j0 - 1, 0)
            stitched[lo : j1 - 1] = target[lo : j1 - 1]
            if exits is not None:  # the fold's exit rules hold over its test bars
                exits[j0:j1] = exit_vector(spec, params)
            first = j0 if first is None else first
            last = j1
        if first is None or last is None or last - first < 2:
            raise ParameterError(f"{symbol} has no out-of-sample bars in any fold", fix="check --start/--end")
        record = simulate(stitched, prices, sim, inputs.interval, first, last, exits=exits)
        if warmup is not None:
            warmup.wait()
        pf = portfolio(record, prices, sim, inputs.interval, first)
        replayed = vbt_metrics(pf, inputs.interval)
        worst = max(worst, max_relative_difference(pd.DataFrame([record.metrics])[list(METRIC_NAMES)], replayed))
        rows.append({"symbol": symbol, **replayed.iloc[0].to_dict()})
        records[symbol], targets[symbol], starts[symbol] = record, stitched, first
        equity[symbol] = pd.Series(record.value, index=record.index)
    frame = pd.DataFrame(equity)
    frame.index.name = "time"
    return records, targets, starts, rows, worst, frame


def _efficiency(folds: pd.DataFrame, oos: pd.DataFrame, metric: str, symbols: list[str]) -> dict[str, dict[str, Any]]:
    """Walk-forward efficiency: out-of-sample vs in-sample performance per symbol.

    ``metric``: mean over folds of the OOS metric / mean over folds of the IS metric.
    ``annualised_return`` (Pardo's WFE): stitched OOS CAGR / mean in-sample CAGR.
    """
    out = {}
    name = metric if metric in FOLD_METRICS else "sharpe"
    for symbol in symbols:
        rows = folds[folds["symbol"] == symbol]
        is_mean = float(np.nanmean(rows[f"is_{name}"]))
        oos_mean = float(np.nanmean(rows[f"oos_{name}"]))
        is_cagr = float(np.nanmean(rows["is_cagr"]))
        out[symbol] = {
            "metric": name,
            "is_mean": is_mean,
            "oos_mean": oos_mean,
            "efficiency": oos_mean / is_mean if is_mean not in (0.0,) and np.isfinite(is_mean) else float("nan"),
            "annualised_return": float(oos.loc[symbol, "cagr"]) / is_cagr
            if is_cagr and np.isfinite(is_cagr)
            else float("nan"),
        }
    return out


def _tpe_values(
    spec: StrategySpec,
    inputs: MarketInputs,
    sim: SimConfig,
    windows: dict[str, Window],
    grid: str | None,
    fixed: Mapping[str, float],
    metric: str,
    trials: int,
    seed: int,
) -> np.ndarray:
    """A fresh in-memory TPE study per fold (seed + fold number); each parameter set once
    (``distinct_sets``), so the fold's candidates and DSR's N count distinct sets."""
    import optuna

    from quantlab.optimizer.study import distinct_sets, search

    storage = optuna.storages.InMemoryStorage()
    values = search(spec, inputs, sim, windows, grid, fixed, metric, trials, seed, f"wf-{seed}", storage).values
    distinct: np.ndarray = values[distinct_sets(values)]
    return distinct
