"""One headline per run, labelled with the window it covers and its return basis.

A run produces numbers over several windows: an optimisation ranks on the in-sample
window, checks the winner on the held-out tail and saves its equity over the full history;
a walk-forward reports the stitched out-of-sample account. Printing them unlabelled made
one run show 162% on the command line and 289% on its page. Every number quantlab shows
now carries one of the :data:`WINDOWS` labels and the return basis (``price``: the close,
dividends excluded; ``total``: dividends included), both taken from ``summary.json`` by the
pure functions here, which the CLI, ``summary.json`` (``headline``) and the pages share.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

IN_SAMPLE, HELD_OUT, FULL, OOS = "in-sample", "held out", "full history", "out-of-sample stitched"
WINDOWS = (IN_SAMPLE, HELD_OUT, FULL, OOS)
HEADLINE_METRICS = ("total_return", "cagr", "sharpe", "max_drawdown", "n_trades")
_BASIS_TEXT = {"price": "price returns (dividends excluded)", "total": "total returns (dividends included)"}


def returns_basis(summary: Mapping[str, Any]) -> str:
    """``price`` or ``total``; runs saved before the basis was recorded are ``price``."""
    basis = summary.get("returns_basis") or (summary.get("config") or {}).get("returns_basis") or "price"
    return str(basis)


def basis_text(basis: str) -> str:
    return _BASIS_TEXT.get(basis, f"{basis} returns")


def _mean(values: list[Any]) -> float | None:
    arr = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else None


def _day(text: Any) -> str:
    return str(text)[:10] if text else "?"


def _span(values: list[Any], pick: Any) -> str:
    days = sorted(_day(v) for v in values if v)
    return pick(days) if days else "?"


def equity_window(summary: Mapping[str, Any]) -> str:
    """The window ``equity.csv`` covers (what the equity chart, Performance table and
    tearsheet show)."""
    return OOS if summary.get("kind") == "walkforward" else FULL


def windows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every window a run reports on, headline first: label, first and last day, the mean
    metrics over symbols and what they are (``source``)."""
    kind = summary.get("kind")
    period = summary.get("period") or {}
    first = _span([p.get("first") for p in period.values()], min)
    last = _span([p.get("last") for p in period.values()], max)
    out: list[dict[str, Any]] = []
    if kind == "backtest":
        per = list((summary.get("metrics") or {}).values())
        out.append(
            {
                "window": FULL,
                "first": first,
                "last": last,
                "source": "metrics, mean over symbols",
                "metrics": {m: _mean([row.get(m) for row in per]) for m in HEADLINE_METRICS},
            }
        )
    elif kind == "optimize":
        best = (summary.get("best") or {}).get("metrics_mean") or {}
        is_end = _span([p.get("in_sample_end") for p in period.values()], max)
        out.append(
            {
                "window": IN_SAMPLE,
                "first": first,
                "last": is_end,
                "source": "the winner's in-sample metrics (what it was ranked on), mean over symbols",
                "metrics": {m: best.get(m) for m in HEADLINE_METRICS},
            }
        )
        holdout = summary.get("holdout") or []
        if holdout:
            out.append(
                {
                    "window": HELD_OUT,
                    "after": is_end,
                    "last": last,
                    "source": "the winner on the held-out tail (fresh account), mean over symbols",
                    "metrics": {m: _mean([r.get(f"holdout_{m}") for r in holdout]) for m in HEADLINE_METRICS},
                }
            )
    elif kind == "walkforward":
        wf = summary.get("walkforward") or {}
        folds = summary.get("folds") or []
        per = list((wf.get("oos_metrics") or {}).values())
        # test windows are half-open calendar spans: the last one may end after the last bar
        ends = [str((pd.Timestamp(f["test_end"]) - pd.Timedelta(days=1)).date()) for f in folds if f.get("test_end")]
        if period:
            ends = [min(e, last) for e in ends]
        out.append(
            {
                "window": OOS,
                "first": _span([f.get("test_start") for f in folds], min),
                "last": _span(ends, max),
                "source": "one account across the test windows, mean over symbols",
                "metrics": {m: _mean([row.get(m) for row in per]) for m in HEADLINE_METRICS},
            }
        )
    return out


def run_headline(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The run's headline (its first window) plus its basis and every window, for
    ``summary.json``."""
    all_windows = windows(summary)
    basis = returns_basis(summary)
    head: dict[str, Any] = dict(all_windows[0]) if all_windows else {"window": "", "metrics": {}}
    head.update({"returns_basis": basis, "equity_window": equity_window(summary), "windows": all_windows})
    return head


def label(window: Mapping[str, Any], basis: str) -> str:
    """``in-sample 2012-01-03..2019-06-28, price returns`` (held out: ``after 2019-06-28 to ...``)."""
    if window.get("after"):
        return f"{window['window']} after {window['after']} to {window.get('last', '?')}, {basis} returns"
    return f"{window['window']} {window.get('first', '?')}..{window.get('last', '?')}, {basis} returns"


def sentence(window: Mapping[str, Any], basis: str) -> str:
    """One line: the window label, then the metrics in plain digits."""
    m = window.get("metrics") or {}

    def pct(key: str) -> str:
        value = m.get(key)
        return "n/a" if value is None else f"{value * 100:,.2f}%"

    sharpe = m.get("sharpe")
    trades = m.get("n_trades")
    parts = [
        f"total return {pct('total_return')}",
        f"CAGR {pct('cagr')}",
        f"Sharpe {'n/a' if sharpe is None else f'{sharpe:.3f}'}",
        f"max drawdown {pct('max_drawdown')}",
    ]
    if trades is not None:
        parts.append(f"trades {trades:,.1f}".rstrip("0").rstrip("."))
    return f"{label(window, basis)}: " + ", ".join(parts)
