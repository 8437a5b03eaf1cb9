"""QuantStats tearsheet of a run's equity against its benchmark, quietly and safely.

QuantStats sets matplotlib's font to Arial on import (warning "findfont: Font family
'Arial' not found" on most Linux machines) and warns a lot under new pandas releases.
Here the import restores matplotlib's settings, the call runs with its warnings and
font-manager logging silenced, and any exception is returned to the caller, who records
it and carries on with the plotly page. The written page is patched to load nothing from
the network and to raise no JavaScript error (see :func:`_offline_and_quiet`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from quantlab.data.atomic import atomic_write

TEARSHEET = "tearsheet.html"
_FAVICON = re.compile(r"<link[^>]*rel=\"shortcut icon\"[^>]*>\s*", re.IGNORECASE)
_ONLOAD_SAVE = re.compile(r"(<body[^>]*?)\s+onload=\"save\(\)\"", re.IGNORECASE)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence warnings and matplotlib's font-manager logging; restore rcParams after."""
    import matplotlib

    loggers = [logging.getLogger(n) for n in ("matplotlib.font_manager", "matplotlib", "quantstats")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), matplotlib.rc_context():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def import_quantstats() -> Any:
    """``quantstats``, imported without leaving its Arial font setting behind."""
    with quiet():
        import quantstats

    return quantstats


def quantstats_version() -> str:
    try:
        from importlib.metadata import version

        return version("quantstats")
    except Exception:  # noqa: BLE001 - metadata missing: say so instead of failing
        return "unknown"


def strategy_returns(equity: pd.DataFrame, label: str) -> pd.DataFrame:
    """Per-bar returns of each equity column, tz-naive (as QuantStats expects), named
    ``"<label> <column>"`` so they never collide with the benchmark's name."""
    returns = equity.pct_change().iloc[1:].fillna(0.0)
    returns.index = returns.index.tz_convert(None) if returns.index.tz is not None else returns.index
    returns.columns = [f"{label} {c}" for c in returns.columns]
    return returns


def _offline_and_quiet(text: str) -> str:
    """Two fixes to QuantStats' template: drop the favicon it links on the web (the page
    must load nothing remote) and the ``<body onload="save()">`` handler, which calls a
    function the template never defines (a ReferenceError in every browser)."""
    return _ONLOAD_SAVE.sub(r"\1", _FAVICON.sub("", text))


def write_tearsheet(
    returns: pd.DataFrame,
    benchmark: pd.Series | None,
    path: Path,
    title: str,
    periods_per_year: int,
) -> None:
    """Write the QuantStats HTML tearsheet to ``path`` (via a temporary file).

    Raises:
        Exception: whatever QuantStats raises; the caller records it.
    """
    qs = import_quantstats()
    bench = None
    if benchmark is not None:
        bench = benchmark.copy()
        if bench.index.tz is not None:
            bench.index = bench.index.tz_convert(None)
        bench = bench.reindex(returns.index).fillna(0.0)
    data: pd.Series | pd.DataFrame = returns.iloc[:, 0] if returns.shape[1] == 1 else returns

    def write(tmp: Path) -> None:
        with quiet():
            qs.reports.html(
                data,
                benchmark=bench,
                output=str(tmp),
                title=title,
                periods_per_year=periods_per_year,
                strategy_title=str(returns.columns[0]) if returns.shape[1] == 1 else list(returns.columns),
                benchmark_title=None if bench is None else str(bench.name),
                figfmt="svg",
                match_dates=False,  # same dates as the page: QuantStats would start at the first trade
            )
        text = tmp.read_text(encoding="utf-8")
        if not text:
            raise RuntimeError("QuantStats returned without writing the tearsheet")
        tmp.write_text(_offline_and_quiet(text), encoding="utf-8")

    atomic_write(path, write)
