"""Load and validate the market data a run needs, and split it in time.

Everything that runs a strategy starts here: symbols from the store (or frames given
directly, for notebooks), validated into float64 arrays before any kernel sees them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quantlab.basis import Split, check_returns, split_safe, total_return
from quantlab.engine.intervals import Interval, get_interval
from quantlab.engine.signals import PriceArrays, price_arrays
from quantlab.errors import DataError, ParameterError
from quantlab.runs import arrays_hash


@dataclass(frozen=True)
class MarketInputs:
    """Validated bars of every symbol of a run.

    ``returns_basis`` is ``"price"`` or ``"total"`` (see :mod:`quantlab.basis`); ``splits``
    lists, per symbol, the splits back-adjusted on request (``adjust=True``).
    """

    interval: Interval
    frames: dict[str, pd.DataFrame]
    prices: dict[str, PriceArrays]
    data_hash: str
    returns_basis: str = "price"
    splits: dict[str, list[Split]] = field(default_factory=dict)

    def basis_info(self) -> dict[str, object]:
        """What ``summary.json`` records about the basis (``returns_basis`` and adjusted splits)."""
        return {
            "returns_basis": self.returns_basis,
            "adjusted_splits": {s: [x.label() for x in v] for s, v in self.splits.items() if v},
        }

    @property
    def symbols(self) -> list[str]:
        return list(self.prices)


def parse_symbols(symbols: str | Sequence[str]) -> list[str]:
    """``"SPY, qqq"`` or ``["SPY", "QQQ"]`` -> ``["SPY", "QQQ"]`` (upper case, no duplicates)."""
    items = symbols.split(",") if isinstance(symbols, str) else list(symbols)
    out: list[str] = []
    for item in items:
        name = str(item).strip().upper()
        if name and name not in out:
            out.append(name)
    if not out:
        raise ParameterError("no symbols given", fix="pass e.g. --symbols SPY,QQQ")
    return out


def _clip(frame: pd.DataFrame, start: str | pd.Timestamp | None, end: str | pd.Timestamp | None) -> pd.DataFrame:
    """Bars in ``[start, end]`` with the store's semantics (a date-only ``end`` covers that day)."""
    if start is None and end is None:
        return frame
    from quantlab.data._schema import parse_bound

    asi8 = frame.index.asi8
    lo = parse_bound(start)
    hi = parse_bound(end, end=True)
    mask = np.ones(len(frame), dtype=bool)
    if lo is not None:
        mask &= asi8 >= lo
    if hi is not None:
        mask &= asi8 <= hi
    return frame.loc[mask]


def _ns_index(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` on a nanosecond index: fold, clip and split arithmetic reads ``asi8`` as ns.

    pandas 2 builds second-resolution indexes (``read_csv``, ``to_datetime`` of strings);
    their raw integers read as nanoseconds put every bar in January 1970.
    """
    idx = frame.index
    if not isinstance(idx, pd.DatetimeIndex) or idx.unit == "ns":
        return frame
    out = frame.copy(deep=False)
    out.index = idx.as_unit("ns")
    return out


def _check_bounds(start: str | pd.Timestamp | None, end: str | pd.Timestamp | None) -> None:
    """A start after the end is a typo, not a short history: say so before loading."""
    from quantlab.data._schema import parse_bound

    lo, hi = parse_bound(start), parse_bound(end, end=True)
    if lo is not None and hi is not None and lo > hi:
        raise ParameterError(
            f"--start {start} is after --end {end}",
            found=f"start {start}, end {end}",
            fix="swap them: --start is the first day, --end the last",
        )


def load_inputs(
    symbols: str | Sequence[str] | None = None,
    interval: str = "1d",
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    store: str | os.PathLike[str] | None = None,
    data: Mapping[str, pd.DataFrame] | None = None,
    *,
    adjust: bool = False,
    returns: str = "price",
) -> MarketInputs:
    """Bars of ``symbols`` from the store (or from ``data``), clipped to ``[start, end]``.

    A series stored as traded (``adjustment=raw``; for ``data`` frames,
    ``frame.attrs["adjustment"] == "raw"``) with splits is refused unless ``adjust``;
    ``returns="total"`` moves every symbol to the total-return basis (:mod:`quantlab.basis`).

    Raises:
        StoreError: the store or a symbol/interval is missing (from :mod:`quantlab.data`).
        DataError: NaN or non-positive prices, unsorted bars, nothing left after clipping,
            raw bars with splits, or no ``adj_close`` for ``returns="total"``.
    """
    iv = get_interval(interval)
    check_returns(returns)
    _check_bounds(start, end)
    frames: dict[str, pd.DataFrame] = {}
    adjustments: dict[str, str | None] = {}
    if data is not None:
        names = parse_symbols(symbols) if symbols is not None else list(data)
        lookup = {str(k).upper(): v for k, v in data.items()}
        for name in names:
            if name not in lookup:
                raise ParameterError(f"no data given for {name}", found=f"data for {sorted(lookup)}")
            frames[name] = _ns_index(lookup[name])
            adjustments[name] = lookup[name].attrs.get("adjustment")
    else:
        from quantlab import data as market_data

        if symbols is None:
            raise ParameterError("no symbols given", fix="pass e.g. --symbols SPY")
        names = parse_symbols(symbols)
        for name in names:
            frames[name] = market_data.load(name, interval=interval, store=store)
        stored = {(i.symbol, i.interval): i.adjustment for i in market_data.info(store)}
        adjustments = {name: stored.get((name, iv.name)) for name in names}
    prices: dict[str, PriceArrays] = {}
    splits: dict[str, list[Split]] = {}
    for name, frame in list(frames.items()):
        clipped = _clip(frame, start, end)
        if len(clipped) < 2:
            raise DataError(
                f"{name} has fewer than 2 bars between {start or 'the start'} and {end or 'the end'}",
                found=f"{len(clipped)} bars (stored {frame.index[0] if len(frame) else '-'} .. "
                f"{frame.index[-1] if len(frame) else '-'})",
                fix="widen --start/--end or fetch more data",
            )
        # Only splits inside the run's window matter; the basis is anchored on its last bar.
        clipped, splits[name] = split_safe(clipped, f"{name} {iv.name}", adjustments.get(name), adjust)
        if returns == "total":
            clipped = total_return(clipped, f"{name} {iv.name}")
        frames[name] = clipped
        prices[name] = price_arrays(clipped, name)
    return MarketInputs(iv, frames, prices, arrays_hash(frames), returns, splits)


def holdout_split(inputs: MarketInputs, holdout: float) -> dict[str, int]:
    """Bar index per symbol where the held-out tail begins (``len`` when ``holdout`` is 0).

    The split is one timestamp for all symbols: the first bar of the last ``holdout``
    share of the union of their timestamps.
    """
    if not 0 <= holdout < 1:
        raise ParameterError("holdout must be a fraction in [0, 1)", found=holdout, fix="e.g. --holdout 0.3")
    if holdout == 0:
        return {s: len(p) for s, p in inputs.prices.items()}
    union = np.unique(np.concatenate([p.index.asi8 for p in inputs.prices.values()]))
    cut_time = union[min(int(np.floor(len(union) * (1 - holdout))), len(union) - 1)]
    return {s: int(np.searchsorted(p.index.asi8, cut_time)) for s, p in inputs.prices.items()}
