"""A setting that cannot change a run's numbers is reported, not silently accepted.

``--borrow-rate`` is charged on short positions only; a run that cannot short (the CLI
never allows shorts; ``Sizing(allow_short=False)`` is the default) is never charged it.
The run says so: the printed note next to the numbers, ``summary.json`` under
``inert_settings``, and an :class:`~quantlab.engine.settings.InertSettingWarning` for
Python users.
"""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest
from click.testing import CliRunner

import quantlab
from quantlab.cli import cli
from quantlab.engine.settings import Costs, InertSettingWarning, SimConfig, Sizing, inert_settings

BACKTEST = (
    "backtest",
    "--strategy",
    "sma_cross",
    "--symbols",
    "SPY",
    "--params",
    "fast=20,slow=50",
    "--report",
    "none",
)


def test_only_a_borrow_rate_on_a_run_that_cannot_short_is_inert() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        notes = inert_settings(SimConfig(costs=Costs(borrow_rate=0.03)))
        assert inert_settings(SimConfig()) == {}
        assert inert_settings(SimConfig(costs=Costs(borrow_rate=0.03), sizing=Sizing(allow_short=True))) == {}
    assert list(notes) == ["borrow_rate"]
    assert "0.03" in notes["borrow_rate"] and "long-only" in notes["borrow_rate"]
    assert [w.category for w in caught] == [InertSettingWarning]


def test_the_cli_prints_the_note_and_the_summary_keeps_it() -> None:
    out = CliRunner().invoke(cli, [*BACKTEST, "--borrow-rate", "0.03"])
    assert out.exit_code == 0, out.output
    assert "warning (--borrow-rate): inert:" in out.output
    as_json = CliRunner().invoke(cli, [*BACKTEST, "--borrow-rate", "0.03", "--json"])
    summary = json.loads(as_json.stdout)["summary"]
    assert "long-only" in summary["inert_settings"]["borrow_rate"]
    plain = CliRunner().invoke(cli, [*BACKTEST, "--json"])
    assert "inert_settings" not in json.loads(plain.stdout)["summary"]  # nothing to say: no key


@pytest.mark.parametrize("command", ["optimize", "walkforward"])
def test_searches_carry_the_note_too(command: str) -> None:
    args = [command, "--strategy", "sma_cross", "--symbols", "SPY", "--grid", "fast=10:20:10,slow=50:100:50"]
    args += ["--train", "3y", "--test", "1y"] if command == "walkforward" else ["--holdout", "0.3"]
    out = CliRunner().invoke(cli, [*args, "--borrow-rate", "0.03", "--report", "none", "--json"])
    assert out.exit_code == 0, out.output
    assert "borrow_rate" in json.loads(out.stdout)["summary"]["inert_settings"]


def test_python_users_get_a_warning(daily: dict[str, pd.DataFrame]) -> None:
    data = {"SPY": daily["SPY"].iloc[-600:]}
    with pytest.warns(InertSettingWarning, match="borrow"):
        bt = quantlab.backtest(
            "sma_cross", "SPY", "fast=20,slow=50", data=data, costs={"borrow_rate": 0.03}, save=False
        )
    assert "borrow_rate" in bt.summary["inert_settings"]
