"""The strategy contract: one causal Numba kernel plus its parameter space (data, not logic).

A strategy module in ``research/`` defines ``SPEC = StrategySpec(...)``. The kernel's
arguments are the price inputs it reads (named ``open``, ``high``, ``low``, ``close`` or
``volume``, float64 arrays of equal length) followed by its parameters in the order of
``params``; it returns a float64 *target* array of the same length: the desired exposure
after bar ``i``'s close (1 = fully invested per the sizing rule, 0 = flat, negative =
short if allowed, NaN = no opinion yet, i.e. keep the current position). The value at
bar ``i`` may depend only on bars ``0..i``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantlab.engine import expr
from quantlab.errors import ParameterError, StrategyError

PRICE_FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Param:
    """One strategy parameter: its type, default, search range and optuna distribution.

    Attributes:
        name: argument name in the kernel.
        kind: ``"int"`` or ``"float"``.
        default: value used when the user does not give one.
        low, high: inclusive search range (grid default and optuna bounds).
        step: default grid step (ints default to 1; floats without a step get 10 points).
        log: sample on a log scale in optuna.
        doc: one line for ``quantlab strategies``.
    """

    name: str
    kind: str
    default: float
    low: float
    high: float
    step: float | None = None
    log: bool = False
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("int", "float"):
            raise StrategyError(f"parameter {self.name!r} has kind {self.kind!r}", fix="use 'int' or 'float'")
        if not self.low <= self.default <= self.high:
            raise StrategyError(
                f"parameter {self.name!r}: default outside [low, high]",
                found=f"default={self.default}, low={self.low}, high={self.high}",
            )

    def coerce(self, value: Any) -> float:
        """Validate one value (a whole number for ints, within ``[low, high]``) and return it as float."""
        number = self.convert(value)
        if not self.low <= number <= self.high:
            raise ParameterError(
                f"parameter {self.name!r} outside its declared range [{_fmt(self.low)}, {_fmt(self.high)}]",
                found=value,
                fix=f"use a value from {_fmt(self.low)} to {_fmt(self.high)}, e.g. {self.name}={_fmt(self.default)}",
            )
        return number

    def convert(self, value: Any) -> float:
        """Check one value's type (finite; a whole number for ints), not its range."""
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ParameterError(
                f"parameter {self.name!r} must be a number", found=repr(value), fix=f"e.g. {self.name}={self.default:g}"
            ) from None
        if not math.isfinite(number):
            raise ParameterError(f"parameter {self.name!r} must be finite", found=value)
        if self.kind == "int" and number != round(number):
            raise ParameterError(
                f"parameter {self.name!r} is an integer", found=value, fix=f"use a whole number such as {round(number)}"
            )
        return number

    def grid_values(self) -> np.ndarray:
        """Default grid over ``[low, high]``."""
        if self.kind == "int":
            step = self.step or 1.0
            return np.arange(self.low, self.high + 0.5 * step, step)
        if self.step:
            return np.round(np.arange(self.low, self.high + 0.5 * self.step, self.step), 12)
        return np.linspace(self.low, self.high, 10)


@dataclass(frozen=True)
class Indicator:
    """A line drawn with the price on the report's price chart (optional; charts only).

    Attributes:
        label: legend text; ``{name}`` is replaced by the parameter's value, e.g. ``"SMA {fast}"``.
        compute: ``compute(inputs, params) -> float64 array`` as long as the bars, where
            ``inputs`` maps the spec's input names to float64 arrays and ``params`` holds the
            resolved parameters. Build it from the kernel helpers (``quantlab.kernels.rolling``)
            the kernel itself uses, so the chart shows what the strategy saw; the trading rule
            stays in the kernel.
        panel: ``"price"`` (over the price) or ``"lower"`` (its own axis below, e.g. an RSI).
    """

    label: str
    compute: Callable[[Mapping[str, np.ndarray], Mapping[str, float]], np.ndarray]
    panel: str = "price"

    def __post_init__(self) -> None:
        if self.panel not in ("price", "lower"):
            raise StrategyError(f"indicator {self.label!r} has panel {self.panel!r}", fix="use 'price' or 'lower'")
        if not callable(self.compute):
            raise StrategyError(f"indicator {self.label!r}: compute is not callable", found=type(self.compute).__name__)

    def name(self, params: Mapping[str, float]) -> str:
        """The label with parameter values filled in (``SMA 20``)."""
        try:
            return self.label.format(**{k: _fmt(v) for k, v in params.items()})
        except (KeyError, IndexError, ValueError):
            return self.label


@dataclass(frozen=True)
class StrategySpec:
    """A strategy: kernel, inputs, parameters, constraints and lookback.

    Attributes:
        name: registry name (``quantlab optimize --strategy NAME``).
        kernel: the ``@njit(cache=True)`` function.
        inputs: price fields the kernel reads, in argument order.
        params: parameters, in argument order after the inputs.
        constraints: expressions over parameter names that must hold, e.g. ``"fast < slow"``.
        lookback: expression over parameter names: bars needed before the first signal.
        doc: two or three lines describing the rule.
        indicators: optional :class:`Indicator` lines for the price chart of the reports.
        n_kernel_params: how many of ``params`` are kernel arguments (None: all); the rest
            are engine exit rules merged in by :func:`quantlab.exits.with_exits`.
    """

    name: str
    kernel: Any
    inputs: tuple[str, ...]
    params: tuple[Param, ...]
    lookback: str
    doc: str
    constraints: tuple[str, ...] = ()
    indicators: tuple[Indicator, ...] = ()
    n_kernel_params: int | None = None
    _trees: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        bad = [f for f in self.inputs if f not in PRICE_FIELDS]
        if bad or not self.inputs:
            raise StrategyError(
                f"strategy {self.name!r} declares unknown inputs", found=bad or "none", fix=f"use {PRICE_FIELDS}"
            )
        py_func = getattr(self.kernel, "py_func", None)
        if py_func is None:
            raise StrategyError(
                f"strategy {self.name!r}: kernel is not a numba function",
                found=type(self.kernel).__name__,
                fix="decorate it with @njit(cache=True)",
            )
        arg_names = list(inspect.signature(py_func).parameters)
        expected = list(self.inputs) + [p.name for p in self.kernel_params]
        if arg_names != expected:
            raise StrategyError(
                f"strategy {self.name!r}: kernel arguments do not match inputs + params",
                found=f"kernel({', '.join(arg_names)})",
                fix=f"define kernel({', '.join(expected)}) or fix SPEC.inputs/params",
            )
        names = frozenset(self.param_names)
        self._trees["lookback"] = expr.parse(self.lookback, names, "lookback")
        for text in self.constraints:
            self._trees[text] = expr.parse(text, names, "constraint")

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def kernel_params(self) -> tuple[Param, ...]:
        """The parameters the kernel takes (``params`` less merged exit rules)."""
        return self.params if self.n_kernel_params is None else self.params[: self.n_kernel_params]

    @property
    def exit_params(self) -> tuple[Param, ...]:
        """Exit rules merged into this strategy's space (empty unless requested)."""
        return () if self.n_kernel_params is None else self.params[self.n_kernel_params :]

    @property
    def kernel_name(self) -> str:
        return str(self.kernel.py_func.__name__)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ParameterError(
            f"strategy {self.name!r} has no parameter {name!r}",
            fix=_suggest(name, self.param_names),
        )

    def defaults(self) -> dict[str, float]:
        return {p.name: float(p.default) for p in self.params}

    def resolve(self, params: Mapping[str, Any] | None) -> dict[str, float]:
        """Fill defaults, reject unknown names, coerce types, check constraints."""
        given = dict(params or {})
        for name in given:
            if name not in self.param_names:
                raise ParameterError(
                    f"strategy {self.name!r} has no parameter {name!r}", fix=_suggest(name, self.param_names)
                )
        resolved = {p.name: p.coerce(given.get(p.name, p.default)) for p in self.params}
        for text in self.constraints:
            if not bool(expr.evaluate(self._trees[text], resolved)):
                shown = ", ".join(f"{k}={_fmt(v)}" for k, v in resolved.items())
                raise ParameterError(f"parameters violate the constraint {text!r}", found=shown)
        return resolved

    def constraint_mask(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Boolean mask of rows (arrays per parameter) that satisfy every constraint."""
        n = len(next(iter(columns.values()))) if columns else 0
        mask = np.ones(n, dtype=bool)
        for text in self.constraints:
            mask &= np.asarray(expr.evaluate(self._trees[text], columns), dtype=bool)
        return mask

    def lookback_bars(self, params: Mapping[str, float]) -> int:
        """Bars of history the kernel needs before its first signal."""
        return int(np.max(expr.evaluate(self._trees["lookback"], params)))

    def kernel_args(self, params: Mapping[str, float]) -> tuple[Any, ...]:
        """Parameters converted to the kernel's scalar types (int64 / float64)."""
        return tuple(
            np.int64(round(params[p.name])) if p.kind == "int" else np.float64(params[p.name])
            for p in self.kernel_params
        )


def _fmt(value: float) -> str:
    return f"{int(value)}" if float(value).is_integer() else f"{value:g}"


def _suggest(name: str, choices: tuple[str, ...] | list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=3)
    if close:
        return f"did you mean {', '.join(close)}? Known: {', '.join(choices)}"
    return f"known: {', '.join(choices)}"
