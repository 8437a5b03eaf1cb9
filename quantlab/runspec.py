"""One description of a research run, shared by backtest, optimize and walk-forward.

Every run answers the same three questions, and they used to be answered by the same
~15 keyword arguments repeated in each function and command:

* which bars: strategy, symbols, interval, start/end, the store (or in-memory frames),
  the price basis (``adjust``, ``returns``);
* how they are simulated: one :class:`~quantlab.engine.settings.SimConfig` (cash, costs, sizing);
* what is written: the reports folder, whether to save, which pages, progress bars.

:class:`RunSpec` holds them once. The search that optimize and walk-forward share (grid,
fixed parameters, metric, constraints, grid or TPE, trials, seed, optuna study) is a
:class:`SearchSpec`. The keyword APIs (``quantlab.optimize(strategy, symbols, grid,
holdout=0.3, cash=...)``) still work: they build both with :func:`split_options`.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, TypedDict

import pandas as pd

from quantlab.engine.params import GridLike
from quantlab.engine.settings import Costs, SimConfig, Sizing, make_sim_config
from quantlab.engine.strategy import StrategySpec

__all__ = ["RunOptions", "RunSpec", "SearchOptions", "SearchSpec", "split_options"]


@dataclass(frozen=True)
class RunSpec:
    """Which bars, how they are simulated, and what is written (see the module docstring).

    Attributes:
        strategy: registry name, dotted module path, .py file or a StrategySpec.
        symbols: ``"SPY,QQQ"`` or a list; read from the store unless ``data`` is given.
        interval, start, end: bars to use (``start``/``end`` inclusive dates).
        store: HDF5 store (default ``data/market.h5`` or ``$QUANTLAB_STORE``).
        data: in-memory frames per symbol instead of the store.
        adjust: back-adjust as-traded bars for their splits instead of refusing them.
        returns: ``"price"`` (stored OHLC) or ``"total"`` (scaled by ``adj_close``).
        sim: simulation settings (initial cash, costs, sizing).
        reports: reports folder (default ``reports/`` or ``$QUANTLAB_REPORTS``).
        save: write the run folder ``reports/<run_id>/``.
        report: pages of a saved run: True/"full", "charts" (no QuantStats) or False/"none".
        progress: progress bars (None: when stderr is a terminal).
    """

    strategy: str | StrategySpec
    symbols: str | Sequence[str] | None = None
    interval: str = "1d"
    start: str | None = None
    end: str | None = None
    store: str | os.PathLike[str] | None = None
    data: Mapping[str, pd.DataFrame] | None = field(default=None, repr=False)
    adjust: bool = False
    returns: str = "price"
    sim: SimConfig = field(default_factory=SimConfig)
    reports: str | os.PathLike[str] | None = None
    save: bool = True
    report: bool | str = True
    progress: bool | None = None


@dataclass(frozen=True)
class SearchSpec:
    """The parameter search of optimize and walk-forward.

    Attributes:
        grid: ``"fast=5:100:1,slow=10:250:2"`` or a mapping of value lists (grid method),
            narrowed bounds for TPE; None searches every parameter's declared range.
        params: fixed values for parameters not in the grid, e.g. ``"atr_mult=3"``.
        metric: ranking metric (mean over symbols).
        constraints: per-symbol filters such as ``"max_drawdown > -0.25"``.
        method: ``"grid"`` or ``"tpe"`` (optuna, seeded).
        trials: TPE trials (None: 200 for optimize, 100 per fold for walk-forward).
        seed: TPE seed (walk-forward fold k uses ``seed + k``).
        study, storage: optuna study name and storage URL (optimize only).
        exits: exit and entry rules to search, in grid syntax, e.g.
            ``"sl_stop=0.02:0.10:0.01,tp_stop=0.05:0.30:0.05"`` (:mod:`quantlab.engine.exits`);
            fixed ones go in ``params``.
    """

    grid: GridLike = None
    params: str | Mapping[str, float] | None = None
    metric: str = "sharpe"
    constraints: tuple[str, ...] = ()
    method: str = "grid"
    trials: int | None = None
    seed: int = 7
    study: str | None = None
    storage: str | None = None
    exits: GridLike = None


class RunOptions(TypedDict, total=False):
    """The keyword options of :class:`RunSpec` (plus ``cash``/``costs``/``sizing`` for ``sim``)."""

    interval: str
    start: str | None
    end: str | None
    store: str | os.PathLike[str] | None
    data: Mapping[str, pd.DataFrame] | None
    adjust: bool
    returns: str
    sim: SimConfig | None
    cash: float
    costs: Costs | Mapping[str, Any] | None
    sizing: Sizing | Mapping[str, Any] | None
    reports: str | os.PathLike[str] | None
    save: bool
    report: bool | str
    progress: bool | None


class SearchOptions(TypedDict, total=False):
    """The keyword options of :class:`SearchSpec` other than ``grid``."""

    params: str | Mapping[str, float] | None
    metric: str
    constraints: Sequence[str]
    method: str
    trials: int
    seed: int
    study: str | None
    storage: str | None
    exits: GridLike


_RUN_FIELDS = frozenset(f.name for f in fields(RunSpec)) - {"strategy", "symbols"}
_SIM_FIELDS = frozenset({"cash", "costs", "sizing"})
_SEARCH_FIELDS = frozenset(f.name for f in fields(SearchSpec)) - {"grid"}


def split_options(
    caller: str,
    strategy: str | StrategySpec,
    symbols: str | Sequence[str] | None,
    options: Mapping[str, Any],
    *,
    search: bool = False,
    grid: GridLike = None,
    rest: Collection[str] = (),
    without: Collection[str] = (),
) -> tuple[RunSpec, SearchSpec | None, dict[str, Any]]:
    """Split a keyword API's ``options`` into a RunSpec, a SearchSpec (when ``search``) and
    the options named in ``rest`` (e.g. optimize's ``top``); options in ``without`` are
    refused (walk-forward has no optuna ``study``).

    ``sim`` wins over ``cash``/``costs``/``sizing``, as it always did.

    Raises:
        TypeError: an option ``caller`` does not take (as Python does for a keyword).
    """
    allowed = (_RUN_FIELDS | _SIM_FIELDS | (_SEARCH_FIELDS if search else frozenset()) | set(rest)) - set(without)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}")
    run_kw = {k: v for k, v in options.items() if k in _RUN_FIELDS}
    sim = run_kw.pop("sim", None) or make_sim_config(
        options.get("cash", 100_000.0), options.get("costs"), options.get("sizing")
    )
    run = RunSpec(strategy, symbols, sim=sim, **run_kw)
    spec = None
    if search:
        search_kw = {k: v for k, v in options.items() if k in _SEARCH_FIELDS}
        if "constraints" in search_kw:
            search_kw["constraints"] = tuple(search_kw["constraints"])
        spec = SearchSpec(grid=grid, **search_kw)
    return run, spec, {k: v for k, v in options.items() if k in rest}
