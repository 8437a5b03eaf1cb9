"""Issue 10 follow-up: TPE proposes the same parameter set again and again in a small space.
Each set is evaluated, listed and counted once (the first trial that proposed it): in
results, the ranking, top.csv (and so the page's Top N) and in DSR's N; the summary and the
CLI say how many trials repeated a set."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

import quantlab
from quantlab.cli import cli

SMALL = dict(method="tpe", trials=12, seed=0, grid="fast=10|20,slow=50|100", start="2012-01-01", top=4)


def test_each_parameter_set_is_listed_and_counted_once(tmp_path: Path) -> None:
    result = quantlab.optimize(
        "sma_cross",
        "SPY",
        reports=tmp_path,
        report="charts",  # type: ignore[arg-type]
        storage=f"sqlite:///{tmp_path / 's.db'}",
        **SMALL,
    )
    study = result.summary["study"]
    assert study["trials"] == 12 and study["repeated_trials"] == 8  # 12 trials, 4 distinct sets
    assert len(study["set_trial_numbers"]) == 4 and study["set_trial_numbers"] == sorted(study["set_trial_numbers"])
    for table in (result.results, result.ranking):
        assert not table.duplicated(["symbol", "fast", "slow"] if "symbol" in table else ["fast", "slow"]).any()
    top = pd.read_csv(Path(result.path) / "top.csv")
    assert len(top) == 4 and not top.duplicated(["fast", "slow"]).any()
    assert top["rank"].tolist() == [1, 2, 3, 4]
    overfit = json.loads((Path(result.path) / "overfit.json").read_text())
    assert overfit["SPY"]["n_trials"] == 4 and overfit["SPY"]["n_never_traded"] == 0  # N: distinct sets
    page = "".join(p.read_text() for p in Path(result.path).glob("*.html"))
    assert "Top 4 (replayed by vectorbt)" in page
    assert "8 of 12 trials repeated a parameter set already tried" in page


def test_cli_says_how_many_trials_repeated_a_set(tmp_path: Path) -> None:
    args = [
        "optimize",
        "-s",
        "sma_cross",
        "--symbols",
        "SPY",
        "--method",
        "tpe",
        "--trials",
        "12",
        "--seed",
        "0",
        "--grid",
        "fast=10|20,slow=50|100",
        "--top",
        "4",
        "--start",
        "2012-01-01",
        "--reports",
        str(tmp_path),
        "--report",
        "none",
    ]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, out.output
    assert "4 combinations" in out.output
    assert "(8 of 12 trials repeated a parameter set already tried; each set is listed once)" in out.output
