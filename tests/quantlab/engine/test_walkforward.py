"""Walk-forward: fold arithmetic, boundary positions, per-fold choice, stitching, bad input."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import quantlab
from quantlab.cli import cli
from quantlab.engine.registry import get_strategy
from quantlab.engine.settings import Costs, SimConfig
from quantlab.errors import ParameterError
from quantlab.inputs import load_inputs
from quantlab.optimizer.folds import make_folds
from quantlab.optimizer.walkforward import _stitch

GRID = "fast=5:60:5,slow=20:200:20"
BDAYS = pd.bdate_range("2010-01-01", "2016-12-30", tz="UTC")


def test_rolling_folds_tile_the_test_period() -> None:
    folds = make_folds(BDAYS, "2y", "6m", "5d")
    assert folds[0].train_start == BDAYS[0]
    assert folds[0].train_end == BDAYS[0] + pd.DateOffset(years=2)
    assert folds[0].test_start == folds[0].train_end + pd.DateOffset(days=5)
    for a, b in zip(folds, folds[1:], strict=False):
        assert b.test_start == a.test_end  # contiguous, no overlap
        assert b.train_end == b.test_start - pd.DateOffset(days=5)
        assert b.train_start == b.train_end - pd.DateOffset(years=2)
    assert folds[-1].partial and not folds[0].partial


def test_anchored_folds_expand_from_the_first_bar() -> None:
    folds = make_folds(BDAYS, "3y", "1y", anchored=True)
    assert all(f.train_start == BDAYS[0] for f in folds)
    assert [f.train_end.year for f in folds] == [2013, 2014, 2015, 2016]


@pytest.mark.parametrize(
    ("train", "test", "embargo", "message"),
    [
        ("10y", "6m", "0d", "too short for one walk-forward fold"),
        ("2y", "0m", "0d", "longer than zero"),
        ("2y", "1m", "45d", "embargo must be shorter than the test window"),
        ("two years", "6m", "0d", "cannot read the --train span"),
        ("1.5y", "6m", "0d", "must be whole"),
    ],
)
def test_bad_fold_settings(train: str, test: str, embargo: str, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        make_folds(BDAYS, train, test, embargo)


CONSTANT = textwrap.dedent(
    """
    import numpy as np
    from numba import njit
    from quantlab.engine.strategy import Param, StrategySpec

    @njit(cache=True)
    def constant_nb(close, level):
        return np.full(close.shape[0], level)

    SPEC = StrategySpec("constant", constant_nb, ("close",), (Param("level", "float", 1.0, 0.0, 1.0, step=0.5),),
                        "1", "Constant exposure `level` (a test fixture).\\nNot a strategy.")
    """
)


def test_positions_carry_across_fold_boundaries(tmp_path: Path) -> None:
    """Same exposure in the next fold: the position is kept (no order, no cost).
    Different exposure: resized at the first open of the new test window."""
    path = tmp_path / "constant.py"
    path.write_text(CONSTANT)
    spec = get_strategy(str(path))
    inputs = load_inputs("SPY", start="2015-01-01", end="2019-12-31")
    folds = make_folds(inputs.prices["SPY"].index, "1y", "1y")
    chosen = [{"level": 1.0}, {"level": 1.0}, {"level": 0.0}, {"level": 0.5}]
    assert len(folds) == 4
    sim = SimConfig(costs=Costs(slippage_bps=0))
    records, _, starts, _, diff, _ = _stitch(spec, inputs, sim, folds, chosen)
    record, first = records["SPY"], starts["SPY"]
    asi8 = inputs.prices["SPY"].index.asi8
    opens = {int(np.searchsorted(asi8, f.test_start.value)) - first: f.number for f in folds}
    orders = {int(i): float(s) for i, s in enumerate(record.size) if not np.isnan(s)}
    # Fold 0 buys on its first bar; fold 1 keeps the position (no order at its boundary);
    # fold 2 sells everything at its first open; fold 3 buys half exposure at its first open.
    assert sorted(orders) == sorted(k for k, f in opens.items() if f in (0, 2, 3))
    by_fold = {opens[k]: v for k, v in orders.items()}
    assert by_fold[0] > 0 and by_fold[2] == -by_fold[0] and 0 < by_fold[3] < by_fold[0]
    assert diff <= 1e-9


@pytest.fixture(scope="module")
def wf(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return quantlab.walkforward(
        "sma_cross",
        "SPY,QQQ",
        GRID,
        train="3y",
        test="1y",
        embargo="5d",
        reports=tmp_path_factory.mktemp("reports"),
        report=False,
    )


def test_each_fold_chooses_the_in_sample_best(wf) -> None:  # type: ignore[no-untyped-def]
    from quantlab.engine.params import parse_grid
    from quantlab.optimizer.evaluate import evaluate, tidy
    from quantlab.optimizer.ranking import rank
    from quantlab.optimizer.walkforward import _windows

    spec = wf.spec
    values = parse_grid(spec, GRID).values
    for fold in wf.fold_bounds[::4]:
        windows = _windows(wf.inputs, fold.train_start, fold.train_end)
        table = tidy(spec, values, evaluate(spec, wf.inputs, values, wf.sim, windows))
        # a combination ranks only if its metric is finite on every symbol
        means = table.groupby("combo")["sharpe"].agg(lambda v: v.mean(skipna=False))
        best = values[int(means.idxmax())]
        row = wf.folds[(wf.folds["fold"] == fold.number)].iloc[0]
        assert (row["fast"], row["slow"]) == tuple(best)
        assert row["is_sharpe"] == pytest.approx(
            table[(table["symbol"] == "SPY") & (table["combo"] == int(means.idxmax()))]["sharpe"].iloc[0]
        )
        assert rank(table, spec.param_names, "sharpe").iloc[0]["combo"] == int(means.idxmax())


def test_stitched_curve_covers_the_test_windows_and_matches_vectorbt(wf) -> None:  # type: ignore[no-untyped-def]
    first_test = wf.fold_bounds[0].test_start
    assert wf.equity.index[0] >= first_test and wf.equity.index[0] - first_test < pd.Timedelta(days=7)
    assert wf.summary["replay_check"]["ok"]
    pf = wf.portfolio("QQQ")
    assert float(pf.total_return()) == pytest.approx(wf.oos_metrics.loc["QQQ", "total_return"], rel=1e-12)


def test_efficiency_and_drift_are_computed_from_the_folds(wf) -> None:  # type: ignore[no-untyped-def]
    rows = wf.folds[wf.folds["symbol"] == "SPY"]
    eff = wf.efficiency["SPY"]
    assert eff["efficiency"] == pytest.approx(np.nanmean(rows["oos_sharpe"]) / np.nanmean(rows["is_sharpe"]))
    drift = wf.summary["walkforward"]["parameter_drift"]["fast"]
    assert drift["changes"] == int((np.diff(wf.drift["fast"]) != 0).sum())
    ov = wf.summary["walkforward"]["overfit"]["SPY"]
    assert 0 <= ov["pbo"] <= 1 and ov["folds_ranked"] >= 1
    assert rows["oos_rank"].dropna().between(0, 1).all()


def test_walkforward_run_is_saved(wf) -> None:  # type: ignore[no-untyped-def]
    path = Path(wf.path)
    for name in ("folds.csv", "drift.csv", "equity.csv", "trades.csv", "summary.json"):
        assert (path / name).is_file(), name
    summary = json.loads((path / "summary.json").read_text())
    assert summary["kind"] == "walkforward" and summary["n_folds"] == len(wf.fold_bounds)
    assert len(summary["config_hash"]) == 64 and len(summary["data_hash"]) == 64


def test_walkforward_with_tpe(tmp_path: Path) -> None:
    result = quantlab.walkforward(
        "sma_cross",
        "SPY",
        "fast=5:60,slow=20:200",
        train="4y",
        test="2y",
        method="tpe",
        trials=8,
        seed=1,
        start="2008-01-01",
        save=False,
    )
    assert (result.folds["candidates"] == 8).all()
    again = quantlab.walkforward(
        "sma_cross",
        "SPY",
        "fast=5:60,slow=20:200",
        train="4y",
        test="2y",
        method="tpe",
        trials=8,
        seed=1,
        start="2008-01-01",
        save=False,
    )
    pd.testing.assert_frame_equal(result.folds, again.folds)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--train", "30y"], "too short for one walk-forward fold"),
        (["--grid", "fast=5,slow=20"], "at least 2 parameter sets"),
        (["--embargo", "1y"], "embargo must be shorter"),
        (["--test", "soon"], "cannot read the --test span"),
        (["--method", "tpe", "--trials", "1"], "at least 2 trials"),
    ],
)
def test_cli_bad_input(args: list[str], message: str) -> None:
    base = ["walkforward", "--strategy", "sma_cross", "--symbols", "SPY", "--grid", GRID, "--report", "none"]
    if "--grid" in args:
        base = base[:6] + base[8:]
    result = CliRunner().invoke(cli, base + args)
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output


def test_cli_prints_folds_and_statistics() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "walkforward",
            "-s",
            "sma_cross",
            "--symbols",
            "SPY",
            "--grid",
            GRID,
            "--train",
            "4y",
            "--test",
            "2y",
            "--report",
            "none",
        ],
    )
    assert result.exit_code == 0, result.output
    for key in ("folds", "Stitched out of sample", "efficiency", "walk-forward PBO", "Parameter drift", "Results:"):
        assert key in result.output


def test_test_windows_shorter_than_two_bars_are_an_error() -> None:
    with pytest.raises(ParameterError, match=r"a test window holds [01] bar"):
        make_folds(BDAYS, "2y", "1d")


def test_folds_start_where_every_symbol_has_data() -> None:
    """IWM starts 2000-05-26: folds begin there, not at SPY's first bar."""
    result = quantlab.walkforward(
        "sma_cross", "SPY,IWM", "fast=5:20:5,slow=30:60:10", train="6m", test="3m", end="2002-06-30", save=False
    )
    iwm_first = result.inputs.prices["IWM"].index[0]
    assert result.fold_bounds[0].train_start >= iwm_first


def test_second_resolution_frames_fold_in_their_own_years(daily: dict[str, pd.DataFrame]) -> None:
    """Bug: frames indexed in seconds (pandas 2 ``read_csv``) built folds in 1970.

    The fold arithmetic read the index's raw integers as nanoseconds; ``data=`` frames are
    now put on nanoseconds first, so seconds and nanoseconds give the same folds.
    """
    spy = daily["SPY"].loc["2010":"2013"]
    secs = spy.copy()
    secs.index = spy.index.as_unit("s")
    kwargs = dict(train="1y", test="6m", save=False, report=False, progress=False)
    ns = quantlab.walkforward("sma_cross", "SPY", "fast=5:10:5,slow=20:30:10", data={"SPY": spy}, **kwargs)
    s = quantlab.walkforward("sma_cross", "SPY", "fast=5:10:5,slow=20:30:10", data={"SPY": secs}, **kwargs)
    assert s.fold_bounds[0].train_start.year == 2010
    assert s.fold_bounds == ns.fold_bounds
    pd.testing.assert_frame_equal(s.folds, ns.folds)
