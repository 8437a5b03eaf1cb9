"""``quantlab.backtest``: one parameter set, replayed exactly through vectorbt.

Each symbol runs on its own account by default; ``shared_cash=True`` runs them as one
portfolio sharing one cash balance on their common timestamps. Results are saved under
``reports/<run_id>/`` (metrics, equity, trades, orders, summary).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Unpack

import numpy as np
import pandas as pd

from quantlab._startup.warmup import VectorbtWarmup
from quantlab.engine.exits import apply_exits, check_exits_for_run, exit_vector, tp_values
from quantlab.engine.intervals import get_interval, short_samples
from quantlab.engine.params import resolve_params
from quantlab.engine.registry import get_strategy
from quantlab.engine.settings import SimConfig, inert_settings
from quantlab.engine.signals import evaluate_arrays
from quantlab.engine.strategy import StrategySpec
from quantlab.errors import DataError
from quantlab.inputs import MarketInputs, load_inputs
from quantlab.kernels.layout import METRIC_NAMES
from quantlab.paths import store_path
from quantlab.replay import (
    SimRecord,
    equity_frame,
    max_relative_difference,
    portfolio,
    records_frame,
    simulate,
    vbt_metrics,
)
from quantlab.runs.chart import CHART, chart_frame
from quantlab.runs.record import RunDir, config_hash, ensure_writable, finish_run, new_run_id
from quantlab.runspec import RunOptions, RunSpec, split_options
from quantlab.shared_cash import GroupArrays, check_group_sim, shared_portfolio


@dataclass
class BacktestResult:
    """A backtest: vectorbt portfolios, targets and metrics.

    Attributes:
        portfolios: vectorbt Portfolio per symbol (independent mode) or ``{"portfolio": pf}``
            (shared cash, one group).
        targets: the strategy's target exposure per symbol.
        metrics: quantlab's metric names per portfolio, computed by vectorbt.
        summary: what ``summary.json`` holds.
    """

    spec: StrategySpec
    params: dict[str, float]
    inputs: MarketInputs
    sim: SimConfig
    shared_cash: bool
    portfolios: dict[str, Any]
    targets: dict[str, pd.Series]
    metrics: pd.DataFrame
    summary: dict[str, Any]
    run_id: str | None = None
    path: Any = None
    report: Any = None
    _year_freq: Any = field(default=None, repr=False)
    records: dict[str, SimRecord] = field(default_factory=dict, repr=False)

    @property
    def returns_basis(self) -> str:
        """``"price"`` or ``"total"``: see :mod:`quantlab.data.basis`."""
        return self.inputs.returns_basis

    @property
    def portfolio(self) -> Any:
        """The vectorbt Portfolio (the first symbol's when symbols run independently)."""
        return next(iter(self.portfolios.values()))

    def stats(self, symbol: str | None = None) -> pd.Series:
        """vectorbt's full statistics, annualised with the interval's year."""
        pf = self.portfolios[symbol] if symbol else self.portfolio
        return pf.stats(settings=dict(year_freq=self._year_freq))


def backtest(
    strategy: str | StrategySpec,
    symbols: str | Sequence[str] | None = None,
    params: str | Mapping[str, float] | None = None,
    *,
    shared_cash: bool = False,
    **options: Unpack[RunOptions],
) -> BacktestResult:
    """Backtest ``strategy`` with ``params`` on ``symbols``; see :class:`BacktestResult`.

    The keyword form of :func:`backtest_run`: ``options`` are those of a
    :class:`~quantlab.runspec.RunSpec` (bars, price basis, ``sim`` or
    ``cash``/``costs``/``sizing``, output). ``adjust`` and ``returns`` choose the price
    basis as in :func:`quantlab.optimize` (raw split data is refused unless ``adjust``;
    ``returns="total"`` uses ``adj_close``).

    Raises:
        QuantlabError: unknown strategy or parameter, bad data, unwritable reports folder.
        TypeError: an unknown option.
    """
    run, _, _ = split_options("backtest", strategy, symbols, options)
    return _backtest(run, params, shared_cash)


def backtest_run(
    run: RunSpec, params: str | Mapping[str, float] | None = None, *, shared_cash: bool = False
) -> BacktestResult:
    """Backtest ``run``'s strategy with ``params`` (others keep their defaults); see :func:`backtest`.

    Args:
        run: the bars, the simulation and what to write.
        params: e.g. ``"fast=20,slow=50"`` or a mapping.
        shared_cash: trade all symbols from one cash account (on their common timestamps).

    Raises:
        QuantlabError: as :func:`backtest`.
    """
    return _backtest(run, params, shared_cash)


def _backtest(run: RunSpec, params: str | Mapping[str, float] | None, shared_cash: bool) -> BacktestResult:
    """The backtest itself: both public forms call it directly, so a warning's
    ``stacklevel`` reaches the user's line from either."""
    sim, start, end, store, reports = run.sim, run.start, run.end, run.store, run.reports
    began = time.perf_counter()
    spec, _ = apply_exits(get_strategy(run.strategy), None, params)
    resolved = resolve_params(spec, params, get_interval(run.interval))
    if run.save:
        ensure_writable(reports)
    inputs = load_inputs(run.symbols, run.interval, start, end, store, run.data, adjust=run.adjust, returns=run.returns)
    # Cold cache only: compiles vectorbt's side on the other core.
    warmup = VectorbtWarmup("shared" if shared_cash and len(inputs.symbols) > 1 else "single")
    sim.costs.check_symbols(inputs.symbols)
    if shared_cash and len(inputs.symbols) > 1:
        check_group_sim(sim)
    iv = inputs.interval
    for symbol, prices in inputs.prices.items():
        need = spec.lookback_bars(resolved)
        if len(prices) <= need:
            raise DataError(
                f"{symbol} has too few bars for {spec.name} with these parameters",
                found=f"{len(prices)} bars, lookback {need}",
                fix="use a longer date range or shorter windows",
            )
    targets = {
        s: pd.Series(evaluate_arrays(spec, p, resolved), index=p.index, name=s) for s, p in inputs.prices.items()
    }
    check_exits_for_run(
        spec, [t.to_numpy() for t in targets.values()], sim.sizing.allow_short, tp_values(resolved, None)
    )
    replay_diff = 0.0
    records: dict[str, SimRecord] = {}
    if shared_cash and len(inputs.symbols) > 1:
        arrays = GroupArrays.build(inputs, targets, sim)
        exits = exit_vector(spec, resolved) if spec.exit_params else None
        pf, group_value, group_record = shared_portfolio(arrays, sim, inputs.interval, exits, ready=warmup.wait)
        if group_record is not None:
            records["portfolio"] = group_record
        portfolios = {"portfolio": pf}
        # The group simulator's value path against vectorbt's accounting of its orders.
        theirs = pf.value().to_numpy()
        replay_diff = float(
            np.max(np.abs(group_value - theirs) / (np.maximum(np.abs(group_value), np.abs(theirs)) + 1e-3))
        )
        metrics = vbt_metrics(pf, iv)
        metrics.index = ["portfolio"]
    else:
        portfolios, rows = {}, []
        for symbol, prices in inputs.prices.items():
            record = simulate(targets[symbol].to_numpy(), prices, sim, iv, exits=exit_vector(spec, resolved))
            records[symbol] = record
            warmup.wait()
            portfolios[symbol] = portfolio(record, prices, sim, iv)
            replayed = vbt_metrics(portfolios[symbol], iv)
            ours = pd.DataFrame([record.metrics])[list(METRIC_NAMES)]
            replay_diff = max(replay_diff, max_relative_difference(ours, replayed))
            rows.append(replayed.assign(symbol=symbol))
        metrics = pd.concat(rows).set_index("symbol")
    config = {
        "kind": "backtest",
        "strategy": spec.name,
        "symbols": inputs.symbols,
        "params": resolved,
        "interval": iv.name,
        "start": start,
        "end": end,
        "shared_cash": bool(shared_cash and len(inputs.symbols) > 1),
        "sim": sim.to_dict(),
        **inputs.basis_info(),
    }
    cfg_hash = config_hash(config)
    inert = inert_settings(sim, stacklevel=4)  # the same frames as short_samples below
    summary: dict[str, Any] = {
        "kind": "backtest",
        "strategy": spec.name,
        "symbols": inputs.symbols,
        "interval": iv.name,
        "params": resolved,
        **inputs.basis_info(),
        "config": config,
        "config_hash": cfg_hash,
        "data_hash": inputs.data_hash,
        "store": None if run.data is not None else str(store_path(store).resolve()),
        "metrics": metrics.to_dict("index"),
        "replay_check": {"max_relative_difference": replay_diff, "ok": bool(replay_diff <= 1e-9)},
        "period": {
            s: {"first": str(p.index[0]), "last": str(p.index[-1]), "bars": len(p)} for s, p in inputs.prices.items()
        },
        "short_sample": short_samples({s: len(p) for s, p in inputs.prices.items()}, iv, stacklevel=4),
        **({"inert_settings": inert} if inert else {}),
    }
    result = BacktestResult(
        spec,
        resolved,
        inputs,
        sim,
        bool(config["shared_cash"]),
        portfolios,
        targets,
        metrics,
        summary,
        _year_freq=iv.year_freq,
        records=records,
    )
    if run.save:
        _save(result, reports, began)
        # deferred: plotly and QuantStats load only when a run writes its pages
        from quantlab.reports import build_pages

        result.report = build_pages(result.path, run.report, store)
    return result


def _save(result: BacktestResult, reports: Any, began: float) -> None:
    run = RunDir.create(new_run_id("backtest", result.summary["config_hash"]), reports)
    t0 = time.perf_counter()
    run.write_csv("metrics.csv", result.metrics)
    run.write_csv("equity.csv", equity_frame(result.portfolios))
    run.write_csv("trades.csv", records_frame(result.portfolios, "positions", result.records), index=False)
    run.write_csv("orders.csv", records_frame(result.portfolios, "orders", result.records), index=False)
    run.write_csv(CHART, chart_frame(result.spec, result.inputs, result.params))
    finish_run(run, result, t0, began)
