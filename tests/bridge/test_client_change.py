"""Issue 9, fault 1: a restart under another client id must never void (and so re-send) the
previous client's working orders, and must record their fills.

IB lists a client's orders to that client only (``reqOpenOrders``); the fake gateway models
this (``tests/fakegw/visibility.py``), so these tests fail for a bridge that reconciles with
its own client's orders only.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import pandas as pd

from tests.fakegw import FakeGateway, FillPolicy

from ._harness import BridgeHarness, daily, until

H = Callable[..., BridgeHarness]
SYMBOLS = ("SPY", "QQQ", "IWM")


def _three(harness: H, gw: FakeGateway, spy_daily: pd.DataFrame) -> BridgeHarness:
    """A runner (client 7) on three symbols with the same bars: bar 59 says BUY for each."""
    for sym in SYMBOLS[1:]:
        gw.seed_bars(sym, daily(spy_daily.iloc[:60]))
    h = harness(seed=60, strategy={"symbols": SYMBOLS})
    h.clock.set(h.due(59) + pd.Timedelta(seconds=1))
    o = float(spy_daily["open"].iloc[60])
    for sym in SYMBOLS:
        gw.push_bar(sym, {"time": h._stamp(60), "open": o, "high": o, "low": o, "close": o})
    return h


def _restart(h: BridgeHarness, gw: FakeGateway, client_id: int, **changes: object) -> BridgeHarness:
    deadline = time.monotonic() + 3
    while client_id in gw.connected_clients() and time.monotonic() < deadline:
        time.sleep(0.01)  # the previous connection under this id is still closing
    cfg = dataclasses.replace(h.cfg, gateway=dataclasses.replace(h.cfg.gateway, client_id=client_id), **changes)
    h2 = BridgeHarness(gw, h.frame, h.ledger.path, 60, cfg=cfg, reseed=False)
    h2.clock.set(h.clock.now() + pd.Timedelta(seconds=30))
    return h2


def test_restart_as_another_client_adopts_working_orders_and_never_doubles(
    harness: H, gw: FakeGateway, spy_daily: pd.DataFrame
) -> None:
    gw.script(FillPolicy.rest(), once=False)
    h = _three(harness, gw, spy_daily)
    h.runner.start()
    assert h.until(lambda: len(h.orders()) == 3 and all(o["status"] == "working" for o in h.orders()))
    sent = {o.order_ref: o.quantity for o in gw.orders_received()}
    assert len(sent) == 3
    h.runner.close()  # the runner is gone; its three BUYs keep working at the gateway (client 7)

    h2 = _restart(h, gw, 27)  # e.g. after IB error 326 on client 7
    h2.runner.start()
    assert not h2.until(lambda: len(gw.orders_received()) > 3, timeout=1.5)  # nothing re-sent (was: 6 live BUYs)
    assert {o.order_ref: o.quantity for o in gw.orders_received()} == sent
    rows = {r["order_ref"]: r for r in h2.orders()}
    assert {r["status"] for r in rows.values()} == {"working"}  # adopted, not voided
    assert not h2.ledger.risk_state().halted
    assert any(a["kind"] == "order_adopted" for a in h2.notifier.sent)

    # the adopted orders fill; client 27 gets no live events for client 7's orders: the periodic check finds them
    for ref in sent:
        gw.fill_order(ref, price=float(spy_daily["open"].iloc[60]))
    h2.runner.ctx.state.next_check = 0.0  # the periodic check is due (reconcile.check_every)
    h2.step()
    rows = {r["order_ref"]: r for r in h2.orders()}
    assert {r["status"] for r in rows.values()} == {"filled"}
    fills = h2.ledger.fills()
    assert sorted(f["order_ref"] for f in fills) == sorted(sent) and all(f["commission"] > 0 for f in fills)
    for sym in SYMBOLS:
        assert (
            gw.position(sym)[0]
            == h2.ledger.expected_positions()[sym]
            == next(q for r, q in sent.items() if f":{sym}:" in r)
        )
    assert not h2.ledger.risk_state().halted
    h2.close()


def test_an_adopted_limit_order_is_never_cancelled_by_this_client(harness: H, gw: FakeGateway) -> None:
    """IB cancels by (clientId, orderId): a cancel from client 27 with client 7's order id would
    hit client 27's own order with that id. The runner never sends one; the order blocks its symbol."""
    gw.script(FillPolicy.rest(), symbol="SPY")
    h = harness(seed=60, orders={"type": "limit", "limit_timeout": 30.0, "on_timeout": "cancel"})
    h.start()
    assert h.until(lambda: bool(h.orders()) and h.orders()[0]["status"] == "working")
    ref = h.orders()[0]["order_ref"]
    h.runner.close()
    h2 = _restart(h, gw, 27)
    h2.runner.start()
    assert h2.runner.ctx.state.adopted == {ref: 7}
    h2.clock.advance(31)
    for _ in range(3):
        h2.runner.ctx.state.next_check = (
            0.0  # periodic reconciles rebuild the timeout map: the adopted order stays out of it
        )
        h2.step()
    h2.clock.advance(31)
    h2.step()
    assert gw.received(msg_id=4, client_id=27) == []  # no cancelOrder
    assert gw.orders(ref)[0].status == "Submitted" and h2.ledger.order(ref)["status"] == "working"
    h2.close()


def test_flatten_order_of_bridge_stop_is_adopted_and_its_fill_recorded(harness: H, gw: FakeGateway) -> None:
    from bridge.app import stop_bridge

    h = harness(seed=60)
    h.start()
    assert h.until(lambda: h.settled() and h.orders() and "SPY" in h.runner.broker.positions())
    qty = gw.position("SPY")[0]
    h.runner.close()
    gw.script(FillPolicy.rest(), action="SELL")
    result = stop_bridge(h.cfg, flatten=True, shutdown=False, client_id=None, timeout=1.0)  # client id 7 + 1
    [flat] = [o for o in result["orders"] if "order_ref" in o]
    assert result["final"][flat["order_ref"]] == "working" and gw.orders(flat["order_ref"])[0].client_id == 8

    h2 = _restart(h, gw, 7)
    h2.runner.start()
    row = h2.ledger.order(flat["order_ref"])
    assert row is not None and row["status"] == "working"  # adopted (was: void)
    gw.fill_order(flat["order_ref"], price=400.0)
    h2.runner.ctx.state.next_check = 0.0
    h2.step()
    row = h2.ledger.order(flat["order_ref"])
    assert row is not None and (row["status"], row["filled"]) == ("filled", qty)  # (was: void with filled=qty)
    assert [f["quantity"] for f in h2.ledger.fills() if f["order_ref"] == flat["order_ref"]] == [qty]
    assert gw.position("SPY")[0] == h2.ledger.expected_positions()["SPY"] == 0.0
    h2.close()


def test_a_voided_order_the_broker_has_is_revived(harness: H, gw: FakeGateway, spy_daily: pd.DataFrame) -> None:
    gw.script(FillPolicy.rest(), symbol="SPY")
    h = harness(seed=60)
    h.start()
    assert h.until(lambda: h.orders() and h.orders()[0]["status"] == "working")
    [order] = h.orders()
    ref = order["order_ref"]
    h.runner.close()
    h.ledger.update_order(
        ref, h.clock.now(), kind="void", detail="voided by mistake", status="void"
    )  # what fault 1 did

    h2 = _restart(h, gw, 7)
    h2.runner.start()
    assert h2.ledger.order(ref)["status"] == "working"  # revived at reconcile (was: void for good)
    assert [a["kind"] for a in h2.notifier.sent].count("order_revived") == 1
    assert [a["level"] for a in h2.notifier.sent if a["kind"] == "order_revived"] == ["critical"]
    gw.fill_order(ref, price=float(spy_daily["open"].iloc[60]))
    assert h2.until(lambda: h2.settled())
    assert h2.ledger.order(ref)["status"] == "filled"
    assert gw.position("SPY")[0] == h2.ledger.expected_positions()["SPY"] == order["quantity"]
    h2.close()


def test_live_event_revives_a_void_order(harness: H, gw: FakeGateway, spy_daily: pd.DataFrame) -> None:
    gw.script(FillPolicy.rest(), symbol="SPY")
    h = harness(seed=60)
    h.start()
    assert h.until(lambda: h.orders() and h.orders()[0]["status"] == "working")
    ref = h.orders()[0]["order_ref"]
    h.ledger.update_order(ref, h.clock.now(), kind="void", detail="voided by mistake", status="void")
    gw.fill_order(ref, price=float(spy_daily["open"].iloc[60]))
    assert h.until(lambda: h.ledger.order(ref)["status"] == "filled" and h.settled())
    assert any(a["kind"] == "order_revived" for a in h.notifier.sent)


def test_executions_of_another_ledger_are_reported_not_recorded(harness: H, gw: FakeGateway) -> None:
    from ib_async import IB, MarketOrder, Stock

    h = harness(seed=60)
    h.start()
    assert h.until(lambda: h.settled() and h.orders())
    ours = gw.position("SPY")[0]
    other = IB()  # another bridge with its own ledger, same account
    other.connect("127.0.0.1", gw.port, clientId=9, timeout=2)
    [spy] = other.qualifyContracts(Stock("SPY", "SMART", "USD"))
    theirs = other.placeOrder(spy, MarketOrder("BUY", 20, orderRef="ql:sma_cross:SPY:20210330T000000Z:0ther"))
    assert h.until(lambda: theirs.isDone() or other.sleep(0.01))
    other.disconnect()
    for _ in range(2):
        h.runner.ctx.state.next_check = 0.0
        h.step()
    assert {f["order_ref"] for f in h.ledger.fills()} == {
        h.orders()[0]["order_ref"]
    }  # (was: the other ledger's fill too)
    assert h.ledger.expected_positions()["SPY"] == ours
    rs = h.ledger.risk_state()
    assert (
        rs.halted
        and f"broker holds {ours + 20:g}, ledger expects {ours:g}" in rs.reason
        and "another bridge or ledger" in rs.reason
    )
    assert [a["kind"] for a in h.notifier.sent].count("foreign_execution") == 1  # once per ref


def test_report_pnl_counts_only_this_ledgers_trades(tmp_path) -> None:  # noqa: ANN001
    """Issue 9 fault 6: a ledger written before the fix holds another process's fill; the report leaves it out."""
    from bridge.brokers.protocol import Fill
    from bridge.ledger.store import Ledger
    from bridge.ops.report import daily_summary

    led = Ledger(tmp_path / "l.sqlite")
    at = pd.Timestamp("2021-03-31T15:00:00Z")
    led.insert_order(
        {
            "order_ref": "ql:ours",
            "symbol": "SPY",
            "purpose": "signal",
            "strategy": "s",
            "side": "SELL",
            "quantity": 5,
            "order_type": "MKT",
            "tif": "DAY",
            "status": "sent",
            "day": "2021-03-31",
        },
        at,
    )
    led.record_fill(Fill("e1", "ql:ours", "SPY", "SELL", 5, 400.0, at, 1.0, realized_pnl=50.0), at, "2021-03-31")
    led.record_fill(Fill("e2", "ql:theirs", "SPY", "SELL", 20, 400.0, at, 1.0, realized_pnl=900.0), at, "2021-03-31")
    s = daily_summary(led, "2021-03-31")
    assert [f["exec_id"] for f in s["fills"]] == ["e1"]
    assert (s["pnl"]["realized_from_fills"], s["commissions"]) == (50.0, 1.0)
    led.close()


def test_sigkill_then_restart_under_another_client_id_sends_nothing_twice(
    gw: FakeGateway, spy_daily: pd.DataFrame, tmp_path
) -> None:  # noqa: ANN001
    """The issue's reproduction with real processes: 3 working BUYs as client 11, SIGKILL, restart as client 27."""
    import signal
    import subprocess
    import sys

    from .test_processes import ROOT, env, read, toml, wait_for

    ledger = tmp_path / "kill.sqlite"
    for sym in SYMBOLS:
        gw.seed_bars(sym, daily(spy_daily.iloc[:60]))
    gw.script(FillPolicy.rest(), once=False)
    cfg = toml(tmp_path, gw, ledger)
    cfg.write_text(cfg.read_text().replace('symbols = ["SPY"]', f"symbols = {list(SYMBOLS)!r}".replace("'", '"')))

    def run(*extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "bridge", "run", "--paper", "--config", str(cfg), *extra],
            env=env(),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = run()
    try:
        assert wait_for(lambda: [r["status"] for r in read(ledger, "SELECT status FROM orders")] == ["working"] * 3)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
    sent = sorted(o.order_ref for o in gw.orders_received())
    assert len(sent) == 3

    second = run("--client-id", "27")
    try:
        assert wait_for(
            lambda: (
                [r["state"] for r in read(ledger, "SELECT state FROM runs ORDER BY started_at")] == ["ready", "ready"]
            )
        )
        assert not wait_for(lambda: len(gw.orders_received()) > 3, timeout=3.0)  # a bridge that voids sends again now
        assert sorted(o.order_ref for o in gw.orders_received()) == sent  # (was: 6 live BUYs)
        assert [r["status"] for r in read(ledger, "SELECT status FROM orders")] == ["working"] * 3
        assert read(ledger, "SELECT halted FROM risk_state")[0]["halted"] == 0
    finally:
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=30)
    assert second.returncode == 0, err[-4000:]
    assert '"event": "reconciled"' in err and "adopted" in err


def test_order_ids_stay_unique_after_a_gateway_restart(gw: FakeGateway, tmp_path) -> None:  # noqa: ANN001
    """A restarted gateway offers order ids from 1 again; reusing the id of one of our completed
    orders gets IB error 103 and the order is lost. The broker moves its ids past every id its
    client id used (executions of the day carry them)."""
    from bridge.brokers.ib import IBBroker
    from bridge.brokers.protocol import OrderRequest

    from ._harness import bridge_config

    gw.set_price("SPY", 400.0)
    broker = IBBroker(bridge_config(gw, tmp_path / "l.sqlite").gateway)
    broker.connect()
    try:
        for i in range(3):
            broker.place(OrderRequest(f"ql:t:{i}", "SPY", "BUY", 1))
        assert until(lambda: broker.poll(0.05), lambda: len([o for o in gw.orders() if o.status == "Filled"]) == 3)
        used = max(o.order_id for o in gw.orders())
        gw.restart(next_order_id=1)
        broker.poll(0.2)
        broker.disconnect()
        broker = IBBroker(bridge_config(gw, tmp_path / "l.sqlite").gateway)  # a new process: only the executions tell
        broker.connect()
        state = broker.place(OrderRequest("ql:t:after", "SPY", "BUY", 1))
        assert until(lambda: broker.poll(0.05), lambda: bool(gw.orders("ql:t:after")))
        assert state.broker_order_id > used
        assert gw.orders("ql:t:after")[0].status == "Filled"  # (was: IB error 103, order lost)
    finally:
        broker.disconnect()
