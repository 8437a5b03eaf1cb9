"""The benchmark a run is compared with: a symbol from the local store, never the network.

The default is SPY's ``adj_close`` (total return: dividends reinvested), because a
buy-and-hold investor collects the dividends; strategies trade the unadjusted close, so
the comparison is, if anything, tough on the strategy. ``close`` is used when the store
holds no adjusted close.
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
) -> Benchmark:
    """Benchmark returns aligned to ``index`` (last known price carried forward).

    Raises:
        QuantlabError: the store or the symbol/interval is missing (from quantlab.data).
        ValueError: the benchmark shares no bars with ``index``.
    """
    from quantlab import data

    frame = data.load(symbol, interval=interval, store=store)
    field = "adj_close" if "adj_close" in frame.columns and frame["adj_close"].notna().all() else "close"
    price = frame[field]
    aligned = price.reindex(price.index.union(index)).ffill().reindex(index)
    if aligned.notna().sum() < 2:
        raise ValueError(f"{symbol} has no bars between {index[0]} and {index[-1]}")
    returns = aligned.pct_change().replace([np.inf, -np.inf], np.nan).fillna(0.0)
    returns.name = symbol
    return Benchmark(symbol, field, returns)
