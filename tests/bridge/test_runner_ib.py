"""The runner with the real ib_async client against the fake IB Gateway over 127.0.0.1.

Covers the issue's "Tests must show" bullets that run in-process: connect and seed
history; new bars produce the expected orders; fills with commission reach the ledger;
a limit order times out and is cancelled (or converted to market); a rejection is
recorded; partial fills; the server drops the connection mid-session and the bridge
reconnects, reconciles and does not duplicate; 1100/1101/1102; the daily loss limit
latches the kill switch and flattens; stale data and missing bars are refused; error
200 at start sends nothing; a restart never re-trades an unchanged target.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from bridge.errors import UnknownSymbol
from tests.fakegw import FakeGateway, FillPolicy

from ._harness import BridgeHarness

H = Callable[..., BridgeHarness]
BUY_REF_60 = "ql:sma_cross:SPY:20210330T000000Z:"  # decision on bar 59 (2021-03-30), target 1 since bar 49


def test_connect_seeds_history_and_acts_on_the_completed_bar(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60)
    r = h.start()
    w = r.windows["SPY"]
    assert len(w) == 60 and w.last_time == h.frame.index[59]
    assert w.forming is not None and w.forming.time == h.frame.index[60]  # the open of bar 60 is not a completed bar
    assert h.until(lambda: h.settled() and h.orders())
    [order] = h.orders()
    assert order["order_ref"].startswith(BUY_REF_60) and order["side"] == "BUY" and order["status"] == "filled"
    # sizing: 10% of equity marked at bar 59's close, whole shares (the engine's target_shares_nb)
    assert order["quantity"] == int(0.10 * 100_000 / h.frame["close"].iloc[59])
    [received] = gw.orders_received()
    assert (
        received.order_ref == order["order_ref"]
        and received.order_type == "MKT"
        and received.quantity == order["quantity"]
    )
    assert order["avg_fill_price"] == h.frame["open"].iloc[60]  # filled at the open of the next bar
    [hist] = [m for m in gw.received(msg_id=20)]
    assert hist.fields[-2] == "1"  # keepUpToDate


def test_new_bars_produce_the_expected_orders_and_fills_with_commission(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=180)
    h.start()
    assert h.until(lambda: h.settled() and len(h.orders()) == 1)
    for i in range(181, 190):
        h.advance(i)
    orders = h.orders()
    assert [(o["side"], o["bar_time"][:10]) for o in orders] == [("BUY", "2021-09-20"), ("SELL", "2021-09-30")]
    buy, sell = orders
    assert sell["quantity"] == buy["quantity"] and sell["status"] == "filled"
    assert sell["avg_fill_price"] == h.frame["open"].iloc[188]
    fills = h.ledger.fills()
    assert [f["order_ref"] for f in fills] == [buy["order_ref"], sell["order_ref"]]
    assert all(f["commission"] == 1.0 for f in fills)  # IB fixed: $0.005/share, $1 minimum per order
    assert sell["commission"] == 1.0 and sell["filled"] == sell["quantity"]
    assert [o.order_ref for o in gw.orders_received()] == [buy["order_ref"], sell["order_ref"]]
    holds = [d for d in h.ledger.decisions() if d["verdict"] == "hold"]
    assert len(holds) == 8  # one decision per completed bar, target unchanged
    assert gw.position("SPY") == (0.0, 0.0)


def test_limit_order_times_out_and_is_cancelled(harness: H, gw: FakeGateway) -> None:
    gw.script(FillPolicy.rest(), symbol="SPY")
    h = harness(seed=60, orders={"type": "limit", "limit_timeout": 30.0, "on_timeout": "cancel"})
    h.start()
    assert h.until(lambda: bool(h.orders()) and h.orders()[0]["status"] == "working")
    [order] = h.orders()
    o = float(h.frame["open"].iloc[60])
    assert order["order_type"] == "LMT" and order["limit_price"] == pytest.approx(
        round(o * 1.0005 - 0.005, 2), abs=0.011
    )
    h.step()
    assert h.orders()[0]["status"] == "working"  # not yet: the timeout runs on the (manual) clock
    h.clock.advance(31)
    assert h.until(lambda: h.orders()[0]["status"] == "cancelled")
    kinds = [
        e["kind"] for e in h.ledger.rows("SELECT kind FROM order_events WHERE order_ref = ?", (order["order_ref"],))
    ]
    assert "timeout" in kinds and kinds[-1] == "cancelled"
    assert gw.orders(order["order_ref"])[0].status == "Cancelled"
    assert len(gw.orders_received()) == 1 and gw.position("SPY")[0] == 0.0


def test_limit_timeout_can_convert_to_market(harness: H, gw: FakeGateway) -> None:
    gw.script(FillPolicy.rest(), symbol="SPY", order_type="LMT")
    h = harness(seed=60, orders={"type": "limit", "limit_timeout": 30.0, "on_timeout": "market"})
    h.start()
    assert h.until(lambda: bool(h.orders()) and h.orders()[0]["status"] == "working")
    h.clock.advance(31)
    assert h.until(lambda: len(h.orders()) == 2 and h.settled())
    limit, market = h.orders()
    assert limit["status"] == "cancelled" and market["status"] == "filled"
    assert market["order_ref"] == limit["order_ref"] + ":m" and market["parent_ref"] == limit["order_ref"]
    assert market["order_type"] == "MKT" and market["quantity"] == limit["quantity"]
    assert [o.order_type for o in gw.orders_received()] == ["LMT", "MKT"]


def test_rejection_is_recorded_with_the_reason(harness: H, gw: FakeGateway) -> None:
    gw.script(FillPolicy.reject("insufficient buying power"), symbol="SPY")
    h = harness(seed=60)
    h.start()
    assert h.until(lambda: bool(h.orders()) and h.orders()[0]["status"] == "rejected")
    [order] = h.orders()
    assert "insufficient buying power" in order["reason"]
    assert any(a["kind"] == "order_rejected" for a in h.notifier.sent)
    assert h.runner.metrics["rejected"] == 1 and gw.position("SPY")[0] == 0.0


def test_partial_fill_then_timeout_ends_cancelled_with_the_filled_part(harness: H, gw: FakeGateway) -> None:
    gw.script(FillPolicy.auto(pieces=4, partial=1), symbol="SPY")
    h = harness(seed=60, orders={"type": "limit", "limit_timeout": 10.0})
    h.start()
    assert h.until(lambda: bool(h.orders()) and h.orders()[0]["status"] == "partially_filled" and h.ledger.fills())
    [order] = h.orders()
    part = order["quantity"] // 4
    assert order["filled"] == part and h.ledger.fills()[0]["commission"] == 1.0
    h.clock.advance(11)
    assert h.until(lambda: h.orders()[0]["status"] == "cancelled")
    done = h.orders()[0]
    assert done["filled"] == part and gw.position("SPY")[0] == part


def test_drop_mid_session_reconnects_reconciles_and_does_not_duplicate(harness: H, gw: FakeGateway) -> None:
    gw.script(FillPolicy.rest(), symbol="SPY")
    h = harness(seed=60)
    h.start()
    assert h.until(lambda: bool(h.orders()) and h.orders()[0]["status"] == "working")
    [order] = h.orders()
    ref = order["order_ref"]
    gw.drop_connections()
    assert h.until(lambda: h.runner.state == "disconnected", timeout=3)
    gw.pause_accepting()  # the first reconnect attempts fail: exponential backoff
    assert h.until(lambda: h.runner.ctx.state.reconnect_attempt >= 2, timeout=5)
    assert h.runner.state == "disconnected"
    gw.fill_order_while_disconnected(ref, price=float(h.frame["open"].iloc[60]))
    gw.resume_accepting()
    assert h.until(lambda: h.runner.state == "ready" and h.orders()[0]["status"] == "filled", timeout=5)
    [fill] = h.ledger.fills()
    assert fill["order_ref"] == ref and fill["source"] == "reconcile" and fill["commission"] == 1.0
    assert h.ledger.risk_state().halted is False  # positions reconcile: nothing to halt
    kinds = [e["kind"] for e in h.ledger.risk_events()]
    assert "disconnect" in kinds and "mismatch" not in kinds
    # trading resumed, the unchanged target does not trade again, nothing was sent twice
    for i in range(61, 64):
        h.advance(i)
    assert [o.order_ref for o in gw.orders_received()] == [ref]
    assert h.runner.metrics["reconnects"] == 1 and any(a["kind"] == "reconnected" for a in h.notifier.sent)


def test_bar_completed_while_disconnected_is_acted_on_after_reconnect(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=180)
    h.start()
    assert h.until(lambda: h.settled() and len(h.orders()) == 1)
    for i in range(181, 188):
        h.advance(i)
    gw.drop_connections()
    assert h.until(lambda: h.runner.state == "disconnected", timeout=3)
    h.open_bar(188)  # completes bar 187 (target 1 -> 0) while the bridge is away
    assert h.until(lambda: h.runner.state == "ready", timeout=5)
    assert h.until(lambda: len(h.orders()) == 2 and h.settled())
    sell = h.orders()[1]
    assert sell["side"] == "SELL" and sell["bar_time"].startswith("2021-09-30")
    assert len(gw.orders_received(sell["order_ref"])) == 1


def test_connectivity_1100_pauses_and_1102_reconciles_then_resumes(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=180)
    h.start()
    assert h.until(lambda: h.settled() and len(h.orders()) == 1)
    for i in range(181, 188):
        h.advance(i)
    gw.connectivity_lost()
    assert h.until(lambda: h.runner.state == "lost")
    h.open_bar(188)  # bar 187 (target 1 -> 0) completes during the outage: no decision, no order
    h.until(lambda: False, timeout=0.2)
    assert not h.decided(187) and len(gw.orders_received()) == 1
    gw.connectivity_restored(data_lost=False)
    assert h.until(lambda: h.runner.state == "ready" and len(h.orders()) == 2 and h.settled())
    assert h.orders()[1]["side"] == "SELL" and h.orders()[1]["bar_time"].startswith("2021-09-30")
    kinds = [e["kind"] for e in h.ledger.risk_events()]
    assert "connectivity_lost" in kinds


def test_1101_data_lost_resubscribes(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60)
    h.start()
    assert h.until(lambda: h.settled() and h.orders())
    before = len(gw.received(msg_id=20))
    gw.connectivity_restored(data_lost=True)
    assert h.until(lambda: len(gw.received(msg_id=20)) == before + 1)
    assert len(gw.received(msg_id=25)) == 1  # the old stream was cancelled
    h.advance(61)
    assert h.runner.state == "ready" and len(gw.orders_received()) == 1


def test_daily_loss_limit_latches_kill_switch_and_flattens(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60, risk={"daily_loss_limit_pct": 0.005})
    h.start()
    assert h.until(lambda: h.settled() and h.orders())
    qty = gw.position("SPY")[0]
    assert qty > 0
    gw.set_price("SPY", float(h.frame["open"].iloc[60]) * 0.90)  # -10% on a 10% position: -1% of equity
    assert h.until(lambda: h.ledger.risk_state().kill_switch and h.settled() and gw.position("SPY")[0] == 0.0)
    rs = h.ledger.risk_state()
    assert rs.halted and "daily loss" in rs.reason
    flat = [o for o in h.orders() if o["purpose"] == "flatten"]
    assert len(flat) == 1 and flat[0]["side"] == "SELL" and flat[0]["quantity"] == qty and flat[0]["status"] == "filled"
    assert [e["kind"] for e in h.ledger.risk_events("daily_loss")] == ["daily_loss"]
    assert any(a["kind"] == "kill_switch" for a in h.notifier.sent)
    # latched: later bars never trade until `bridge resume`
    for i in range(61, 64):
        h.advance(i)
    assert len(gw.orders_received()) == 2


def test_stale_bar_is_refused_and_alerted(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60)
    h.clock.set(h.due(59) + pd.Timedelta(hours=3))  # the bridge starts 3 h after bar 59 was due
    h._push_open(60)
    h.runner.start()
    h.until(lambda: False, timeout=0.1)
    assert gw.orders_received() == []
    [d] = h.ledger.decisions()
    assert d["verdict"] == "refused" and d["rule"] == "stale"
    assert [e["kind"] for e in h.ledger.risk_events("stale_data")] == ["stale_data"]
    assert any(a["kind"] == "stale_data" for a in h.notifier.sent)
    view = h.runner.health_view(h.runner.status())
    assert not view["ok"] and not view["data_fresh"] and "stale" in view["stale"]["SPY"]


def test_missing_bar_is_refused(harness: H, gw: FakeGateway, spy_daily: pd.DataFrame) -> None:
    frame = spy_daily.drop(spy_daily.index[62])  # one session missing from the feed
    h = harness(seed=60, frame=frame)
    h.start()
    assert h.until(lambda: h.settled() and h.orders())
    h.advance(61)
    h.advance(62)  # the bar after the gap
    h.open_bar(63)
    assert h.until(lambda: h.decided(62))
    last = h.ledger.decisions()[-1]
    assert (last["verdict"], last["rule"]) == ("refused", "missing_bars")
    assert len(gw.orders_received()) == 1


def test_unknown_symbol_error_200_stops_before_anything_is_sent(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60, strategy={"symbols": ("SPY", "ZZZZ")})
    with pytest.raises(UnknownSymbol, match="ZZZZ"):
        h.start()
    assert gw.orders_received() == [] and h.ledger.rows("SELECT * FROM orders") == []


def test_restart_never_retrades_an_unchanged_target(harness: H, gw: FakeGateway, tmp_path) -> None:  # noqa: ANN001
    h = harness(seed=60)
    h.start()
    assert h.until(lambda: h.settled() and h.orders())
    h.advance(61)
    h.runner.close()
    # a new process on the same ledger: reconciles, sees bar 60 was acted on and target 1 unchanged
    h2 = BridgeHarness(gw, h.frame, h.ledger.path, 62, cfg=h.cfg, reseed=False)
    h2.k = 62
    h2.clock.set(h.due(61) + pd.Timedelta(seconds=2))
    h2._push_open(62)
    h2.runner.start()
    h2.until(lambda: h2.decided(61))
    assert [d["verdict"] for d in h2.ledger.decisions()][-1] == "hold"
    assert len(gw.orders_received()) == 1
    h2.close()


def test_position_mismatch_halts_until_resume_rebaselines(harness: H, gw: FakeGateway) -> None:
    from bridge.app import resume_bridge

    h = harness(seed=60)
    h.start()
    assert h.until(lambda: h.settled() and h.orders())
    h.runner.close()
    qty = gw.position("SPY")[0]
    gw.set_position("SPY", qty + 7, 395.0)  # someone traded SPY outside the bridge
    h2 = BridgeHarness(gw, h.frame, h.ledger.path, 61, cfg=h.cfg, reseed=False)
    h2.clock.set(h.due(59) + pd.Timedelta(seconds=30))
    h2.runner.start()
    rs = h2.ledger.risk_state()
    assert rs.halted and not rs.kill_switch and f"broker holds {qty + 7:g}, ledger expects {qty:g}" in rs.reason
    assert any(a["kind"] == "reconcile_mismatch" for a in h2.notifier.sent)
    result = resume_bridge(h2.cfg, rebaseline=True, acknowledge=lambda question: "mismatch" in question)
    assert result["resumed"]
    h2.runner.reconciler.run("resume")  # what the running bridge does on the resume request
    assert not h2.ledger.risk_state().halted and h2.ledger.expected_positions()["SPY"] == qty + 7
    h2.close()


def test_unfilled_day_orders_are_cancelled_at_the_close(harness: H, gw: FakeGateway) -> None:
    gw.script(FillPolicy.rest(), symbol="SPY")
    h = harness(seed=60, orders={"type": "limit", "limit_timeout": 1e9})
    h.start()
    assert h.until(lambda: bool(h.orders()) and h.orders()[0]["status"] == "working")
    close = h.runner.calendar.session_close_of(h.clock.now())
    assert close is not None
    h.step()
    h.clock.set(close + pd.Timedelta(minutes=1))
    assert h.until(lambda: h.orders()[0]["status"] == "cancelled")
    kinds = [
        e["kind"]
        for e in h.ledger.rows("SELECT kind FROM order_events WHERE order_ref = ?", (h.orders()[0]["order_ref"],))
    ]
    assert "close_cancel" in kinds


def test_daily_loss_uses_fresh_bar_prices_when_the_account_snapshot_is_stale(
    harness: H, gw: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """IB refreshes account values every few minutes; bar updates every few seconds. A drop that
    only the bars show yet must still trip the limit (the snapshot is re-marked to bar prices)."""
    h = harness(seed=60, risk={"daily_loss_limit_pct": 0.005})
    h.start()
    assert h.until(lambda: h.settled() and h.orders())
    h.step()
    stale = h.broker.account()
    assert stale.marks["SPY"][0] == gw.position("SPY")[0]
    monkeypatch.setattr(h.broker, "account", lambda: stale)  # the account snapshot stops updating
    o = float(h.frame["open"].iloc[60])
    gw.push_bar(
        "SPY", {"time": h.frame.index[60].tz_localize(None), "open": o, "high": o, "low": o * 0.9, "close": o * 0.9}
    )
    assert h.until(lambda: h.ledger.risk_state().kill_switch)
    assert "daily loss" in h.ledger.risk_state().reason


def test_failed_bar_subscription_is_resubscribed(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60)
    h.start()
    assert h.until(lambda: h.settled() and h.orders())
    [sub] = [m for m in gw.received(msg_id=20)]
    gw.inject_error(10182, "Failed to request live updates (disconnected).", req_id=int(sub.fields[1]))
    assert h.until(lambda: len(gw.received(msg_id=20)) == 2)
    h.advance(61)
    assert h.runner.state == "ready" and h.decided(60)


def test_kill_switch_never_flattens_twice_while_a_flatten_order_works(
    harness: H, gw: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridge.control import emergency_stop

    h = harness(seed=60, risk={"daily_loss_limit_pct": 0.005}, orders={"cancel_wait": 0.2})
    h.start()
    assert h.until(lambda: h.settled() and h.orders())
    qty = gw.position("SPY")[0]
    gw.script(FillPolicy.rest(), symbol="SPY", action="SELL", once=False)  # flattening orders do not fill (market shut)
    gw.set_price("SPY", float(h.frame["open"].iloc[60]) * 0.9)
    assert h.until(lambda: h.ledger.risk_state().kill_switch and any(o["status"] == "working" for o in h.orders()))
    h.open_bar(61)  # latched: the next decision never asks to flatten again
    assert h.until(lambda: h.decided(60))
    assert len([o for o in h.orders() if o["purpose"] == "flatten"]) == 1

    def stop_again(minutes: int) -> dict[str, object]:
        return emergency_stop(
            h.broker,
            h.ledger,
            flatten=True,
            symbols=["SPY"],
            strategy="sma_cross",
            key=h.runner.skey,
            tag=h.clock.now() + pd.Timedelta(minutes=minutes),
            reason="operator",
            kind="manual_stop",
            now=h.clock.now,
            pump=h.runner.ctx.pump,
            cancel_wait=0.2,
        )

    monkeypatch.setattr(h.broker, "cancel_all", lambda: None)  # a gateway that does not confirm cancels in time
    assert stop_again(5)["orders"] == [{"symbol": "SPY", "skipped": "a flattening order is already working"}]
    monkeypatch.undo()
    stop_again(10)  # cancels the working flatten order first, then replaces it
    working = [o for o in gw.orders() if o.action == "SELL" and o.status in ("Submitted", "PreSubmitted")]
    assert len(working) == 1 and working[0].quantity == qty  # never more than the position is being sold
