"""Shared fixtures of the report tests: real runs on the bundled data, made once per session.

Imported by ``test_reports*.py`` and ``test_report_browser.py``; holds no tests itself.
Runs are created once (module-level cache) and copied into a test's own reports folder
whenever the test writes into them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

START = "2012-01-01"
_CACHE: dict[str, Path] = {}


def make_runs(base: Path) -> dict[str, Path]:
    """Backtest, grid optimize (with holdout), TPE optimize and walk-forward runs (small grids),
    saved without report pages (``report=False``) so each test builds what it checks."""
    if _CACHE:
        return dict(_CACHE)
    import quantlab

    base.mkdir(parents=True, exist_ok=True)
    bt = quantlab.backtest("sma_cross", "SPY,QQQ", "fast=20,slow=50", start=START, reports=base, report=False)
    grid = quantlab.optimize(
        "sma_cross",
        "SPY,QQQ",
        "fast=10:40:10,slow=50:200:50",
        holdout=0.3,
        top=3,
        start=START,
        reports=base,
        progress=False,
        report=False,
    )
    tpe = quantlab.optimize(
        "sma_cross",
        "SPY",
        "fast=5:50:1,slow=20:200:5",
        method="tpe",
        trials=12,
        holdout=0.25,
        top=3,
        start=START,
        reports=base,
        progress=False,
        storage=f"sqlite:///{base / 'optuna.db'}",
        report=False,
    )
    wf = quantlab.walkforward(
        "sma_cross",
        "SPY,QQQ",
        "fast=10:40:10,slow=50:200:50",
        train="3y",
        test="1y",
        start=START,
        reports=base,
        progress=False,
        report=False,
    )
    _CACHE.update(
        {"backtest": Path(bt.path), "optimize": Path(grid.path), "tpe": Path(tpe.path), "walkforward": Path(wf.path)}
    )
    return dict(_CACHE)


def copy_runs(runs: dict[str, Path], reports: Path) -> dict[str, Path]:
    """Copy the run folders into ``reports`` (a test's own folder) and return the copies."""
    reports.mkdir(parents=True, exist_ok=True)
    out = {}
    for kind, path in runs.items():
        target = reports / path.name
        if not target.exists():
            shutil.copytree(path, target)
        out[kind] = target
    return out


@pytest.fixture(scope="session")
def source_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The session's runs (do not write into them: use ``runs``)."""
    return make_runs(tmp_path_factory.getbasetemp() / "report-source-runs")


@pytest.fixture
def runs(source_runs: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """Copies of the session's runs in this test's reports folder ($QUANTLAB_REPORTS)."""
    return copy_runs(source_runs, tmp_path / "reports")
