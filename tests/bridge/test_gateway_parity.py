"""Parity on the fake gateway with intrabar paths (issue 12 item 6): the bridge's fills equal research's.

Real daily SPY bars stream from the fake gateway, each walking the pessimistic path for the
position held (``_gwparity.pessimistic_path``: low first for a long, high first for a short);
a paper runner (real ib_async client, real sockets) trades them, and every fill (the bar it
happened in, side, quantity, price, reason) equals the engine simulator's on the same bars,
params and costs, prices within one tick. Market orders fill at the next bar's open on both
sides, with no slippage on either.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from tests.fakegw import FakeGateway

from ._gwparity import PathRun, differences, pessimistic_path, research_fills
from ._harness import BridgeHarness

SHORT_FLIP = "tests/bridge/short_strategy.py"


def run(h: BridgeHarness, end: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    r = PathRun(h)
    r.run(end)
    return r.fills(), research_fills(h)


def test_the_path_makes_the_stop_win_a_two_sided_bar() -> None:
    bar = {"open": 100.0, "high": 103.0, "low": 98.0, "close": 101.0}
    assert pessimistic_path(bar, 10) == [100.0, 98.0, 103.0, 101.0]  # a long's stop (below) first
    assert pessimistic_path(bar, -10) == [100.0, 103.0, 98.0, 101.0]  # a short's stop (above) first
    assert pessimistic_path(bar, 0) == [100.0, 98.0, 103.0, 101.0]


def test_sma_cross_without_exit_rules_fills_as_research_on_intrabar_paths(
    harness: Callable[..., BridgeHarness], gw: FakeGateway, spy_daily: pd.DataFrame
) -> None:
    h = harness(seed=30, frame=spy_daily.iloc[:200], strategy={"params": "fast=10,slow=30"})
    ours, theirs = run(h, 200)
    assert differences(ours, theirs) == []
    assert len(ours) >= 6 and set(ours["reason"]) == {"signal"}
    opens = [h.frame.loc[t, "open"] for t in ours["time"]]
    assert ours["price"].to_numpy() == pytest.approx(opens, abs=1e-9)  # the next open, no slippage


def test_a_shorting_strategy_without_exit_rules_fills_as_research(
    harness: Callable[..., BridgeHarness], gw: FakeGateway, spy_daily: pd.DataFrame
) -> None:
    h = harness(
        seed=2,
        frame=spy_daily.iloc[:60],
        strategy={"name": SHORT_FLIP, "params": ""},
        sizing={"allow_short": True},
    )
    ours, theirs = run(h, 60)
    assert differences(ours, theirs) == []
    assert len(ours) >= 10 and set(ours["side"]) == {"BUY", "SELL"}
