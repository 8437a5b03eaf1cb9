"""Issue 10, research bugs 1 and 4: raw split data is refused (or adjusted on request) and
the returns basis (price or total) is an explicit, recorded choice. Real data throughout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import quantlab
from quantlab import data as market
from quantlab.cli import cli
from quantlab.data.basis import find_splits
from quantlab.errors import DataError

SPLITS = ("2000-06-21 (2:1)", "2005-02-28 (2:1)", "2014-06-09 (7:1)", "2020-08-31 (4:1)")


@pytest.fixture(scope="module")
def raw_store(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """AAPL as traded (Alpha Vantage export) imported as it is: adjustment=raw."""
    store = tmp_path_factory.mktemp("raw") / "raw.h5"
    market.import_csv(shared_data / "actions" / "AAPL_daily_as_traded.csv", "AAPL", store=store)
    assert [i.adjustment for i in market.info(store)] == ["raw"]
    return store


@pytest.mark.parametrize("run", ["backtest", "optimize", "walkforward"])
def test_raw_split_data_is_refused_naming_the_splits(raw_store: Path, run: str) -> None:
    calls = {
        "backtest": lambda: quantlab.backtest("sma_cross", "AAPL", "fast=5,slow=10", store=raw_store, save=False),
        "optimize": lambda: quantlab.optimize(
            "sma_cross", "AAPL", "fast=5:10:5,slow=20:40:20", store=raw_store, save=False
        ),
        "walkforward": lambda: quantlab.walkforward(
            "sma_cross", "AAPL", "fast=5:10:5,slow=20:40:20", store=raw_store, save=False
        ),
    }
    with pytest.raises(DataError, match="--adjust") as err:
        calls[run]()
    for split in SPLITS:
        assert split in str(err.value)


def test_raw_split_refusal_on_the_cli_exits_non_zero(raw_store: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "backtest",
            "--strategy",
            "sma_cross",
            "--symbols",
            "AAPL",
            "--params",
            "fast=5,slow=10",
            "--store",
            str(raw_store),
            "--report",
            "none",
        ],
    )
    assert result.exit_code != 0 and "2014-06-09 (7:1)" in result.output and "Traceback" not in result.output


def test_adjust_and_returns_on_the_cli(raw_store: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "backtest",
            "--strategy",
            "sma_cross",
            "--symbols",
            "AAPL",
            "--params",
            "fast=5,slow=10",
            "--store",
            str(raw_store),
            "--adjust",
            "--returns",
            "total",
            "--report",
            "none",
        ],
    )
    assert result.exit_code == 0, result.output
    bad = CliRunner().invoke(cli, ["backtest", "--strategy", "sma_cross", "--symbols", "SPY", "--returns", "dividends"])
    assert bad.exit_code != 0 and "dividends" in bad.output


def test_adjust_back_adjusts_the_splits_and_matches_split_adjusted_data(raw_store: Path) -> None:
    run = quantlab.backtest("sma_cross", "AAPL", "fast=5,slow=10", store=raw_store, adjust=True, save=False)
    assert run.summary["adjusted_splits"] == {"AAPL": list(SPLITS)}
    yahoo = market.load("AAPL")  # the bundled split-adjusted Yahoo series
    close = run.inputs.frames["AAPL"]["close"]
    common = close.index.intersection(yahoo.index)
    rel = np.abs(close[common].to_numpy() / yahoo.loc[common, "close"].to_numpy() - 1)
    assert np.median(rel) < 1e-3  # the two vendors agree once the splits are adjusted
    trades = run.portfolio.trades.records_readable
    assert trades["Return"].min() > -0.5  # no fake -84% loss on a split day
    raw = quantlab.backtest(
        "sma_cross",
        "AAPL",
        "fast=5,slow=10",
        store=raw_store,
        adjust=True,
        save=False,
        start="2015-01-01",
        end="2020-06-30",
    )
    assert raw.summary["adjusted_splits"] == {}  # no split inside the window: nothing to adjust


def test_splits_are_found_from_gaps_when_there_is_no_adj_close(shared_data: Path) -> None:
    frame = pd.read_csv(shared_data / "actions" / "AAPL_daily_as_traded.csv", parse_dates=["Date"], index_col="Date")
    frame = frame.rename(columns=str.lower)[["open", "high", "low", "close", "volume"]]
    frame.index = pd.DatetimeIndex(frame.index, name="time").tz_localize("UTC")
    frame = frame.sort_index()
    assert [s.label() for s in find_splits(frame)] == list(SPLITS)  # not the 2000-09-29 crash (-47% gap)
    frame.attrs["adjustment"] = "raw"
    with pytest.raises(DataError, match="2014-06-09"):
        quantlab.backtest("sma_cross", "AAPL", "fast=5,slow=10", data={"AAPL": frame}, save=False)


def test_total_return_basis_uses_adj_close_and_is_recorded(tmp_path: Path) -> None:
    price = quantlab.backtest(
        "sma_cross", "SPY", "fast=20,slow=50", start="2010-01-01", end="2019-12-31", reports=tmp_path, report=False
    )
    total = quantlab.backtest(
        "sma_cross",
        "SPY",
        "fast=20,slow=50",
        start="2010-01-01",
        end="2019-12-31",
        returns="total",
        reports=tmp_path,
        report=False,
    )
    assert price.returns_basis == "price" and total.returns_basis == "total"
    for run, basis in ((price, "price"), (total, "total")):
        summary = json.loads((Path(run.path) / "summary.json").read_text())
        assert summary["returns_basis"] == basis
    frame = market.load("SPY", start="2010-01-01", end="2019-12-31")
    adjusted = total.inputs.frames["SPY"]["close"]
    np.testing.assert_allclose(
        adjusted.pct_change().to_numpy()[1:], frame["adj_close"].pct_change().to_numpy()[1:], rtol=1e-9, atol=1e-15
    )
    assert adjusted.iloc[-1] == pytest.approx(frame["close"].iloc[-1])  # anchored on the last bar
    assert price.summary["config_hash"] != total.summary["config_hash"]


def test_total_return_adds_spys_dividends() -> None:
    """SPY paid about 2% a year in 2010-2019; a long-only strategy earns it only on the total basis."""
    kw = dict(start="2010-01-01", end="2019-12-31", save=False)
    price = quantlab.backtest("sma_cross", "SPY", "fast=20,slow=50", **kw)  # type: ignore[arg-type]
    total = quantlab.backtest("sma_cross", "SPY", "fast=20,slow=50", returns="total", **kw)  # type: ignore[arg-type]
    frame = market.load("SPY", start="2010-01-01", end="2019-12-31")
    years = len(frame) / 252
    yield_ = (frame["adj_close"].iloc[-1] / frame["adj_close"].iloc[0]) ** (1 / years) - (
        frame["close"].iloc[-1] / frame["close"].iloc[0]
    ) ** (1 / years)
    assert 0.015 < yield_ < 0.03
    gain = total.metrics.loc["SPY", "cagr"] - price.metrics.loc["SPY", "cagr"]
    exposure = price.metrics.loc["SPY", "exposure"]
    assert 0.5 * exposure * yield_ < gain < 1.5 * yield_


def test_total_return_needs_adj_close() -> None:
    with pytest.raises(DataError, match="adj_close"):
        quantlab.backtest("sma_cross", "SPY", "fast=5,slow=10", interval="1m", returns="total", save=False)
    with pytest.raises(quantlab.errors.ParameterError, match="returns"):
        quantlab.backtest("sma_cross", "SPY", "fast=5,slow=10", returns="dividends", save=False)


def test_benchmark_follows_the_runs_returns_basis() -> None:
    from quantlab.reports.benchmark import load_benchmark

    spy = market.load("SPY")
    index = spy.index[100:400]
    price = load_benchmark(index, basis="price")
    assert price.field == "close"
    expected = spy["close"].loc[index].pct_change().fillna(0.0)
    pd.testing.assert_series_equal(price.returns, expected, check_names=False)
    assert load_benchmark(index, basis="total").field == "adj_close"
