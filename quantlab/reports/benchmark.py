"""The benchmark a run is compared with: a symbol from the local store, never the network.

The benchmark is on the run's returns basis (``summary["returns_basis"]``, see
docs/research.md), so a strategy and its benchmark either both collect dividends or both
leave them out: ``total`` uses the benchmark's ``adj_close`` (dividends reinvested; its
``close`` when the store holds no adjusted close), ``price`` its ``close``. Runs saved
before the basis was recorded keep the old comparison, ``adj_close``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_BENCHMARK = "SPY"


@dataclass(frozen=True)
class Benchmark:
    """Per-bar returns of ``symbol`` on the run's index (first bar 0.0)."""

    symbol: str
    field: str
    returns: pd.Series

    def equity(self, start_value: float) -> pd.Series:
        """Value of ``start_value`` invested in the benchmark at the first bar."""
        return start_value * (1.0 + self.returns).cumprod()


def load_benchmark(
    index: pd.DatetimeIndex,
    symbol: str = DEFAULT_BENCHMARK,
    interval: str = "1d",
    store: str | os.PathLike[str] | None = None,
    basis: str = "total",
) -> Benchmark:
    """Benchmark returns aligned to ``index`` (last known price carried forward).

    Raises:
        QuantlabError: the store or the symbol/interval is missing (from quantlab.data).
        ValueError: the benchmark shares no bars with ``index``.
    """
    from quantlab import data

    frame = data.load(symbol, interval=interval, store=store)
    has_adjusted = "adj_close" in frame.columns and frame["adj_close"].notna().all()
    field = "adj_close" if basis == "total" and has_adjusted else "close"
    price = frame[field]
    aligned = price.reindex(price.index.union(index)).ffill().reindex(index)
    if aligned.notna().sum() < 2:
        raise ValueError(f"{symbol} has no bars between {index[0]} and {index[-1]}")
    returns = aligned.pct_change().replace([np.inf, -np.inf], np.nan).fillna(0.0)
    returns.name = symbol
    return Benchmark(symbol, field, returns)
