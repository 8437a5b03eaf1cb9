"""The price chart with trades: bars, the spec's indicator lines, entries, exits and shading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import quantlab
from quantlab.engine.registry import get_strategy
from quantlab.engine.strategy import Indicator
from quantlab.errors import StrategyError
from quantlab.reports import build
from quantlab.reports.price_chart import price_trades
from quantlab.runs.chart import indicator_lines

START = "2012-01-01"


def _saved(tmp_path: Path, strategy: str, params: str, symbols: str = "SPY") -> Path:
    bt = quantlab.backtest(strategy, symbols, params, start=START, reports=tmp_path, report=False)
    return Path(bt.path)


def test_backtest_page_draws_price_indicators_and_every_trade(tmp_path: Path) -> None:
    path = _saved(tmp_path, "sma_cross", "fast=20,slow=50", "SPY,QQQ")
    chart = pd.read_csv(path / "chart.csv", index_col=0)
    spy = chart[chart["symbol"] == "SPY"]
    # the indicator lines are the moving averages the kernel compares (checked against pandas)
    np.testing.assert_allclose(spy["price:SMA 20"], spy["close"].rolling(20).mean(), rtol=1e-9)
    np.testing.assert_allclose(spy["price:SMA 50"], spy["close"].rolling(50).mean(), rtol=1e-9)
    trades = pd.read_csv(path / "trades.csv")
    outcome = build(path, tearsheet=False)
    assert outcome.ok, outcome.failures
    assert "Price and trades: the backtest, full history" in outcome.charts
    from quantlab.runs.artifacts import open_run

    run = open_run(path)
    fig = price_trades(run.chart(), run.trades())
    names = [t.name for t in fig.data]
    assert names.count("entry") == 2 and names.count("exit") == 2  # one pair of marker traces per symbol
    spy_trades = trades[trades["Symbol"] == "SPY"]
    entries = next(t for t in fig.data if t.name == "entry")
    assert len(entries.x) == len(spy_trades)
    assert len(fig.layout.shapes) == len(spy_trades)  # one shaded band per SPY round trip
    menu = fig.layout.updatemenus[0]
    assert [b.label for b in menu.buttons] == ["SPY", "QQQ"]
    assert len(menu.buttons[1].args[1]["shapes"]) == (trades["Symbol"] == "QQQ").sum()


def test_rsi_lines_go_below_the_price_and_strategies_without_indicators_still_chart(tmp_path: Path) -> None:
    path = _saved(tmp_path, "rsi_reversion", "period=3,entry=15,exit=60")
    chart = pd.read_csv(path / "chart.csv", index_col=0)
    assert [c for c in chart.columns if ":" in c] == ["lower:RSI 3", "lower:entry 15", "lower:exit 60"]
    rsi = chart["lower:RSI 3"].dropna()
    assert rsi.between(0, 100).all() and len(rsi) > 2000
    fig = price_trades(chart.set_index(pd.to_datetime(chart.index, utc=True)), pd.read_csv(path / "trades.csv"))
    assert fig.layout.yaxis2.title.text == "indicator"
    plain = _saved(tmp_path, "tsmom_vol", "lookback=126")
    assert list(pd.read_csv(plain / "chart.csv", index_col=0).columns) == ["symbol", "open", "high", "low", "close"]
    assert build(plain, tearsheet=False).ok


def test_optimize_page_charts_the_winner(tmp_path: Path) -> None:
    opt = quantlab.optimize(
        "sma_cross",
        "SPY",
        "fast=10:40:10,slow=50:200:50",
        start=START,
        top=2,
        reports=tmp_path,
        progress=False,
        report=False,
    )
    chart = pd.read_csv(Path(opt.path) / "chart.csv", index_col=0)
    assert (
        f"price:SMA {int(opt.best['fast'])}" in chart.columns and f"price:SMA {int(opt.best['slow'])}" in chart.columns
    )
    assert "Price and trades: the winner, full history" in build(opt.path, tearsheet=False).charts


def test_bad_indicators_are_refused_clearly() -> None:
    with pytest.raises(StrategyError, match="panel"):
        Indicator("x", lambda i, p: i["close"], panel="side")
    spec = get_strategy("sma_cross")
    broken = type(spec)(
        spec.name,
        spec.kernel,
        spec.inputs,
        spec.params,
        spec.lookback,
        spec.doc,
        spec.constraints,
        (Indicator("bad {fast}", lambda i, p: i["close"][:3]),),
    )
    frame = quantlab.data.load("SPY").iloc[:100]
    with pytest.raises(StrategyError, match="wrong shape"):
        indicator_lines(broken, frame, {"fast": 5.0, "slow": 10.0})
    assert Indicator("SMA {fast}", lambda i, p: i["close"]).name({"fast": 20.0}) == "SMA 20"
