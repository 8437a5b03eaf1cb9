"""`--json` on backtest, optimize and walkforward (one JSON document on stdout, nothing else)
and `quantlab.load_run(run_id)`, on the bundled data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import quantlab
from quantlab.cli import cli
from quantlab.errors import ReportError

START = "2012-01-01"


def _run(args: list[str]) -> dict:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # the whole of stdout is one document


def test_backtest_json_and_load_run(tmp_path: Path) -> None:
    doc = _run(
        [
            "backtest",
            "-s",
            "sma_cross",
            "--symbols",
            "SPY,QQQ",
            "-p",
            "fast=20,slow=50",
            "--start",
            START,
            "--reports",
            str(tmp_path),
            "--report",
            "none",
            "--json",
        ]
    )
    assert doc["summary"]["headline"]["window"] == "full history"
    assert doc["summary"]["headline"]["returns_basis"] == "price"
    assert [r["symbol"] for r in doc["metrics"]] == ["SPY", "QQQ"]
    run = quantlab.load_run(doc["run_id"], reports=tmp_path)
    assert run.kind == "backtest" and run.summary == doc["summary"] and run.returns_basis == "price"
    assert list(run.metrics["window"]) == ["full history", "full history"]
    spy = run.metrics.set_index("symbol").loc["SPY"]
    assert spy["total_return"] == pytest.approx(doc["metrics"][0]["total_return"], rel=1e-12)
    assert list(run.equity.columns) == ["SPY", "QQQ"] and len(run.equity) > 2000
    assert len(run.trades) == spy["n_trades"] + run.metrics.set_index("symbol").loc["QQQ", "n_trades"]
    assert {"Entry Timestamp", "Exit Timestamp", "PnL"} <= set(run.trades.columns)


def test_optimize_json_and_load_run(tmp_path: Path) -> None:
    doc = _run(
        [
            "optimize",
            "-s",
            "sma_cross",
            "--symbols",
            "SPY",
            "--grid",
            "fast=10:40:10,slow=50:200:50",
            "--holdout",
            "0.3",
            "--top",
            "3",
            "--start",
            START,
            "--reports",
            str(tmp_path),
            "--report",
            "none",
            "--json",
        ]
    )
    s = doc["summary"]
    assert s["kind"] == "optimize" and s["headline"]["window"] == "in-sample"
    assert s["verdict"]["overall"]["sentence"].split(":")[0] in (
        "likely overfit",
        "inconclusive",
        "no sign of overfitting",
    )
    assert len(doc["top"]) == 3 and doc["holdout"][0]["symbol"] == "SPY"
    run = quantlab.load_run(doc["run_id"], reports=tmp_path)
    assert list(run.metrics["window"]) == ["in-sample", "held out"]
    rows = run.metrics.set_index("window")
    assert rows.loc["in-sample", "total_return"] == pytest.approx(s["best"]["metrics_mean"]["total_return"], rel=1e-12)
    assert rows.loc["held out", "sharpe"] == pytest.approx(doc["holdout"][0]["holdout_sharpe"], rel=1e-12)
    assert run.equity.shape[1] == 1 and "top" in run.extra and "results" in run.extra


def test_walkforward_json_and_load_run(tmp_path: Path) -> None:
    doc = _run(
        [
            "walkforward",
            "-s",
            "sma_cross",
            "--symbols",
            "SPY",
            "--grid",
            "fast=10:40:10,slow=50:200:50",
            "--train",
            "3y",
            "--test",
            "1y",
            "--start",
            START,
            "--reports",
            str(tmp_path),
            "--report",
            "none",
            "--json",
        ]
    )
    assert doc["summary"]["headline"]["window"] == "out-of-sample stitched"
    assert len(doc["folds"]) == doc["summary"]["n_folds"]
    run = quantlab.load_run(doc["run_id"], reports=tmp_path)
    assert list(run.metrics["window"]) == ["out-of-sample stitched"]
    assert run.metrics.loc[0, "sharpe"] == pytest.approx(doc["oos_metrics"][0]["sharpe"], rel=1e-12)


def test_json_stdout_holds_nothing_else_in_a_real_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "quantlab",
            "backtest",
            "-s",
            "sma_cross",
            "--symbols",
            "SPY",
            "--start",
            START,
            "--reports",
            str(tmp_path),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=os.environ | {"QUANTLAB_REPORTS": str(tmp_path)},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert doc["report"]["pages"]["report"].endswith("report.html")


def test_load_run_of_an_unknown_id(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="unknown run id") as err:
        quantlab.load_run("backtest-nope", reports=tmp_path)
    assert "quantlab runs" in str(err.value)
