"""Input validation shared by the overfitting statistics (runs before any kernel)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from quantlab._typing import Array1d, Array2d
from quantlab.errors import ParameterError


def finite_float(name: str, value: Any) -> float:
    """Return ``value`` as a finite float or raise :class:`ParameterError`."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ParameterError(
            f"{name} must be a number", found=repr(value), fix=f"pass a finite float for {name}"
        ) from None
    if not math.isfinite(out):
        raise ParameterError(f"{name} must be finite", found=out, fix=f"pass a finite float for {name}")
    return out


def count(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` as an int ``>= minimum`` (integer-valued floats are accepted)."""
    if isinstance(value, bool):
        raise ParameterError(f"{name} must be an integer", found=repr(value), fix=f"pass an integer >= {minimum}")
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        raise ParameterError(
            f"{name} must be an integer", found=repr(value), fix=f"pass an integer >= {minimum}"
        ) from None
    if not math.isfinite(as_float) or as_float != int(as_float):
        raise ParameterError(f"{name} must be an integer", found=value, fix=f"pass an integer >= {minimum}")
    out = int(as_float)
    if out < minimum:
        raise ParameterError(f"{name} must be at least {minimum}", found=out, fix=f"pass {name} >= {minimum}")
    return out


def raw_kurtosis(kurtosis: float | None, excess_kurtosis: float | None, skew: float) -> float:
    """Resolve the raw (Pearson, normal = 3) kurtosis from either spelling and check it.

    Raw kurtosis always satisfies ``kurtosis >= skew**2 + 1`` (Pearson's inequality); a
    value below that bound is almost always an excess kurtosis passed as raw.
    """
    if kurtosis is not None and excess_kurtosis is not None:
        raise ParameterError(
            "pass either kurtosis (raw, normal = 3) or excess_kurtosis (normal = 0), not both",
            found=f"kurtosis={kurtosis}, excess_kurtosis={excess_kurtosis}",
            fix="drop one of the two arguments",
        )
    if excess_kurtosis is not None:
        kurt = finite_float("excess_kurtosis", excess_kurtosis) + 3.0
    elif kurtosis is not None:
        kurt = finite_float("kurtosis", kurtosis)
    else:
        kurt = 3.0
    if kurt < skew * skew + 1.0 - 1e-12:
        raise ParameterError(
            "kurtosis must be the raw (non-excess) kurtosis, which is at least skew**2 + 1 "
            f"(here {skew * skew + 1.0:.4g})",
            found=kurt,
            fix="if this is an excess kurtosis (normal = 0) pass it as excess_kurtosis= or add 3",
        )
    return kurt


def returns_1d(name: str, values: Any, min_obs: int = 3) -> Array1d:
    """A finite float64 return series with at least ``min_obs`` observations."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(
            f"{name} must be numeric",
            found=type(values).__name__,
            fix="pass a float array or Series",
        ) from None
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ParameterError(
            f"{name} must be one return series (1-D)",
            found=f"shape {arr.shape}",
            fix="pass a single column",
        )
    if arr.shape[0] < min_obs:
        raise ParameterError(
            f"{name} needs at least {min_obs} observations",
            found=arr.shape[0],
            fix="pass a longer return series",
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ParameterError(
            f"{name} contains NaN or infinite values",
            found=f"{int(bad.sum())} bad values, first at position {int(np.flatnonzero(bad)[0])}",
            fix="drop them or fill flat bars with 0 (e.g. returns.fillna(0.0))",
        )
    return arr


def returns_2d(name: str, values: Any, min_obs: int = 2, min_cols: int = 2) -> Array2d:
    """A finite C-contiguous float64 ``(T, N)`` return matrix."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(
            f"{name} must be numeric",
            found=type(values).__name__,
            fix="pass a float array or DataFrame",
        ) from None
    if arr.ndim != 2:
        raise ParameterError(
            f"{name} must be a 2-D (observations x strategies) matrix",
            found=f"shape {arr.shape}",
            fix="stack one column per strategy configuration",
        )
    if arr.shape[1] < min_cols:
        raise ParameterError(
            f"{name} needs at least {min_cols} strategy columns",
            found=f"shape {arr.shape}",
            fix="pass one column per configuration tried (rows are observations)",
        )
    if arr.shape[0] < min_obs:
        raise ParameterError(
            f"{name} needs at least {min_obs} rows (observations)",
            found=f"shape {arr.shape}",
            fix="pass a longer history",
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise ParameterError(
            f"{name} contains NaN or infinite values",
            found=f"{int(bad.sum())} bad values, first at row {int(rows[0])}, column {int(cols[0])}",
            fix="fill flat bars with 0 (returns.fillna(0.0)) or drop the affected rows",
        )
    return np.ascontiguousarray(arr)
