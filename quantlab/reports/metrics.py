"""Metrics of an equity curve, computed the same way for every run kind.

Used where runs must be put side by side (``quantlab compare``, the report header):
backtest, optimize and walk-forward runs all save ``equity.csv``, so metrics taken from
it are comparable. Conventions follow quantlab's (and vectorbt's): simple bar returns
starting from the initial cash, risk-free rate 0, standard deviation with ddof 1,
annualised with the interval's bars per year.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EQUITY_METRICS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "calmar", "volatility")
LOWER_IS_BETTER = frozenset({"volatility"})


def bars_per_year(interval: str) -> float:
    """Bars per year of ``interval`` (252 for daily); 252 when the interval is unknown."""
    from quantlab.engine.intervals import get_interval
    from quantlab.errors import QuantlabError

    try:
        return get_interval(interval).bars_per_year
    except QuantlabError:
        return 252.0


def equity_metrics(equity: pd.Series, per_year: float = 252.0, init_cash: float | None = None) -> dict[str, float]:
    """Return, risk and drawdown figures of one value path.

    Args:
        equity: portfolio value per bar.
        per_year: bars per year for annualisation.
        init_cash: value before the first bar (default: the first value).
    """
    values = equity.dropna().to_numpy(dtype=np.float64)
    out = dict.fromkeys(EQUITY_METRICS, float("nan"))
    if values.size < 2:
        return out
    start = float(init_cash) if init_cash else float(values[0])
    prev = np.concatenate(([start], values[:-1]))
    rets = values / prev - 1.0
    total = values[-1] / start - 1.0
    years = rets.size / per_year
    out["total_return"] = float(total)
    out["cagr"] = float((1.0 + total) ** (1.0 / years) - 1.0) if total > -1.0 and years > 0 else float("nan")
    std = float(np.std(rets, ddof=1))
    mean = float(np.mean(rets))
    if std > 0:
        out["sharpe"] = mean / std * np.sqrt(per_year)
        out["volatility"] = std * np.sqrt(per_year)
    else:
        out["volatility"] = 0.0
    downside = float(np.sqrt(np.mean(np.minimum(rets, 0.0) ** 2)))
    if downside > 0:
        out["sortino"] = mean / downside * np.sqrt(per_year)
    path = np.concatenate(([start], values))
    mdd = float(np.min(path / np.maximum.accumulate(path) - 1.0))
    out["max_drawdown"] = mdd
    if mdd < 0 and np.isfinite(out["cagr"]):
        out["calmar"] = out["cagr"] / abs(mdd)
    return {k: float(v) for k, v in out.items()}


def metrics_table(equity: pd.DataFrame, per_year: float = 252.0, init_cash: float | None = None) -> pd.DataFrame:
    """:func:`equity_metrics` for every column, one row per column."""
    rows = {str(c): equity_metrics(equity[c], per_year, init_cash) for c in equity.columns}
    return pd.DataFrame.from_dict(rows, orient="index")[list(EQUITY_METRICS)]
