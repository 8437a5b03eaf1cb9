"""Aggregate per-symbol results per combination, apply constraints, rank, and flag NaNs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlab.kernels.layout import METRIC_NAMES
from quantlab.optimizer.filters import LOWER_IS_BETTER, constraint_mask


def status_column(results: pd.DataFrame) -> pd.Series:
    """``ok``, ``no_trades`` or ``nan_metric`` per result row (reported, never dropped)."""
    status = np.where(results["n_orders"].to_numpy() == 0, "no_trades", "ok")
    metric_nan = results[["total_return", "cagr", "max_drawdown"]].isna().any(axis=1).to_numpy()
    ratio_nan = results[["sharpe", "sortino"]].isna().any(axis=1).to_numpy()
    status = np.where((status == "ok") & (metric_nan | ratio_nan), "nan_metric", status)
    return pd.Series(status, index=results.index, name="status")


def rank(
    results: pd.DataFrame, param_names: tuple[str, ...], metric: str, constraints: tuple[str, ...] = ()
) -> pd.DataFrame:
    """One row per combination: params, mean of each metric over symbols, pass flag, rank.

    A combination passes when it trades (fills at least one order) on every symbol, every
    symbol satisfies every constraint and the ranking metric is finite for every symbol.
    A combination that never trades is not a candidate: its zero drawdown, volatility,
    fees and order count would otherwise win every lower-is-better ranking, and a symbol
    it skips would flatter the mean. Rows are sorted best first (ties by combo id),
    failing rows last with ``rank`` NaN.
    """
    results = results.assign(_pass=constraint_mask(results, constraints))
    grouped = results.groupby("combo", sort=True)
    table = grouped[list(param_names)].first()
    table[list(METRIC_NAMES)] = grouped[list(METRIC_NAMES)].mean()
    finite = grouped[metric].apply(lambda s: bool(np.isfinite(s.to_numpy()).all()))
    traded = grouped["n_orders"].apply(lambda s: bool((s.to_numpy() > 0).all()))
    table["passes"] = grouped["_pass"].all() & finite & traded
    table["traded"] = traded
    table["n_symbols"] = grouped.size()
    ascending = metric in LOWER_IS_BETTER
    key = table[metric].where(table["passes"])
    order = np.lexsort((table.index.to_numpy(), (key if ascending else -key).fillna(np.inf).to_numpy()))
    table = table.iloc[order]
    table["rank"] = np.where(table["passes"], np.cumsum(table["passes"].to_numpy()), np.nan)
    return table.reset_index()
