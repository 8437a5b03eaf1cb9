"""``quantlab optimize --exits`` (the sweep) and ``quantlab backtest --params`` (a single
backtest) give the same metrics for the same strategy and exit rules, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from quantlab.cli import cli
from quantlab.kernels.layout import METRIC_NAMES

PARAMS = ("fast", "slow", "sl_stop", "sl_trail", "max_hold", "entry_limit", "limit_expiry")


def _json(*args: str) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_optimize_with_exits_equals_single_backtests(tmp_path: Path) -> None:
    opt = _json(
        "optimize",
        "--strategy",
        "sma_cross",
        "--symbols",
        "SPY",
        "--grid",
        "fast=10|30,slow=60|120",
        "--exits",
        "sl_stop=0.03|0.08,sl_trail=0.05,max_hold=20|60,entry_limit=0|0.005,limit_expiry=2",
        "--top",
        "4",
        "--report",
        "none",
        "--reports",
        str(tmp_path),
    )
    assert len(opt["top"]) == 4
    for row in opt["top"]:
        params = ",".join(f"{k}={row[k]:g}" for k in PARAMS)
        one = _json(
            "backtest",
            "--strategy",
            "sma_cross",
            "--symbols",
            "SPY",
            "--params",
            params,
            "--report",
            "none",
            "--reports",
            str(tmp_path),
        )["metrics"][0]
        for m in METRIC_NAMES:
            a, b = row[f"vbt_{m}"], one[m]
            assert (a is None and b is None) or np.isclose(a, b, rtol=1e-9, atol=1e-12), (
                f"{params}: {m} optimize={a} backtest={b}"
            )
