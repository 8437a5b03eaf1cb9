"""Time exits and limit entries in the runner (issue 12 items 1, 2, 5): ``max_hold`` is a
market exit the runner sends at the bar research exits, counted from the ledger; limit
entries (``entry_limit``, ``limit_expiry``, ``limit_ticks``) go out at research's price with
their bracket children and are cancelled when they expire; the replay equals the engine
simulator with the same rules (within one tick), on daily and 1-minute SPY bars; an approved
held entry carries its children."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bridge.brokers.factory import make_broker
from bridge.brokers.protocol import Fill
from bridge.brokers.sim import ReplayDriver
from bridge.clock import ManualClock
from bridge.config import load_config
from bridge.errors import BridgeError
from bridge.ledger import queries
from bridge.ledger.store import Ledger
from bridge.live_signal import lookback
from bridge.market import MarketCalendar
from bridge.ops.notify import Notifier
from bridge.protection import exits_for_run
from bridge.replay import run_replay
from bridge.runtime.runner import Runner
from bridge.runtime.time_exits import research_limit
from quantlab.engine.intervals import get_interval
from quantlab.engine.params import resolve_params
from quantlab.engine.registry import get_strategy

STEP = "tests/bridge/step_strategy.py"


def config(tmp_path: Path, params: str, name: str = "sma_cross", **over: Any) -> Any:
    return load_config(
        env={},
        overrides={
            "": {"mode": "replay"},
            "strategy": {"name": name, "symbols": ("SPY",), "params": params, **over.pop("strategy", {})},
            "costs": {"slippage_bps": 5.0},
            "ledger": {"path": str(tmp_path / "r.sqlite")},
            **over,
        },
    )


def filled(result: Any) -> pd.DataFrame:
    return result.orders[result.orders["status"] == "filled"].reset_index(drop=True)


# --- parity with the engine simulator on real bars --------------------------------------------


@pytest.mark.parametrize("params", ["max_hold=5", "max_hold=3,sl_stop=0.02,tp_stop=0.04"])
def test_max_hold_replay_equals_the_simulator_on_daily_spy(spy_daily: pd.DataFrame, tmp_path, params: str) -> None:  # noqa: ANN001
    result = run_replay(config(tmp_path, f"fast=10,slow=30,{params}"), data={"SPY": spy_daily.iloc[:400]}, check=True)
    assert result.parity is not None and result.parity["equal"], result.parity
    timed = filled(result)[filled(result)["reason"].str.startswith("max_hold")]
    assert len(timed) >= 3 and result.parity["orders"] >= 8  # time exits do happen (not vacuous)


def test_limit_entries_replay_equals_the_simulator_on_daily_spy(spy_daily: pd.DataFrame, tmp_path) -> None:  # noqa: ANN001
    params = "fast=10,slow=30,entry_limit=0.005,limit_expiry=3,sl_stop=0.03,tp_stop=0.05"
    result = run_replay(config(tmp_path, params), data={"SPY": spy_daily.iloc[:400]}, check=True)
    assert result.parity is not None and result.parity["equal"], result.parity
    o = result.orders
    entries = o[o["role"].isna() & (o["side"] == "BUY")]
    assert (entries["status"] == "filled").sum() >= 3 and (entries["status"] == "cancelled").sum() >= 2
    protective = o[o["role"].notna() & (o["status"] == "filled")]
    assert len(protective) >= 2  # the limit entries carried their children, and they fired


def one_minute() -> pd.DataFrame:
    from quantlab import data

    return data.load("SPY", interval="1m")[["open", "high", "low", "close", "volume"]].iloc[:700]


@pytest.mark.parametrize(
    "params",
    ["max_hold=7", "entry_limit=0.0002,limit_expiry=4,sl_stop=0.002,tp_stop=0.003", "max_hold=5,entry_limit=0.0001"],
)
def test_replay_equals_the_simulator_on_one_minute_spy(tmp_path, params: str) -> None:  # noqa: ANN001
    cfg = config(
        tmp_path,
        f"fast=5,slow=15,{params}",
        strategy={"bar": "1m"},
        risk={"max_orders_per_minute": 10, "max_orders_per_day": 1000},
    )
    result = run_replay(cfg, data={"SPY": one_minute()}, check=True)
    assert result.parity is not None and result.parity["equal"], result.parity
    assert result.parity["orders"] >= 6


# --- hand-computed cases on a synthetic series -------------------------------------------------


def bars(rows: list[tuple[float, float, float, float]], start: str = "2024-01-02") -> pd.DataFrame:
    """Daily bars on consecutive XNYS sessions from ``rows`` of (open, high, low, close)."""
    days = MarketCalendar("XNYS").cal.sessions_in_range(
        pd.Timestamp(start), pd.Timestamp(start) + pd.Timedelta(days=60)
    )
    index = pd.DatetimeIndex(days[: len(rows)]).tz_localize("UTC")
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=index)
    frame["volume"] = 1e6
    return frame


def step_replay(tmp_path: Path, frame: pd.DataFrame, params: str, **over: Any) -> Any:
    """The step strategy (flat, then long from bar 3's close on) without slippage or fees."""
    cfg = load_config(
        env={},
        overrides={
            "": {"mode": "replay"},
            "strategy": {"name": "step", "symbols": ("SPY",), "params": params},
            "costs": {"slippage_bps": 0.0, "per_share": 0.0, "min_fee": 0.0},
            "ledger": {"path": str(tmp_path / "h.sqlite")},
            **over,
        },
    )
    return run_replay(cfg, data={"SPY": frame}, spec=get_strategy(STEP), check=True)


FLAT = (100.0, 101.0, 99.0, 100.0)


def test_hand_max_hold_exits_at_the_open_max_hold_bars_after_the_entry_bar(tmp_path) -> None:  # noqa: ANN001
    """Long from bar 3's close: entered at bar 4's open; max_hold=3 closes at bar 7's open (102)."""
    rows = [FLAT] * 4 + [(100.5, 101, 100, 100.8), FLAT, FLAT, (102.0, 103, 101, 102.5)] + [FLAT] * 4
    result = step_replay(tmp_path, bars(rows), "max_hold=3")
    o = filled(result)
    assert result.parity is not None and result.parity["equal"], result.parity
    assert list(o["side"]) == ["BUY", "SELL"]
    assert o.loc[0, "avg_fill_price"] == 100.5 and o.loc[1, "avg_fill_price"] == 102.0
    assert o.loc[1, "reason"].startswith("max_hold 3 bars (held 3")
    assert result.positions == {}  # the still-long target does not re-enter (research's fresh-entry rule)


def test_hand_limit_fills_at_a_better_open(tmp_path) -> None:  # noqa: ANN001
    """Signal close 100, entry_limit=0.02: a buy limit at 98.00; bar 4 opens at 97.5 -> fills at 97.5."""
    rows = [FLAT] * 4 + [(97.5, 99, 97, 98.5)] + [FLAT] * 3
    result = step_replay(tmp_path, bars(rows), "entry_limit=0.02")
    o = filled(result)
    assert result.parity is not None and result.parity["equal"], result.parity
    assert list(o["side"]) == ["BUY"] and o.loc[0, "avg_fill_price"] == 97.5
    ledger = Ledger(tmp_path / "h.sqlite")
    [entry] = [r for r in queries.all_orders(ledger) if r["side"] == "BUY"]
    assert ledger.order(entry["order_ref"])["limit_price"] == 98.0


def test_hand_limit_fills_inside_the_bar_and_is_protected_from_the_next_bar(tmp_path) -> None:  # noqa: ANN001
    """Limit 98 (close 100, 2%): bar 4 opens 99.5, trades down to 96 -> fills at 98.00; its stop
    (sl_stop=0.01: 97.02) is not checked in the fill bar (path unknown), and fires on bar 5 (low 96.5)."""
    rows = [FLAT] * 4 + [(99.5, 100, 96, 97.5), (97.5, 98, 96.5, 97)] + [FLAT] * 3
    result = step_replay(tmp_path, bars(rows), "entry_limit=0.02,sl_stop=0.01")
    o = filled(result)
    assert result.parity is not None and result.parity["equal"], result.parity
    assert list(o["side"]) == ["BUY", "SELL"]
    assert o.loc[0, "avg_fill_price"] == 98.0 and o.loc[1, "avg_fill_price"] == 97.02
    assert o.loc[1, "role"] == "stop"


def test_hand_limit_expires_unfilled_without_a_market_replacement(tmp_path) -> None:  # noqa: ANN001
    """Limit 98 with limit_expiry=2: bars 4 and 5 stay above 98; bar 6 trades through it but the
    limit has expired: no entry at all, and the children went with it."""
    rows = [FLAT] * 4 + [(100, 101, 98.5, 100), (100, 101, 98.2, 100), (99, 99, 95, 96)] + [FLAT] * 3
    result = step_replay(tmp_path, bars(rows), "entry_limit=0.02,limit_expiry=2,sl_stop=0.05")
    assert result.parity is not None and result.parity["equal"], result.parity
    assert filled(result).empty and result.positions == {}
    o = result.orders
    assert list(o["status"]) == ["cancelled", "cancelled"] and list(o["role"].fillna("")) == ["", "stop"]
    ledger = Ledger(tmp_path / "h.sqlite")
    entry = str(o.iloc[0]["order_ref"])
    events = ledger.rows("SELECT kind, detail FROM order_events WHERE order_ref = ? AND kind = 'expired'", (entry,))
    assert events and "limit_expiry 2 bars" in events[0]["detail"]


def test_hand_limit_ticks_needs_the_price_to_trade_through(tmp_path) -> None:  # noqa: ANN001
    """limit_ticks=2: a low at the limit (98.00) or one tick below does not fill; three below (97.97) does, at 98."""
    rows = [FLAT] * 4 + [(99, 99.5, 98.0, 99), (99, 99.5, 97.99, 99), (99, 99.5, 97.97, 99)] + [FLAT] * 2
    result = step_replay(tmp_path, bars(rows), "entry_limit=0.02,limit_expiry=5,limit_ticks=2")
    o = filled(result)
    assert result.parity is not None and result.parity["equal"], result.parity
    assert len(o) == 1 and o.loc[0, "avg_fill_price"] == 98.0
    fill_time = Ledger(tmp_path / "h.sqlite").rows("SELECT time FROM fills")[0]["time"]
    assert fill_time.startswith(str(bars(rows).index[6].date()))


def test_research_limit_rounds_to_the_cent_without_crossing_research_price() -> None:
    assert research_limit("BUY", 100.0, 0.00123) == 99.87  # 99.877 -> down
    assert research_limit("SELL", 100.0, 0.00123) == 100.13  # 100.123 -> up
    assert research_limit("BUY", 100.0, 0.02) == 98.0  # on the grid already: unchanged


# --- restart: counted from the ledger --------------------------------------------------------


def test_entry_fill_time_follows_adds_partial_exits_and_reversals(tmp_path) -> None:  # noqa: ANN001
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.set_baseline({}, ["SPY"], pd.Timestamp("2024-01-01", tz="UTC"))
    n = 0

    def fill(side: str, qty: float, day: int) -> None:
        nonlocal n
        n += 1
        t = pd.Timestamp(f"2024-01-{day:02d} 14:30", tz="UTC")
        ledger.record_fill(Fill(f"e{n}", f"r{n}", "SPY", side, qty, 100.0, t, 1.0, None, n), t, str(t.date()))  # type: ignore[arg-type]

    assert queries.entry_fill_time(ledger, "SPY") is None
    fill("BUY", 10, 2)
    fill("BUY", 5, 3)  # an add keeps the entry
    fill("SELL", 8, 4)  # a partial exit keeps it
    assert queries.entry_fill_time(ledger, "SPY") == "2024-01-02T14:30:00+00:00"
    fill("SELL", 17, 5)  # a reversal: the short is entered here
    assert queries.entry_fill_time(ledger, "SPY") == "2024-01-05T14:30:00+00:00"
    fill("BUY", 10, 8)
    assert queries.entry_fill_time(ledger, "SPY") is None  # flat
    ledger.set_baseline({"QQQ": 3.0}, ["SPY", "QQQ"], pd.Timestamp("2024-01-09", tz="UTC"))
    assert queries.entry_fill_time(ledger, "QQQ") is None  # the baseline's position: its entry is unknown


def replay_runner(tmp_path: Path, cfg: Any, frame: pd.DataFrame, spec: Any = None) -> tuple[Runner, Ledger]:
    """The replay's wiring (bridge/replay.py) without running it to the end."""
    spec = exits_for_run(spec or get_strategy(cfg.strategy.name), cfg.strategy.params, "replay")
    params = resolve_params(spec, cfg.strategy.params, get_interval("1d"))
    warm = lookback(spec, params)
    calendar = MarketCalendar("XNYS")

    def open_time(t: pd.Timestamp) -> pd.Timestamp:
        return pd.Timestamp(calendar.cal.session_open(pd.Timestamp(t.date())))

    clock = ManualClock(open_time(frame.index[warm - 1]))
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, history_bars=len(frame) + 1))
    broker = make_broker(cfg, clock=clock, cash=100_000.0, symbols=["SPY"])
    ReplayDriver(broker, {"SPY": frame}, warm, clock.set, open_time)
    ledger = Ledger(Path(cfg.ledger.path), synchronous="NORMAL")
    if "entry_limit" in str(cfg.strategy.params):
        broker.use_bar_limits(0.0)
    runner = Runner(
        cfg, broker, ledger, clock=clock, notifier=Notifier(cfg.notify, background=False), spec=spec, calendar=calendar
    )
    runner.start()
    return runner, ledger


def test_an_approved_entry_carries_its_bracket_children(spy_daily: pd.DataFrame, tmp_path) -> None:  # noqa: ANN001
    """Found by reading the code: brackets were made only in decision.send, so an entry held for
    approval went out naked when approved."""
    cfg = config(tmp_path, "fast=10,slow=30,sl_stop=0.02,tp_stop=0.05", risk={"approval_threshold": 5_000.0})
    runner, ledger = replay_runner(tmp_path, cfg, spy_daily.iloc[:120])
    try:
        runner.run(until=lambda: bool(ledger.held_orders()), poll=0.0)
        [held] = ledger.held_orders()
        ref = held["order_ref"]
        ledger.request_control("approve", {"order_ref": ref, "by": "test"}, runner.clock.now(), "test")
        runner.tasks.controls()
        runner.step(0.0)  # the broker's order and fill events
        assert ledger.order(ref)["status"] == "filled"
        kids = ledger.children(ref)
        assert [k["role"] for k in kids] == ["stop", "take_profit"]
        assert all(k["status"] in ("sent", "working") for k in kids)
        at_broker = {o.order_ref for o in runner.broker.open_orders()}
        assert {f"{ref}:sl", f"{ref}:tp"} <= at_broker
        fill = float(ledger.order(ref)["avg_fill_price"]) / 1.0005
        assert kids[0]["aux_price"] == pytest.approx(fill * 0.98, abs=0.01)  # relevelled from the fill
    finally:
        runner.close("test_done")


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "over", "match"),
    [
        ("entry_limit=-0.01", {}, "entry_limit must be >= 0"),
        ("max_hold=0", {}, "max_hold counts bars"),
        ("entry_limit=0.05", {}, "limit band"),
        ("entry_limit=0.01", {"sizing": {"allow_short": True}}, "reversal"),
        ("entry_limit=0.01", {"orders": {"type": "limit"}}, "carries no protective orders yet"),
    ],
)
def test_bad_timed_rules_are_refused_before_anything_is_sent(
    spy_daily: pd.DataFrame, tmp_path, params: str, over: dict, match: str
) -> None:  # noqa: ANN001
    with pytest.raises(BridgeError, match=match) as err:
        run_replay(config(tmp_path, f"fast=10,slow=30,{params}", **over), data={"SPY": spy_daily.iloc[:60]})
    assert err.value.fix and not (tmp_path / "r.sqlite").exists()


def test_max_hold_alone_runs_with_limit_orders(spy_daily: pd.DataFrame, tmp_path) -> None:  # noqa: ANN001
    """A time exit is a market order of the runner: nothing to protect, so [orders] type=limit stays usable."""
    result = run_replay(
        config(tmp_path, "fast=10,slow=30,max_hold=4", orders={"type": "limit"}),
        data={"SPY": spy_daily.iloc[:200]},
        check=False,
    )
    timed = result.orders[result.orders["reason"].str.startswith("max_hold")]
    assert len(timed) >= 1 and set(timed["status"]) == {"filled"}


def test_max_hold_survives_a_restart_mid_hold(spy_daily: pd.DataFrame, tmp_path) -> None:  # noqa: ANN001
    """A runner stopped two bars into a hold and a new one on the same ledger and broker: the time
    exit still goes out at research's bar (the count comes from the ledger's entry fill and the
    bars, not from memory), and the whole run equals the simulator."""
    from bridge import parity

    frame = spy_daily.iloc[:200]
    cfg = config(tmp_path, "fast=10,slow=30,max_hold=5")
    runner, ledger = replay_runner(tmp_path, cfg, frame)

    def held_for(bars: int) -> bool:
        entry = queries.entry_fill_time(ledger, "SPY")
        w = runner.windows["SPY"]
        return entry is not None and len(w) > 0 and (w.index > pd.Timestamp(entry)).sum() >= bars

    try:
        runner.run(until=lambda: held_for(2), poll=0.0)
    finally:
        runner.close("restart")
    assert not [o for o in queries.all_orders(ledger) if str(o["reason"]).startswith("max_hold")]
    broker, clock = runner.broker, runner.clock
    again = Runner(cfg, broker, ledger, clock=clock, notifier=Notifier(cfg.notify, background=False))
    again.start()
    try:
        again.run(poll=0.0)
    finally:
        again.close("done")
    orders = pd.DataFrame(queries.all_orders(ledger))
    timed = orders[orders["reason"].str.startswith("max_hold")]
    assert len(timed) >= 2 and set(timed["status"]) == {"filled"}
    spec = exits_for_run(get_strategy("sma_cross"), cfg.strategy.params, "replay")
    params = resolve_params(spec, cfg.strategy.params, get_interval("1d"))
    check = parity.compare(
        spec, params, {"SPY": frame}, cfg.sim_config(100_000.0), get_interval("1d"), orders, {"max_hold": 5.0}
    )
    assert check["equal"], check


def test_a_partly_filled_limit_that_expires_keeps_its_children_resized(tmp_path) -> None:  # noqa: ANN001
    """Live only (research fills whole): 5 of the limit's shares bought, then it expires. The
    parent is cancelled; the children stay, resized to 5, so the shares held stay protected and
    the stop never sells more than is held."""
    rows = [FLAT] * 4 + [(100, 101, 99, 100)] * 6
    cfg = load_config(
        env={},
        overrides={
            "": {"mode": "replay"},
            "strategy": {"name": "step", "symbols": ("SPY",), "params": "entry_limit=0.02,limit_expiry=2,sl_stop=0.05"},
            "ledger": {"path": str(tmp_path / "p.sqlite")},
        },
    )
    runner, ledger = replay_runner(tmp_path, cfg, bars(rows), spec=get_strategy(STEP))
    try:
        runner.run(until=lambda: any(r["order_type"] == "LMT" for r in ledger.open_orders("SPY")), poll=0.0)
        [entry] = [r for r in ledger.open_orders("SPY") if r["order_type"] == "LMT" and not r["role"]]
        ref = entry["order_ref"]
        runner.broker.fill_order(ref, qty=5, price=98.0)
        runner.run(poll=0.0)
        assert ledger.order(ref)["status"] == "cancelled" and ledger.order(ref)["filled"] == 5
        [stop] = ledger.children(ref)
        assert stop["status"] in ("sent", "working") and stop["quantity"] == 5
        assert runner.broker.positions()["SPY"].quantity == 5
    finally:
        runner.close("test_done")


def test_after_a_time_exit_a_resizing_strategy_waits_for_a_fresh_entry(tmp_path) -> None:  # noqa: ANN001
    """Research's rule 5: after an exit by a rule the symbol stays flat until the target goes to 0
    or flips; a vol-sized strategy's target changes on the same side every few bars. Without the
    rule the bridge re-entered at once (81 orders against the simulator's 37 on these bars)."""
    from quantlab import data

    frame = data.load("SPY", interval="1d")[["open", "high", "low", "close", "volume"]]
    frame = frame.loc[frame.index >= pd.Timestamp("2019-01-01", tz="UTC")].iloc[:700]
    cfg = config(
        tmp_path, "lookback=60,vol_window=20,band=0.05,max_hold=10", name="tsmom_vol", risk={"approval_threshold": 0.0}
    )
    result = run_replay(cfg, data={"SPY": frame}, check=True)
    assert result.parity is not None and result.parity["equal"], result.parity
    o = filled(result)
    assert (o["reason"].str.startswith("max_hold")).sum() >= 3
    ledger = Ledger(tmp_path / "r.sqlite")
    waits = [d for d in ledger.decisions("SPY") if d["rule"] == "fresh_entry"]
    assert waits and all(d["target"] > 0 for d in waits)  # same-side targets that did not re-enter


def test_a_time_exit_voided_unsent_is_sent_again_for_the_same_bar(spy_daily: pd.DataFrame, tmp_path) -> None:  # noqa: ANN001
    """A crash between recording the time exit and placeOrder leaves it 'intent'; the reconnect
    voids it (proven absent). The same bar's time exit then goes out as ``~1``, not never."""
    cfg = config(tmp_path, "fast=10,slow=30,max_hold=5", orders={"cancel_wait": 0.05})
    runner, ledger = replay_runner(tmp_path, cfg, spy_daily.iloc[:200])
    timed, broker = runner.decision.timed, runner.broker
    place, driver, lost = timed._place, broker.driver, []

    def crash(intent: Any, ref: str, received: Any) -> None:  # recorded, never placed
        lost.append(ref)
        broker.driver = None  # the replay stands still while the runner waits for it

    timed._place = crash
    try:
        runner.run(until=lambda: bool(lost), poll=0.0)
        broker.driver = driver
        [ref] = lost
        assert ledger.order(ref)["status"] == "intent" and runner.broker.positions()
        ledger.update_order(ref, runner.clock.now(), kind="void", status="void", detail="proven absent (test)")
        timed._place = place
        w = runner.windows["SPY"]
        assert timed.time_exit("SPY", w, w.last_time)
        assert ledger.order(f"{ref}~1")["status"] == "filled" and not runner.broker.positions()
        assert timed.time_exit("SPY", w, w.last_time)  # flat now: nothing more
        assert ledger.count_refs(ref) == 2
    finally:
        runner.close("test_done")


def test_a_window_too_short_for_max_hold_is_refused(spy_daily: pd.DataFrame, tmp_path) -> None:  # noqa: ANN001
    from bridge.brokers.sim import SimBroker

    cfg = config(tmp_path, "fast=10,slow=30,max_hold=40", data={"history_bars": 35})
    cfg = dataclasses.replace(cfg, mode="paper")
    broker = SimBroker(cfg.sim_config(100_000.0), ManualClock(pd.Timestamp("2024-01-02", tz="UTC")))
    with pytest.raises(BridgeError, match="history_bars is too short for max_hold") as err:
        Runner(cfg, broker, Ledger(tmp_path / "w.sqlite"))
    assert "at least 42" in err.value.render()
