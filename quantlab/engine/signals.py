"""Prepare price arrays and evaluate a strategy kernel on them.

This is the single entry to a strategy's logic from Python: the backtest, the sweep's
checks, walk-forward and the live bridge all call :func:`evaluate` (or the sweep's
generated wrapper around the same kernel).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantlab.engine.registry import get_strategy
from quantlab.engine.strategy import PRICE_FIELDS, StrategySpec
from quantlab.errors import DataError, StrategyError


@dataclass(frozen=True)
class PriceArrays:
    """Contiguous float64 OHLCV arrays of one symbol plus its timestamps."""

    symbol: str
    index: pd.DatetimeIndex
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.close.shape[0])

    def field(self, name: str) -> np.ndarray:
        array: np.ndarray = getattr(self, name)
        return array

    def slice(self, stop: int) -> PriceArrays:
        return PriceArrays(
            self.symbol, self.index[:stop], *(np.ascontiguousarray(self.field(f)[:stop]) for f in PRICE_FIELDS)
        )


def price_arrays(bars: pd.DataFrame, symbol: str = "?") -> PriceArrays:
    """Validate ``bars`` and return contiguous float64 arrays.

    Raises:
        DataError: missing columns, non-numeric data, NaN/inf or non-positive prices,
            unsorted or duplicate timestamps. The message names the column and first bad bar.
    """
    missing = [f for f in PRICE_FIELDS if f not in bars.columns]
    if missing:
        raise DataError(
            f"bars for {symbol} lack columns {missing}",
            found=f"columns {list(bars.columns)}",
            fix="pass a frame with open, high, low, close, volume (quantlab.data.load returns one)",
        )
    index = bars.index
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(f"bars for {symbol} need a DatetimeIndex", found=type(index).__name__)
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise DataError(
            f"timestamps of {symbol} are unsorted or repeated",
            fix="sort and de-duplicate first (quantlab data check reports where)",
        )
    arrays = {}
    for name in PRICE_FIELDS:
        try:
            values = np.ascontiguousarray(bars[name].to_numpy(dtype=np.float64))
        except (TypeError, ValueError):
            raise DataError(
                f"column {name!r} of {symbol} is not numeric", found=str(bars[name].dtype), fix="convert it to float"
            ) from None
        bad = ~np.isfinite(values)
        if name != "volume":
            bad |= values <= 0
        if bad.any():
            first = int(np.argmax(bad))
            raise DataError(
                f"column {name!r} of {symbol} has {int(bad.sum())} NaN, infinite or non-positive values",
                found=f"{values[first]!r} at {index[first]}",
                fix="clean the series (quantlab data check) or drop the bad bars before running",
            )
        arrays[name] = values
    return PriceArrays(symbol, index, **arrays)


def kernel_inputs(spec: StrategySpec, prices: PriceArrays) -> tuple[np.ndarray, ...]:
    return tuple(prices.field(f) for f in spec.inputs)


def kernel_failure(spec: StrategySpec, err: Exception) -> StrategyError:
    """A one-paragraph StrategyError for numba's compile errors in a strategy kernel."""
    first = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
    return StrategyError(
        f"the kernel of strategy {spec.name!r} ({spec.kernel_name} in {spec.kernel.py_func.__module__}) does not compile",
        found=first,
        fix="fix the kernel so numba can type it (float64 arrays and scalars in, a float64 array out); "
        "run it once with NUMBA_DISABLE_JIT=1 to debug it as plain Python",
    )


def evaluate_arrays(spec: StrategySpec, prices: PriceArrays, params: Mapping[str, float]) -> np.ndarray:
    """Run the kernel on validated arrays with resolved parameters; check its output."""
    from numba.core.errors import NumbaError

    try:
        target = spec.kernel(*kernel_inputs(spec, prices), *spec.kernel_args(params))
    except NumbaError as err:
        raise kernel_failure(spec, err) from None
    if not isinstance(target, np.ndarray) or target.shape != prices.close.shape or target.dtype != np.float64:
        raise StrategyError(
            f"kernel of {spec.name!r} must return a float64 array as long as its input",
            found=f"{type(target).__name__} {getattr(target, 'dtype', '')} {getattr(target, 'shape', '')}",
            fix="return np.full(n, np.nan) filled with target exposures",
        )
    return target


def evaluate(strategy: str | StrategySpec, bars: pd.DataFrame, params: Mapping[str, Any] | None = None) -> pd.Series:
    """Target exposure of ``strategy`` on ``bars`` as a Series aligned with ``bars``."""
    spec = get_strategy(strategy)
    resolved = spec.resolve(params)
    prices = price_arrays(bars)
    return pd.Series(evaluate_arrays(spec, prices, resolved), index=bars.index, name="target")
