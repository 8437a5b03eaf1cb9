"""Parity on the fake gateway with intrabar paths (issue 12 item 6): the bridge's fills equal research's.

Real daily SPY bars stream from the fake gateway, each walking the pessimistic path for the
position held (``_gwparity.pessimistic_path``: low first for a long, high first for a short);
a paper runner (real ib_async client, real sockets) trades them, and every fill (the bar it
happened in, side, quantity, price, reason) equals the engine simulator's on the same bars,
params and costs, prices within one tick. Market orders fill at the next bar's open on both
sides, with no slippage on either.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd
import pytest

from tests.fakegw import FakeGateway

from ._gwparity import PathRun, differences, pessimistic_path, research_fills
from ._harness import BridgeHarness

SHORT_FLIP = "tests/bridge/short_strategy.py"
FLIP = "tests/bridge/flip_strategy.py"
#: GAP_AT_ENTRY, bug (fixed): the children went out with levels from the decision bar's close (the
#: decision ran on the completed bar before the new bar's open was applied, so ``fill_est`` was the
#: close too) and IB activates them at the parent's fill: an open gapping past a level filled that
#: child at the entry's own fill, before ``relevel`` could move it. SPY 2021-12-16 close 466.45 ->
#: stop 461.78, 12-17 open 461.55: stopped out at 461.55 on the entry bar, where research (levels
#: from the fill) holds to 12-20's open. Now IBBroker streams the new bar first and the bracket is
#: measured from ``OrderIntent.expected_fill`` (the open).
#: Model difference (research vs IB's TRAIL): research's trailing mark is the entry and the highs of
#: the bars strictly after the fill bar, ratcheted after each bar's check; IB (the fake) trails every
#: price after the fill, the fill bar's high included, and can trigger on the same bar's fall from its
#: high. SPY entry 2021-02-17 at 390.42, fill-bar high 392.66: IB's 3% trail sits at 380.88, research's
#: (mark 392.38 from 02-19) at 380.61; both fill on 02-23, 0.27 apart.
TRAIL_MODEL = "IB's TRAIL anchors on the fill bar's high and within the bar; research's mark does not (see TRAIL_MODEL)"


_RUNNING: dict[str, BridgeHarness] = {}


@pytest.fixture
def gw(fake_gateway_factory: Callable[..., FakeGateway]) -> FakeGateway:
    """The fake gateway stamping executions with the runner's manual clock: live, both are wall time,
    and the bridge compares the two (research's fresh-entry rule orders decisions after a fill)."""
    _RUNNING.clear()

    def now() -> dt.datetime:
        h = _RUNNING.get("h")
        return h.clock.now().to_pydatetime() if h is not None else dt.datetime.now(dt.UTC)

    return fake_gateway_factory(cash=100_000.0, clock=now)


def run(h: BridgeHarness, end: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    _RUNNING["h"] = h
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


def _entry_levels(fills: pd.DataFrame, k: int, sl: float, tp: float) -> tuple[float, float]:
    """Stop and target of the position fill ``k`` closes, measured from the entry before it."""
    entry = fills.iloc[k - 1]
    long = entry["side"] == "BUY"
    return (
        entry["price"] * (1 - sl) if long else entry["price"] * (1 + sl),
        entry["price"] * (1 + tp) if long else entry["price"] * (1 - tp),
    )


def _cases(fills: pd.DataFrame, frame: pd.DataFrame, sl: float, tp: float) -> dict[str, int]:
    """How often the stress cases happened: a stop gapped through at the open, a bar touching both levels."""
    out = {"gap_stop": 0, "both_touched": 0}
    for k in range(1, len(fills)):
        f = fills.iloc[k]
        if f["reason"] != "stop":
            continue
        bar = frame.loc[f["time"]]
        if abs(f["price"] - bar["open"]) < 1e-9:
            out["gap_stop"] += 1
        stop, target = _entry_levels(fills, k, sl, tp)
        long = fills.iloc[k - 1]["side"] == "BUY"
        if (bar["low"] <= stop and bar["high"] >= target) if long else (bar["high"] >= stop and bar["low"] <= target):
            out["both_touched"] += 1
    return out


@pytest.mark.parametrize(
    ("name", "exits", "short", "bars", "need"),
    [
        ("sma_cross", "sl_stop=0.01,tp_stop=0.02", False, 400, "gap_stop"),  # GAP_AT_ENTRY's case
        ("sma_cross", "sl_stop=0.02,tp_stop=0.04", False, 400, "gap_stop"),
        (SHORT_FLIP, "sl_stop=0.005,tp_stop=0.005", True, 200, "both_touched"),
    ],
)
def test_stops_and_targets_fill_as_research_on_the_pessimistic_path(
    harness: Callable[..., BridgeHarness],
    gw: FakeGateway,
    spy_daily: pd.DataFrame,
    name: str,
    exits: str,
    short: bool,
    bars: int,
    need: str,
) -> None:
    """Brackets at the fake gateway: entries at the next open, children from the entry's fill, the stop
    and the target filled by the gateway along each bar's path; equal to research within one tick,
    including stops gapped through at the open and bars touching both levels (the stop wins)."""
    params = f"fast=10,slow=30,{exits}" if name == "sma_cross" else exits
    h = harness(
        seed=30 if name == "sma_cross" else 2,
        frame=spy_daily.iloc[:bars],
        strategy={"name": name, "params": params},
        sizing={"allow_short": short},
    )
    ours, theirs = run(h, bars)
    assert differences(ours, theirs) == []
    reasons = set(ours["reason"])
    assert {"signal", "stop", "target"} <= reasons, reasons
    sl, tp = (float(x.split("=")[1]) for x in exits.split(","))
    cases = _cases(ours, h.frame, sl, tp)
    assert cases[need] >= 1, cases  # the stress case happened: not vacuous


@pytest.mark.xfail(strict=True, reason=TRAIL_MODEL)
def test_trailing_stops_fill_as_research_on_the_pessimistic_path(
    harness: Callable[..., BridgeHarness], gw: FakeGateway, spy_daily: pd.DataFrame
) -> None:
    h = harness(seed=30, frame=spy_daily.iloc[:400], strategy={"params": "fast=10,slow=30,sl_trail=0.03"})
    ours, theirs = run(h, 400)
    assert differences(ours, theirs) == []
    assert (ours["reason"] == "trail").sum() >= 3


def test_one_minute_bars_with_brackets_across_a_session_boundary_fill_as_research(
    harness: Callable[..., BridgeHarness], gw: FakeGateway
) -> None:
    """Bundled 1-minute SPY bars over two sessions (Feb 11 close -> Feb 12) with brackets (without:
    tests/bridge/test_parity.py)."""
    exits = ",sl_stop=0.001,tp_stop=0.002"
    from quantlab import data

    frame = data.load("SPY", interval="1m")[["open", "high", "low", "close", "volume"]].iloc[300:480]
    h = harness(
        seed=15,
        frame=frame,
        strategy={"params": "fast=5,slow=15" + exits, "bar": "1m"},
        risk={"max_orders_per_minute": 10, "max_orders_per_day": 1000},
    )
    ours, theirs = run(h, len(frame))
    assert differences(ours, theirs) == []
    assert len(ours) >= 6 and {"stop", "target"} <= set(ours["reason"])


def hand_bars(rows: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    """Daily bars (open, high, low, close) on consecutive XNYS sessions from 2021-01-04."""
    from bridge.market import MarketCalendar

    sessions = MarketCalendar().cal.sessions_in_range("2021-01-04", "2021-12-31")[: len(rows)]
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=pd.DatetimeIndex(sessions, tz="UTC"))
    frame["volume"] = 1e6
    return frame


#: tests/bridge/flip_strategy.py (long after an up close, flat after a down close) with sl_stop=0.02,
#: tp_stop=0.04: every entry opens at the previous close (no gap at the entry, see GAP_AT_ENTRY).
STRESS = [
    (100.0, 100.5, 99.5, 100.0),
    (100.0, 101.2, 99.8, 101.0),  # up: long from the next open, 101 (stop 98.98, target 105.04)
    (101.0, 105.5, 98.5, 102.0),  # touches both: the stop wins at 98.98
    (102.0, 103.2, 101.8, 103.0),  # still up: no re-entry after a protective exit (research's rule)
    (103.0, 103.1, 101.8, 102.0),  # down: target flat
    (102.0, 103.1, 101.9, 103.0),  # up: long from 103 (stop 100.94, target 107.12)
    (103.0, 103.8, 102.5, 103.5),  # nothing touched; up
    (99.0, 99.9, 98.8, 99.5),  # the open gaps through the stop: filled at the open, 99.0
    (99.5, 99.6, 99.2, 99.4),  # down: flat
    (99.4, 100.2, 99.3, 100.0),  # up: long from 100 (stop 98, target 104)
    (100.0, 104.5, 99.5, 103.0),  # low above the stop, high through the target: filled at 104
    (103.0, 103.4, 102.6, 103.2),
    (103.2, 103.5, 102.9, 103.0),
]


def test_hand_made_bars_a_two_sided_bar_a_gap_through_the_stop_and_a_target(
    harness: Callable[..., BridgeHarness], gw: FakeGateway
) -> None:
    """The stress cases by hand, each with no gap at its entry: fills equal research's, reasons and all."""
    h = harness(seed=2, frame=hand_bars(STRESS), strategy={"name": FLIP, "params": "sl_stop=0.02,tp_stop=0.04"})
    ours, theirs = run(h, len(STRESS))
    assert differences(ours, theirs) == []
    t = h.frame.index
    assert [(x.time, x.side, x.reason, round(x.price, 2)) for x in ours.itertuples()] == [
        (t[2], "BUY", "signal", 101.0),
        (t[2], "SELL", "stop", 98.98),  # the stop wins the two-sided bar
        (t[6], "BUY", "signal", 103.0),
        (t[7], "SELL", "stop", 99.0),  # gapped through: the open
        (t[10], "BUY", "signal", 100.0),
        (t[10], "SELL", "target", 104.0),
    ]


def test_a_child_filled_at_the_open_does_not_block_the_decision_completed_by_that_open(
    harness: Callable[..., BridgeHarness], gw: FakeGateway
) -> None:
    """Bug (fixed): the open that completes bar i-1 also gaps through the stop. The child's fill and the
    completed bar reach the runner in one batch; the decision ran first, tried to cancel the children,
    and waited on events its own batch already held (``pump`` polled only new ones): after
    ``cancel_wait`` it was 'blocked', the target change was lost, and the next target looked
    unchanged: no re-entry where research re-enters."""
    bars = [
        (100.0, 100.5, 99.5, 100.0),
        (100.0, 101.2, 99.8, 101.0),  # up: long from the next open, 101 (stop 98.98)
        (101.0, 101.5, 100.4, 100.5),  # down: target flat, decided when the next bar opens...
        (98.0, 101.0, 97.8, 100.8),  # ...at 98.0, through the stop; up: target long again
        (100.8, 101.5, 100.5, 101.2),  # research re-enters at this open
        (101.2, 101.6, 100.9, 101.0),
        (101.0, 101.3, 100.8, 101.1),
    ]
    h = harness(seed=2, frame=hand_bars(bars), strategy={"name": FLIP, "params": "sl_stop=0.02,tp_stop=0.04"})
    ours, theirs = run(h, len(bars))
    assert differences(ours, theirs) == []
    t = h.frame.index
    assert [(x.time, x.side, x.reason) for x in ours.itertuples()][:3] == [
        (t[2], "BUY", "signal"),
        (t[3], "SELL", "stop"),
        (t[4], "BUY", "signal"),
    ]
    assert not [d for d in h.ledger.decisions() if d["verdict"] == "blocked"]
