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

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from quantlab._startup.progress import Progress
from quantlab._startup.warmup import VectorbtWarmup
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
from quantlab.engine.settings import Costs, SimConfig, Sizing, make_sim_config
from quantlab.engine.signals import evaluate_arrays
from quantlab.engine.strategy import StrategySpec
from quantlab.errors import ParameterError
from quantlab.inputs import MarketInputs, load_inputs
from quantlab.kernels.layout import METRIC_NAMES
from quantlab.optimizer.evaluate import Window, evaluate, tidy
from quantlab.optimizer.filters import check_metric, parse_constraints
from quantlab.optimizer.folds import Fold, make_folds
from quantlab.optimizer.outputs import save_walkforward
from quantlab.optimizer.ranking import rank
from quantlab.optimizer.stats import fold_dsr, relative_rank
from quantlab.optimizer.summary import walkforward_summary
from quantlab.paths import store_path
from quantlab.replay import SimRecord, max_relative_difference, portfolio, simulate, vbt_metrics
from quantlab.runs.record import ensure_writable

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
        return portfolio(self.records[symbol], self.inputs.prices[symbol], self.sim, self.inputs.interval, self.oos_start[symbol])


def walkforward(
    strategy: str | StrategySpec,
    symbols: str | Sequence[str] | None = None,
    grid: GridLike = None,
    *,
    train: str = "2y",
    test: str = "6m",
    anchored: bool = False,
    embargo: str = "0d",
    method: str = "grid",
    trials: int = 100,
    seed: int = 7,
    metric: str = "sharpe",
    constraints: Sequence[str] = (),
    params: str | Mapping[str, float] | None = None,
    interval: str = "1d",
    start: str | None = None,
    end: str | None = None,
    sim: SimConfig | None = None,
    cash: float = 100_000.0,
    costs: Costs | Mapping[str, Any] | None = None,
    sizing: Sizing | Mapping[str, Any] | None = None,
    store: str | os.PathLike[str] | None = None,
    data: Mapping[str, pd.DataFrame] | None = None,
    adjust: bool = False,
    returns: str = "price",
    reports: str | os.PathLike[str] | None = None,
    save: bool = True,
    progress: bool | None = None,
    report: bool | str = True,
) -> WalkForwardResult:
    """Walk ``strategy`` forward over ``symbols``; see :class:`WalkForwardResult`.

    Args:
        train, test, embargo: calendar spans (``2y``, ``6m``, ``13w``, ``5d``).
        anchored: expanding training windows from the first bar instead of rolling ones.
        method, trials, seed: ``grid`` (``grid`` is the full grid) or seeded ``tpe`` per fold.
        Other arguments as :func:`quantlab.optimize`.

    Raises:
        QuantlabError: windows longer than the data, no folds, an embargo as long as the
            test window, fewer than two candidate parameter sets, and the usual bad input.
    """
    timings: dict[str, float] = {}
    began = time.perf_counter()
    spec = get_strategy(strategy)
    check_metric(metric)
    constraints = tuple(constraints)
    parse_constraints(constraints)
    if method not in ("grid", "tpe"):
        raise ParameterError("unknown search method", found=repr(method), fix="use grid or tpe")
    fixed = parse_fixed(spec, params)
    grid = grid_text(spec, grid)
    fixed = with_interval_params(spec, get_interval(interval), fixed, grid_names(grid))
    sim = sim or make_sim_config(cash, costs, sizing)
    if save:
        ensure_writable(reports)
    inputs = load_inputs(symbols, interval, start, end, store, data, adjust=adjust, returns=returns)
    warmup = VectorbtWarmup("single")  # cold cache only: compiles vectorbt's side on the other core
    # Folds start where every symbol has data (the latest first bar), so no fold trains a
    # symbol on a window before its history begins.
    common_start = max(int(p.index.asi8[0]) for p in inputs.prices.values())
    stamps = np.unique(np.concatenate([p.index.asi8 for p in inputs.prices.values()]))
    union = pd.DatetimeIndex(stamps[stamps >= common_start]).tz_localize("UTC")
    bounds = make_folds(union, train, test, embargo, anchored)
    values = parse_grid(spec, grid, fixed).values if method == "grid" else None
    if method == "grid" and values is not None and len(values) < 2:
        raise ParameterError(
            "walk-forward needs at least 2 parameter sets to choose from in each fold",
            found=f"{len(values)} combination", fix="give ranges in --grid",
        )
    if method == "tpe" and trials < 2:
        raise ParameterError("walk-forward with TPE needs at least 2 trials per fold", found=trials)
    timings["setup"] = time.perf_counter() - began

    fold_rows: list[dict[str, Any]] = []
    chosen: list[dict[str, float]] = []
    t_search = 0.0

    with Progress(len(bounds), f"walk-forward {spec.name}", "fold", progress) as bar:
        for fold in bounds:
            windows = _windows(inputs, fold.train_start, fold.train_end)
            t0 = time.perf_counter()
            fold_values = values if values is not None else _tpe_values(
                spec, inputs, sim, windows, grid, fixed, metric, trials, seed + fold.number
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
                    "fold": fold.number, "symbol": symbol,
                    "train_start": fold.train_start, "train_end": fold.train_end,
                    "test_start": fold.test_start, "test_end": fold.test_end, "partial": fold.partial,
                    **best,
                    **{f"is_{m}": float(is_row[m]) for m in FOLD_METRICS},
                    **{f"oos_{m}": oos[m] for m in FOLD_METRICS},
                    "oos_trades": oos["n_trades"], "oos_bars": int(test_bars(symbol)), "candidates": int(len(fold_values)),
                    "oos_rank": rank_pct,
                    "oos_logit": float(np.log(rank_pct / (1 - rank_pct))) if 0 < rank_pct < 1 else float("nan"),
                    "is_dsr": dsr,
                }
                fold_rows.append(row)
            bar.update_to(fold.number + 1)
    timings["search"] = t_search

    t0 = time.perf_counter()
    folds_table = pd.DataFrame(fold_rows)
    drift = pd.DataFrame([{"fold": f.number, "test_start": f.test_start, **p} for f, p in zip(bounds, chosen, strict=True)])
    records, targets, starts, oos_rows, replay_diff, equity = _stitch(spec, inputs, sim, bounds, chosen, warmup)
    oos_metrics = pd.DataFrame(oos_rows).set_index("symbol")
    timings["stitch"] = time.perf_counter() - t0
    efficiency = _efficiency(folds_table, oos_metrics, metric, inputs.symbols)
    summary = walkforward_summary(spec, inputs, sim, metric, train, test, embargo, anchored, method, trials, seed, grid, fixed,
                       constraints, bounds, folds_table, drift, oos_metrics, efficiency, replay_diff, timings, start, end)
    result = WalkForwardResult(
        spec, inputs, sim, metric, bounds, folds_table, drift, equity, oos_metrics, efficiency, summary,
        records=records, targets=targets, oos_start=starts,
    )
    if save:
        result.summary["store"] = None if data is not None else str(store_path(store).resolve())
        save_walkforward(result, reports, began)
        # deferred: plotly and QuantStats load only when a run writes its pages
        from quantlab.reports import build_pages

        result.report = build_pages(result.path, report, store)
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


def _oos_metrics(spec: StrategySpec, inputs: MarketInputs, sim: SimConfig, symbol: str, params: dict[str, float], fold: Fold) -> dict[str, float]:
    j0, j1 = _test_bounds(inputs, symbol, fold)
    if j1 - j0 < 2:
        return {m: float("nan") for m in METRIC_NAMES}
    prices = inputs.prices[symbol]
    target = evaluate_arrays(spec, prices.slice(j1), params)
    return simulate(target, prices, sim, inputs.interval, j0, j1).metrics


def _stitch(
    spec: StrategySpec, inputs: MarketInputs, sim: SimConfig, bounds: list[Fold], chosen: list[dict[str, float]],
    warmup: VectorbtWarmup | None = None,
) -> tuple[dict[str, SimRecord], dict[str, np.ndarray], dict[str, int], list[dict[str, Any]], float, pd.DataFrame]:
    """One continuous out-of-sample account per symbol, parameters switching per fold."""
    records, targets, starts, rows = {}, {}, {}, []
    worst = 0.0
    equity = {}
    for symbol, prices in inputs.prices.items():
        stitched = np.full(len(prices), np.nan)
        first, last = None, None
        for fold, params in zip(bounds, chosen, strict=True):
            j0, j1 = _test_bounds(inputs, symbol, fold)
            if j1 - j0 < 1:
                continue
            target = evaluate_arrays(spec, prices.slice(j1), params)
            lo = max(j0 - 1, 0)
            stitched[lo : j1 - 1] = target[lo : j1 - 1]
            first = j0 if first is None else first
            last = j1
        if first is None or last is None or last - first < 2:
            raise ParameterError(f"{symbol} has no out-of-sample bars in any fold", fix="check --start/--end")
        record = simulate(stitched, prices, sim, inputs.interval, first, last)
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
            "annualised_return": float(oos.loc[symbol, "cagr"]) / is_cagr if is_cagr and np.isfinite(is_cagr) else float("nan"),
        }
    return out


def _tpe_values(
    spec: StrategySpec, inputs: MarketInputs, sim: SimConfig, windows: dict[str, Window], grid: str | None,
    fixed: Mapping[str, float], metric: str, trials: int, seed: int,
) -> np.ndarray:
    """A fresh in-memory TPE study per fold (seed + fold number); each parameter set once
    (``distinct_sets``), so the fold's candidates and DSR's N count distinct sets."""
    import optuna

    from quantlab.optimizer.study import distinct_sets, search

    storage = optuna.storages.InMemoryStorage()
    values = search(spec, inputs, sim, windows, grid, fixed, metric, trials, seed, f"wf-{seed}", storage).values
    return values[distinct_sets(values)]
