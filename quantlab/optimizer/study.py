"""Optuna search (seeded TPE) whose objective is the sweep on one parameter row.

Storage defaults to SQLite under ``reports/`` and the study name to the strategy plus
the run's configuration hash (without ``--trials``), so rerunning the same command resumes
the study instead of starting over, and asking for more trials extends it; ``--trials`` is
the total number of evaluated trials wanted. Each proposal is seeded from the seed and the
number of trials already stored, so a resumed study equals an uninterrupted one. Parameter
sets that break the strategy's constraints are told to optuna as failed trials (with the
reason in their user attributes) and do not count towards the total.

A trial that never trades on some symbol counts, is reported and never ranks, but TPE must
learn from it: a FAILED trial is invisible to TPE, which then keeps sampling the dead region
(rsi_reversion's default space on SPY: 275 of 300 trials idle). So it is told as COMPLETE with
the worst value for the direction and the constraint ``symbols_without_trades > 0``
(``Trial.set_constraint``, optuna 5's replacement for ``constraints_func``): TPE puts
infeasible trials in its "bad" group, and the value stays stored with the study, so resuming
still replays exactly.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from quantlab._startup.progress import Progress
from quantlab.engine.backends import optuna_storage as shared_storage
from quantlab.engine.params import check_fixed_not_searched, parse_axis, split_items
from quantlab.engine.strategy import StrategySpec
from quantlab.engine.sweep import run_sweep
from quantlab.errors import ConfigError, ParameterError
from quantlab.kernels.layout import METRIC_NAMES
from quantlab.optimizer.filters import LOWER_IS_BETTER

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

    from quantlab.engine.settings import SimConfig
    from quantlab.inputs import MarketInputs
    from quantlab.optimizer.evaluate import Window

MAX_ATTEMPTS_FACTOR = 20
#: Constraint (``> 0``: infeasible) telling TPE how many symbols a trial never traded on.
IDLE_CONSTRAINT = "symbols_without_trades"


@dataclass(frozen=True)
class StudyResult:
    """The evaluated (completed) trials of a study, in trial order."""

    study_name: str
    storage: str
    values: np.ndarray  # (trials, params)
    objective: np.ndarray  # objective value per row (NaN when it failed)
    trial_numbers: np.ndarray
    n_rejected: int
    resumed_from: int


def distinct_sets(values: np.ndarray) -> np.ndarray:
    """Row indices of ``values`` that are the first proposal of their parameter set, in order.

    TPE proposes the same set again (often, in a small or narrow space). A repeat is the same
    configuration with the same returns, not a new strategy tried: it is evaluated, listed,
    ranked and counted in DSR's N once, as the first trial that proposed it.
    """
    if not len(values):
        return np.empty(0, np.int64)
    _, first = np.unique(values, axis=0, return_index=True)
    return np.sort(first).astype(np.int64)


def distributions(spec: StrategySpec, grid: str | None, fixed: Mapping[str, float]) -> dict[str, BaseDistribution]:
    """Optuna distributions per searched parameter; ``grid`` may narrow bounds and steps.

    A range (``5:100:5``) becomes an int/float distribution with that step; a list
    (``5|10|50``) becomes a categorical one, so only the listed values are tried.
    """
    import optuna.distributions as d

    items = split_items(grid or "", "--grid")
    narrowed: dict[str, np.ndarray | None] = {name: parse_axis(spec, name, text) for name, text in items}
    listed = {name for name, text in items if "|" in text}
    check_fixed_not_searched(narrowed, fixed)
    searched = narrowed or {p.name: None for p in spec.params if p.name not in fixed}
    out: dict[str, BaseDistribution] = {}
    for name, axis in searched.items():
        p = spec.param(name)
        if name in listed and axis is not None and axis.size > 1:
            choices = [int(v) for v in axis] if p.kind == "int" else [float(v) for v in axis]
            out[name] = d.CategoricalDistribution(choices)
            continue
        low, high = (float(axis.min()), float(axis.max())) if axis is not None else (p.low, p.high)
        if low == high:
            continue
        step = float(np.min(np.diff(axis))) if axis is not None and axis.size > 1 else p.step
        if p.kind == "int":
            out[name] = d.IntDistribution(int(low), int(high), step=int(step or 1), log=p.log and not step)
        else:
            out[name] = d.FloatDistribution(low, high, step=step if not p.log else None, log=p.log)
    if not out:
        raise ParameterError("nothing to search: every parameter is fixed", fix="give ranges with --grid")
    return out


def trial_sampler(seed: int, n_trials: int) -> Any:
    """The TPE sampler that proposes trial number ``n_trials`` of a study seeded ``seed``.

    optuna stores a study's trials but not its sampler's random state: a resumed study
    with a fresh ``TPESampler(seed=seed)`` replays the random start-up proposals it
    already made (optuna issue #3255). Seeding each proposal from ``(seed, trials so
    far)`` makes it a function of the seed and the stored history only, so a study run
    5 + 20 trials proposes exactly what one run of 25 does.
    """
    import optuna

    derived = int(np.random.SeedSequence([int(seed), int(n_trials)]).generate_state(1)[0])
    return optuna.samplers.TPESampler(seed=derived, multivariate=True)


def run_study(
    spec: StrategySpec,
    objective: Callable[[np.ndarray], tuple[float, int]],
    base: Mapping[str, float],
    space: dict[str, BaseDistribution],
    trials: int,
    seed: int,
    study_name: str,
    storage: Any,
    direction: Literal["minimize", "maximize"],
    on_trial: Callable[[int], None] | None = None,
    data_hash: str | None = None,
) -> StudyResult:
    """Run (or resume) the study until it has ``trials`` completed trials.

    ``objective(row)`` returns ``(value, symbols without a trade)``; a row idle on any
    symbol is an infeasible trial whose objective reads NaN here (see the module docstring).

    A study remembers the hash of the data it was run on; resuming it on other data is
    refused (its trial values would not describe the new data).
    """
    import optuna

    if trials < 1:
        raise ConfigError("--trials must be at least 1", found=trials)
    optuna.logging.set_verbosity(logging.WARNING)
    # Shared (PostgreSQL) studies: per-worker seed, heartbeats, --trials contributed by this
    # process; see quantlab.engine.backends.optuna_storage. Files and memory: unchanged.
    shared = shared_storage.is_shared(storage)
    if shared:
        worker = shared_storage.worker_id()
        seed = shared_storage.sampler_seed(seed, worker)
        print(f"optuna: shared study {study_name!r}, worker id {worker}, sampler seed {seed}", file=sys.stderr)
        storage_url, storage = storage, shared_storage.open_storage(storage)
    sampler = trial_sampler(seed, 0)
    try:
        study = optuna.create_study(
            study_name=study_name, storage=storage, sampler=sampler, direction=direction, load_if_exists=True
        )
    except Exception as err:  # optuna raises many storage-specific types
        raise ConfigError("cannot open the optuna storage", found=f"{storage} ({err})", fix="check --storage") from None
    if shared:
        shared_storage.fail_dead_trials(study)  # trials of killed processes: RUNNING -> FAIL
    if data_hash is not None:
        seen = study.user_attrs.get("data_hash")
        if seen is None:
            study.set_user_attr("data_hash", data_hash)
        elif seen != data_hash:
            raise ConfigError(
                f"optuna study {study_name!r} was run on other data; resuming it would mix results",
                found=f"study data hash {str(seen)[:12]}, this run's {data_hash[:12]}",
                fix="give another --study name (or omit it: the default name includes the data hash)",
            )
    completed = [
        t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE or t.user_attrs.get("nan_objective")
    ]
    resumed_from = len(completed)
    names = list(spec.param_names)
    attempts = 0
    rejected = 0
    target = resumed_from + trials if shared else trials
    beats = shared_storage.Heartbeats(storage if shared else None)
    while len(completed) < target and attempts < MAX_ATTEMPTS_FACTOR * trials:
        attempts += 1
        study.sampler = trial_sampler(seed, len(study.trials))
        trial = study.ask(space)
        beats.track(trial._trial_id)  # shared studies: heartbeats while the trial runs
        params = dict(base)
        params.update(trial.params)
        row = np.array([[params[n] for n in names]], dtype=np.float64)
        if not spec.constraint_mask({n: row[:, i] for i, n in enumerate(names)})[0]:
            trial.set_user_attr("rejected", f"violates {list(spec.constraints)}")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            rejected += 1
            continue
        value, idle = objective(row)
        if idle:
            trial.set_user_attr("no_trades", True)
            trial.set_constraint(IDLE_CONSTRAINT, float(idle))
            study.tell(trial, -np.inf if direction == "maximize" else np.inf)
        elif np.isfinite(value):
            study.tell(trial, value)
        else:
            trial.set_user_attr("nan_objective", True)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            trial_obj = study.trials[trial.number]
            completed.append(trial_obj)  # counted: reported as a NaN combination, not dropped
            if on_trial is not None:
                on_trial(len(completed))
            continue
        completed.append(study.trials[trial.number])
        if on_trial is not None:
            on_trial(len(completed))
    beats.stop()
    if shared:  # every process's finished trials, as they stand now
        storage = storage_url
        completed = [
            t
            for t in study.get_trials(deepcopy=False)
            if t.state == optuna.trial.TrialState.COMPLETE or t.user_attrs.get("nan_objective")
        ]
    rows, objective_values, numbers = [], [], []
    for t in sorted(completed, key=lambda t: t.number):
        params = dict(base)
        params.update(t.params)
        rows.append([params[n] for n in names])
        idle = t.user_attrs.get("no_trades") or t.value is None
        objective_values.append(np.nan if idle else t.value)
        numbers.append(t.number)
    return StudyResult(
        study_name,
        storage if isinstance(storage, str) else "in-memory",
        np.array(rows, dtype=np.float64).reshape(len(rows), len(names)),
        np.array(objective_values, dtype=np.float64),
        np.array(numbers, dtype=np.int64),
        rejected,
        resumed_from,
    )


def search(
    spec: StrategySpec,
    inputs: MarketInputs,
    sim: SimConfig,
    windows: Mapping[str, Window],
    grid: str | None,
    fixed: Mapping[str, float],
    metric: str,
    trials: int,
    seed: int,
    study_name: str,
    storage: Any,
    progress: bool | None = False,
) -> StudyResult:
    """TPE search whose objective is the mean ``metric`` over ``windows`` (one sweep row);
    the study is tied to ``inputs.data_hash``."""
    space = distributions(spec, grid, fixed)
    base = dict(spec.defaults())
    base.update(fixed)
    column = list(METRIC_NAMES).index(metric)
    orders = list(METRIC_NAMES).index("n_orders")

    def objective(row: np.ndarray) -> tuple[float, int]:
        """Mean metric over symbols, and how many symbols the row never trades on (then the
        trial is infeasible: reported, never ranked, and TPE samples away from it)."""
        rows = [
            run_sweep(spec, inputs.prices[s], row, sim, inputs.interval, w.start, w.end).metrics[0]
            for s, w in windows.items()
        ]
        idle = sum(int(r[orders] == 0) for r in rows)
        return (float("nan"), idle) if idle else (float(np.mean([r[column] for r in rows])), 0)

    direction: Literal["minimize", "maximize"] = "minimize" if metric in LOWER_IS_BETTER else "maximize"
    with Progress(trials, f"tpe {spec.name}", "trial", progress) as bar:
        return run_study(
            spec, objective, base, space, trials, seed, study_name, storage, direction, bar.callback(), inputs.data_hash
        )
