"""Exit and entry rules: sweepable parameters of every strategy, declared once here.

A strategy kernel returns a target exposure; the simulator (:mod:`quantlab.kernels.sim`)
adds stops, targets, trailing stops, time exits and limit entries around it, so any
strategy gains them without editing its kernel. :func:`with_exits` merges the requested
rules into a strategy's parameter space (after the kernel's own parameters), so grids,
TPE, ranking and reports treat them as ordinary parameters; :func:`exit_vector` turns
resolved values into the kernel's exit vector. The fill rules are stated in
docs/research.md ("Exit and entry rules").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from quantlab.engine.strategy import Param, StrategySpec
from quantlab.errors import ParameterError, suggest
from quantlab.kernels import layout as L

EXIT_PARAMS: tuple[Param, ...] = (
    Param(
        "sl_stop",
        "float",
        0.05,
        0.001,
        0.99,
        0.01,
        doc="stop-loss: fraction below (long) / above (short) the entry price",
    ),
    Param(
        "tp_stop",
        "float",
        0.10,
        0.001,
        10.0,
        0.05,
        doc="take-profit: fraction above (long) / below (short) the entry price",
    ),
    Param(
        "sl_trail",
        "float",
        0.05,
        0.001,
        0.99,
        0.01,
        doc="trailing stop: fraction below the high-water mark since entry",
    ),
    Param("max_hold", "int", 10, 1, 100_000, 1, doc="time exit: close at the open max_hold bars after the entry bar"),
    Param(
        "entry_limit",
        "float",
        0.005,
        0.0,
        0.5,
        0.005,
        doc="limit entry: fraction below (long) / above (short) the signal close",
    ),
    Param("limit_expiry", "int", 1, 1, 10_000, 1, doc="bars a limit entry works after the signal bar"),
    Param(
        "limit_ticks",
        "int",
        0,
        0,
        1_000,
        1,
        doc="a limit fills only if the price trades through it by this many 0.01 ticks",
    ),
)
EXIT_NAMES: tuple[str, ...] = tuple(p.name for p in EXIT_PARAMS)
_SLOT = {
    "sl_stop": L.X_SL_STOP,
    "tp_stop": L.X_TP_STOP,
    "sl_trail": L.X_SL_TRAIL,
    "max_hold": L.X_MAX_HOLD,
    "entry_limit": L.X_ENTRY_LIMIT,
    "limit_expiry": L.X_LIMIT_EXPIRY,
    "limit_ticks": L.X_LIMIT_TICKS,
}
_NEEDS_LIMIT = ("limit_expiry", "limit_ticks")
#: What a bare name in ``--exits`` searches (the declared bounds are the limits of validity,
#: far wider than a useful search).
DEFAULT_GRIDS = {
    "sl_stop": "0.01:0.10:0.01",
    "tp_stop": "0.05:0.30:0.05",
    "sl_trail": "0.02:0.20:0.02",
    "max_hold": "5:50:5",
    "entry_limit": "0:0.02:0.0025",
    "limit_expiry": "1:5:1",
    "limit_ticks": "0:5:1",
}


def exit_slot(name: str) -> int:
    """Index of an exit rule in the kernel's exit vector."""
    return _SLOT[name]


def no_exits() -> np.ndarray:
    """The exit vector with every rule off."""
    return np.full(L.EXIT_LEN, np.nan)


def with_exits(spec: StrategySpec, names: Iterable[str]) -> StrategySpec:
    """``spec`` with the named exit rules appended to its parameters (canonical order).

    Raises:
        ParameterError: an unknown rule, a name the strategy already uses, or a limit
            option without ``entry_limit``.
    """
    wanted: set[str] = {p.name for p in spec.exit_params}
    for name in names:
        if name not in _SLOT:
            raise ParameterError(
                f"unknown exit rule {name!r}", fix=suggest(name, EXIT_NAMES, then=f"known: {', '.join(EXIT_NAMES)}")
            )
        if name in (p.name for p in spec.kernel_params):
            raise ParameterError(
                f"strategy {spec.name!r} has its own parameter {name!r}, which clashes with the exit rule",
                fix="rename the strategy's parameter",
            )
        wanted.add(name)
    if wanted & set(_NEEDS_LIMIT) and "entry_limit" not in wanted:
        raise ParameterError(
            "limit_expiry and limit_ticks shape a limit entry, and no entry_limit was given",
            found=", ".join(sorted(wanted & set(_NEEDS_LIMIT))),
            fix="add entry_limit (e.g. entry_limit=0.005) or drop them",
        )
    if not wanted or [p.name for p in spec.exit_params] == [n for n in EXIT_NAMES if n in wanted]:
        return spec
    kernel = spec.kernel_params
    params = kernel + tuple(p for p in EXIT_PARAMS if p.name in wanted)
    return dataclasses.replace(spec, params=params, n_kernel_params=len(kernel), _trees={})


def exit_names_in(items: Iterable[str]) -> list[str]:
    """The exit rule names among ``items`` (parameter names given by the user)."""
    return [n for n in items if n in _SLOT]


def exit_vector(spec: StrategySpec, params: Mapping[str, float]) -> np.ndarray:
    """The kernel's exit vector from one resolved parameter set (rules not merged: off)."""
    ex = no_exits()
    for p in spec.exit_params:
        ex[_SLOT[p.name]] = float(params[p.name])
    return ex


def check_exit_values(name: str, values: Iterable[float]) -> None:
    """Refuse values the fill rules cannot mean, with the reason (before the range check)."""
    for v in values:
        if name in ("sl_stop", "sl_trail") and not 0 < v < 1:
            what = "stop" if name == "sl_stop" else "trailing stop"
            raise ParameterError(
                f"{name} is the {what}'s distance as a fraction of the price and must be in (0, 1)",
                found=f"{name}={v:g}",
                fix=f"e.g. {name}=0.05 for 5%"
                + ("; a stop at or beyond the entry would close at once" if v <= 0 else ""),
            )
        if name == "tp_stop" and v <= 0:
            raise ParameterError(
                "tp_stop must be > 0: a long's take-profit at or below its entry (and so below its stop) would close at once",
                found=f"tp_stop={v:g}",
                fix="e.g. tp_stop=0.10 for a target 10% above the entry",
            )
        if name == "entry_limit" and v < 0:
            raise ParameterError(
                "entry_limit must be >= 0: a negative offset puts a buy limit above the signal close, crossing the market",
                found=f"entry_limit={v:g}",
                fix="use 0 for a limit at the signal close or e.g. 0.005 for 0.5% below it",
            )
        if name in ("max_hold", "limit_expiry") and v < 1:
            raise ParameterError(
                f"{name} counts bars and must be at least 1", found=f"{name}={v:g}", fix=f"e.g. {name}=5"
            )


def check_exits_for_run(
    spec: StrategySpec, targets: Iterable[np.ndarray], allow_short: bool, tp_values: Iterable[float] = ()
) -> None:
    """Refuse exits on a strategy that shorts without ``allow_short`` (its negative targets
    would be read as flat, so short-side stops would never be what it meant), and a short's
    take-profit of 100% or more (a price at or below zero)."""
    if not spec.exit_params:
        return
    shorts = any(np.nanmin(t, initial=0.0) < 0 for t in targets)
    if shorts and not allow_short:
        raise ParameterError(
            f"exit rules on {spec.name!r}, which goes short, but shorting is off",
            found=", ".join(p.name for p in spec.exit_params),
            fix="allow shorts (Sizing(allow_short=True)) or drop the exits",
        )
    if shorts and allow_short:
        big = [v for v in tp_values if v >= 1]
        if big:
            raise ParameterError(
                "a short's take-profit below zero: tp_stop must be < 1 when the strategy shorts",
                found=f"tp_stop={big[0]:g}",
                fix="use tp_stop below 1",
            )


def parse_exits(spec: StrategySpec, text: str | Mapping[str, Any] | None) -> tuple[StrategySpec, str | None]:
    """``--exits`` text (grid syntax) or mapping -> (spec with the rules merged, grid text).

    A bare name (``sl_stop``) searches the rule's default grid.
    """
    if text is None or (isinstance(text, str) and not text.strip()):
        return spec, None
    from quantlab.engine.params import grid_text, split_items

    if isinstance(text, Mapping):
        spec = with_exits(spec, [str(n) for n in text])
        out = grid_text(spec, text)
        for name, raw in text.items():
            vals = list(raw) if isinstance(raw, Iterable) and not isinstance(raw, (str, bytes)) else [raw]
            check_exit_values(str(name), [float(v) for v in vals])
        return spec, out
    items: list[tuple[str, str]] = []
    for raw in text.split(","):
        raw = raw.strip()
        if raw and "=" not in raw:
            if raw not in DEFAULT_GRIDS:
                with_exits(spec, [raw])  # raises the unknown-rule error
            items.append((raw, DEFAULT_GRIDS[raw]))
        else:
            items.extend(split_items(raw, "--exits"))
    spec = with_exits(spec, [n for n, _ in items])
    for name, value in items:
        check_exit_values(name, _axis_numbers(value))
    return spec, ",".join(f"{n}={v}" for n, v in items)


def _axis_numbers(value: str) -> list[float]:
    try:
        if "|" in value:
            return [float(v) for v in value.split("|")]
        return [float(v) for v in value.split(":")[:2]]
    except ValueError:
        return []  # the grid parser reports malformed numbers


def merge_grid(grid: str | None, exits_grid: str | None) -> str | None:
    """One grid text from the strategy grid and the exits grid."""
    parts = [g for g in (grid, exits_grid) if g]
    return ",".join(parts) if parts else None


def apply_exits(
    spec: StrategySpec, exits: str | Mapping[str, Any] | None, params: str | Mapping[str, Any] | None
) -> tuple[StrategySpec, str | None]:
    """Merge the exit rules a run names into ``spec``: searched ones (``exits``, grid
    syntax) and fixed ones (exit names among ``params``). Returns the spec and the exits grid."""
    spec, exits_grid = parse_exits(spec, exits)
    fixed = _given(params)
    _check_unknown_names(spec, fixed)
    _check_searched_once(exits_grid, fixed)
    names = exit_names_in(fixed)
    for name in names:
        if isinstance(fixed[name], str) and _float(fixed[name]) != _float(fixed[name]):
            raise ParameterError(
                f"value of {name!r} is not a number", found=repr(fixed[name]), fix=f"e.g. {name}={EXIT_EXAMPLES[name]}"
            )
        check_exit_values(name, [_float(fixed[name])])
    return with_exits(spec, names), exits_grid


EXIT_EXAMPLES = {
    "sl_stop": "0.05",
    "tp_stop": "0.10",
    "sl_trail": "0.05",
    "max_hold": "5",
    "entry_limit": "0.005",
    "limit_expiry": "3",
    "limit_ticks": "1",
}


def _check_searched_once(exits_grid: str | None, fixed: Mapping[str, Any]) -> None:
    """A rule twice in ``--exits``, or both there and in ``--params``: said here, in the
    user's flags, before the merged grid would report it as a ``--grid`` mistake."""
    pairs = [tuple(item.split("=", 1)) for item in (exits_grid or "").split(",") if item]
    searched = [name for name, _ in pairs]
    twice = sorted({n for n in searched if searched.count(n) > 1})
    if twice:
        name = twice[0]
        values = [v for n, v in pairs if n == name]
        plain = all(_float(v) == _float(v) for v in values)  # no range among them: | joins them
        raise ParameterError(
            f"exit rule {name!r} appears twice in --exits",
            found=",".join(f"{name}={v}" for v in values),
            fix=f"give it once: {name}={'|'.join(values)}"
            if plain
            else "give it once: one range, or values joined by |",
        )
    both = sorted(set(searched) & set(fixed))
    if both:
        raise ParameterError(
            f"exit rule(s) {', '.join(both)} given both in --params and in --exits",
            found=", ".join(f"{n}={fixed[n]}" for n in both),
            fix="search a rule with --exits or fix it with --params, not both",
        )


def _check_unknown_names(spec: StrategySpec, fixed: Mapping[str, Any]) -> None:
    """A misspelt exit rule among fixed params: the strategy's own check only knows its
    kernel parameters, so it could not suggest the rule the user meant."""
    for name in fixed:
        if name in spec.param_names or name in EXIT_NAMES:
            continue
        hint = suggest(name, EXIT_NAMES, then=f"Known: {', '.join((*spec.param_names, *EXIT_NAMES))}")
        if hint.startswith("did you mean"):
            raise ParameterError(f"strategy {spec.name!r} has no parameter {name!r}", fix=hint)


def tp_values(params: str | Mapping[str, Any] | None, exits_grid: str | None) -> list[float]:
    """Every tp_stop value a run uses (for the short-side check)."""
    out = []
    if "tp_stop" in _given(params):
        out.append(_float(_given(params)["tp_stop"]))
    for name, value in _given(exits_grid).items():
        if name == "tp_stop":
            out.extend(_axis_numbers(str(value)))
    return out


def _given(params: str | Mapping[str, Any] | None) -> dict[str, Any]:
    if not params:
        return {}
    if isinstance(params, Mapping):
        return dict(params)
    from quantlab.engine.params import split_items

    return dict(split_items(params, "--params"))


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")  # the parameter parser reports it with its own message


def check_shorting(
    spec: StrategySpec, prices: Iterable[Any], params: Mapping[str, float], allow_short: bool, tps: Iterable[float]
) -> None:
    """:func:`check_exits_for_run` on the strategy's targets at ``params`` (a search checks
    its defaults with the fixed values: whether a strategy shorts is a property of its rule)."""
    if not spec.exit_params:
        return
    from quantlab.engine.signals import evaluate_arrays

    try:
        resolved = spec.resolve(params)
    except ParameterError:
        return  # the search reports bad fixed values itself
    check_exits_for_run(spec, [evaluate_arrays(spec, p, resolved) for p in prices], allow_short, tps)
