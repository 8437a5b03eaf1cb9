"""Parse ``--grid`` and ``--params`` strings and expand a parameter grid.

Grammar: comma-separated ``name=spec`` items where ``spec`` is a value (``20``), an
inclusive range ``start:stop[:step]`` (``5:100:1``; ints step 1 by default, floats need a
step) or a list ``5|10|20``. Parameters not mentioned stay at their default (or the value
given with ``--params``). Rows that break the strategy's constraints are dropped.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from quantlab.engine.intervals import Interval
from quantlab.engine.strategy import StrategySpec
from quantlab.errors import ParameterError

#: Parameters that annualise inside a strategy; unless set, they follow the run's interval.
INTERVAL_PARAMS = ("bars_per_year",)

MAX_COMBINATIONS = 20_000_000

#: A grid as text (``"fast=5:100:5,slow=50|100"``) or, from Python, a mapping of parameter
#: name to a value, a ``range``, a list or a numpy array (``{"fast": range(5, 40, 5)}``).
GridLike = str | Mapping[str, Any] | None


@dataclass(frozen=True)
class Grid:
    """An expanded parameter grid: one row per combination, columns in ``spec.params`` order."""

    names: tuple[str, ...]
    values: np.ndarray  # (combinations, params) float64
    dropped_by_constraints: int
    axes: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def row(self, i: int) -> dict[str, float]:
        return {name: float(v) for name, v in zip(self.names, self.values[i], strict=True)}


def split_items(text: str, what: str) -> list[tuple[str, str]]:
    """``"a=1,b=2:5"`` -> ``[("a", "1"), ("b", "2:5")]`` with a clear error on malformed items."""
    items: list[tuple[str, str]] = []
    if not text.strip():
        return items
    for raw in text.split(","):
        raw = raw.strip()
        if not raw:
            raise ParameterError(
                f"empty {what} item (two commas in a row, or a comma at either end)",
                found=repr(text),
                fix="separate name=value items with single commas, e.g. fast=5:50:5,slow=100",
            )
        name, sep, spec = raw.partition("=")
        if not sep or not name.strip() or not spec.strip():
            raise ParameterError(
                f"malformed {what} item", found=repr(raw), fix="write name=value, e.g. fast=20 or fast=5:100:5"
            )
        items.append((name.strip(), spec.strip()))
    return items


def parse_params(spec: StrategySpec, text: str | Mapping[str, float] | None) -> dict[str, float]:
    """``"fast=20,slow=50"`` (or a mapping) -> resolved parameters with defaults filled."""
    if text is None or isinstance(text, Mapping):
        return spec.resolve(text)
    given: dict[str, float] = {}
    for name, value in split_items(text, "--params"):
        given[name] = spec.param(name).coerce(_number(value, name, spec))
    return spec.resolve(given)


def _number(text: str, name: str, spec: StrategySpec) -> float:
    try:
        return float(text)
    except ValueError:
        example = f"{spec.param(name).default:g}" if name in spec.param_names else "20"
        raise ParameterError(
            f"value of {name!r} is not a number", found=repr(text), fix=f"e.g. {name}={example}"
        ) from None


def parse_axis(spec: StrategySpec, name: str, text: str) -> np.ndarray:
    """Values of one grid axis, validated against the parameter's type and range."""
    param = spec.param(name)
    if "|" in text:
        values = np.array([param.convert(_number(v.strip(), name, spec)) for v in text.split("|")])
    elif ":" in text:
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise ParameterError(f"range of {name!r} must be start:stop[:step]", found=repr(text))
        start, stop = _number(parts[0], name, spec), _number(parts[1], name, spec)
        if len(parts) == 3:
            step = _number(parts[2], name, spec)
        elif param.kind == "int":
            step = 1.0
        else:
            example = f"{abs(stop - start) / 10:.6g}" if stop != start else "0.5"  # ten steps: inside the range
            raise ParameterError(
                f"float range of {name!r} needs a step", found=repr(text), fix=f"e.g. {text}:{example}"
            )
        if step <= 0:
            raise ParameterError(f"step of {name!r} must be positive", found=step)
        if stop < start:
            raise ParameterError(
                f"range of {name!r} runs backwards", found=repr(text), fix="write start:stop with start <= stop"
            )
        count = int(np.floor((stop - start) / step + 1e-9)) + 1
        values = np.array([param.convert(v) for v in np.round(start + step * np.arange(count), 12)])
    else:
        values = np.array([param.convert(_number(text, name, spec))])
    outside = values[(values < param.low) | (values > param.high)]
    if outside.size:
        raise ParameterError(
            f"values of {name!r} outside its valid range [{param.low:g}, {param.high:g}]",
            found=", ".join(f"{v:g}" for v in outside[:5]),
            fix=f"keep {name} within [{param.low:g}, {param.high:g}]",
        )
    return np.unique(values)


def grid_text(spec: StrategySpec, grid: GridLike) -> str | None:
    """The canonical text of ``grid``: a mapping from Python becomes ``name=v1|v2|...`` items.

    Each mapping value may be one number, a ``range``, a list/tuple or a numpy array; the
    values then pass the same checks as the text form (type, declared range, duplicates).

    Raises:
        ParameterError: unknown names, empty or non-numeric values, values out of range.
    """
    if grid is None or isinstance(grid, str):
        return grid
    if not isinstance(grid, Mapping):
        raise ParameterError(
            "grid must be text or a mapping of parameter name to values",
            found=type(grid).__name__,
            fix='e.g. grid={"fast": range(5, 40, 5), "slow": [50, 100]} or grid="fast=5:35:5,slow=50|100"',
        )
    items = []
    for name, raw in grid.items():
        param = spec.param(str(name))
        values = list(raw) if isinstance(raw, Iterable) and not isinstance(raw, (str, bytes)) else [raw]
        if not values:
            raise ParameterError(f"grid axis {name!r} has no values", fix=f"give at least one value for {name}")
        numbers = []
        for v in values:
            try:
                numbers.append(float(v))
            except (TypeError, ValueError):
                raise ParameterError(
                    f"grid value of {name!r} is not a number", found=repr(v), fix=f"e.g. {name}=[{param.default:g}]"
                ) from None
        items.append(f"{param.name}=" + "|".join(repr(n) for n in numbers))
    return ",".join(items)


def check_fixed_not_searched(names: Iterable[str], fixed: Mapping[str, float]) -> None:
    """Refuse a parameter both fixed (``--params``) and searched (``--grid``): one would
    silently win over the other."""
    both = sorted(set(names) & set(fixed))
    if both:
        raise ParameterError(
            f"parameter(s) {', '.join(both)} given both in --params and in --grid",
            found=", ".join(f"{n}={fixed[n]:g}" for n in both),
            fix="search a parameter with --grid or fix it with --params, not both",
        )


def parse_grid(spec: StrategySpec, text: str | None, fixed: Mapping[str, float] | None = None) -> Grid:
    """Expand ``text`` into the constraint-satisfying combinations.

    Raises:
        ParameterError: malformed items, unknown names (with suggestions), values out of
            range, an empty grid (e.g. every row breaks ``fast < slow``) or too many rows.
    """
    base = dict(spec.defaults())
    base.update(fixed or {})
    axes: dict[str, np.ndarray] = {}
    for name, value in split_items(text or "", "--grid"):
        if name in axes:
            raise ParameterError(f"parameter {name!r} appears twice in --grid")
        axes[name] = parse_axis(spec, name, value)
    check_fixed_not_searched(axes, fixed or {})
    columns = [axes.get(p.name, np.array([base[p.name]])) for p in spec.params]
    total = int(np.prod([len(c) for c in columns], dtype=np.float64))
    if total > MAX_COMBINATIONS:
        raise ParameterError(
            "the grid is too large", found=f"{total:,} combinations", fix="use coarser steps or --method tpe"
        )
    values = np.array(list(itertools.product(*columns)), dtype=np.float64).reshape(total, len(columns))
    mask = spec.constraint_mask({p.name: values[:, i] for i, p in enumerate(spec.params)})
    kept = values[mask]
    if kept.shape[0] == 0:
        raise ParameterError(
            "the grid is empty after applying the strategy's constraints",
            found=f"{total} combinations, constraints {list(spec.constraints)}",
            fix="widen the ranges so that some combinations satisfy the constraints",
        )
    return Grid(spec.param_names, np.ascontiguousarray(kept), int(total - kept.shape[0]), axes)


def parse_fixed(spec: StrategySpec, params: str | Mapping[str, float] | None) -> dict[str, float]:
    """Validated values for parameters held fixed (constraints are checked per grid row)."""
    if not params:
        return {}
    items = list(params.items()) if isinstance(params, Mapping) else split_items(params, "--params")
    fixed: dict[str, float] = {}
    for name, value in items:
        param = spec.param(name)
        number = param.coerce(value)
        if not param.low <= number <= param.high:
            raise ParameterError(
                f"value of {name!r} outside its valid range [{param.low:g}, {param.high:g}]", found=number
            )
        fixed[name] = number
    return fixed


def with_interval_params(
    spec: StrategySpec, interval: Interval, given: Mapping[str, float], searched: Iterable[str] = ()
) -> dict[str, float]:
    """``given`` plus ``bars_per_year`` from the run's interval when the strategy has such a
    parameter and the user neither fixed nor searched it (``tsmom_vol`` on one-minute bars
    would otherwise annualise its volatility with 252 and its target would do nothing)."""
    out = dict(given)
    skip = set(searched)
    for name in INTERVAL_PARAMS:
        if name in spec.param_names and name not in out and name not in skip:
            out[name] = spec.param(name).coerce(interval.bars_per_year)
    return out


def grid_names(grid: str | None) -> list[str]:
    """Parameter names a grid text searches."""
    return [name for name, _ in split_items(grid or "", "--grid")]


def resolve_params(
    spec: StrategySpec, params: str | Mapping[str, float] | None, interval: Interval
) -> dict[str, float]:
    """Every parameter of one run: the given ones (validated), ``bars_per_year`` from
    ``interval`` unless given, defaults for the rest. Backtests and the live bridge both use
    it, so a strategy that annualises sees the same value in research and live."""
    return parse_params(spec, with_interval_params(spec, interval, parse_fixed(spec, params)))
