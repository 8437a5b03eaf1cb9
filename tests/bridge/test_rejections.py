"""Issue 9, fault 4: a broker-rejected order (IB 201) is not "acted on".

A rejection rolls the strategy's last target back so the next bar decides again; retries
are bounded (``orders.reject_retries``); a rejected exit is a critical alert every time,
and one that still cannot be placed halts (or latches the kill switch, ``orders.on_exit_rejected``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from tests.fakegw import FakeGateway, FillPolicy

from ._harness import BridgeHarness

H = Callable[..., BridgeHarness]


def _kinds(h: BridgeHarness, level: str | None = None) -> list[str]:
    return [a["kind"] for a in h.notifier.sent if level is None or a["level"] == level]


def _long(h: BridgeHarness) -> None:
    """Start at bar 180 (long since bar 179's decision is a BUY) and wait for the position."""
    h.start()
    assert h.until(lambda: h.settled() and len(h.orders()) == 1 and h.gw.position("SPY")[0] > 0)


def _advance_until_sell(h: BridgeHarness, last: int = 195) -> int:
    for i in range(h.k, last):
        h.open_bar(i)
        assert h.until(
            lambda i=i: h.decided(i - 1) and (h.settled() or any(o["status"] == "rejected" for o in h.orders()))
        )
        if any(o["side"] == "SELL" for o in h.orders()):
            return i
        h.close_bar(i)
        assert h.until(
            lambda i=i: (
                (f := h.runner.windows["SPY"].forming) is not None and f.close == float(h.frame["close"].iloc[i])
            )
        )
    raise AssertionError("the strategy never exited")


def _next_bar(h: BridgeHarness, i: int) -> None:
    h.close_bar(i)
    assert h.until(
        lambda: (f := h.runner.windows["SPY"].forming) is not None and f.close == float(h.frame["close"].iloc[i])
    )
    h.open_bar(i + 1)
    assert h.until(lambda: h.decided(i) and (h.settled() or any(o["status"] == "rejected" for o in h.orders()[-1:])))


def test_rejected_entry_rolls_back_and_the_next_bar_converges(harness: H, gw: FakeGateway) -> None:
    gw.script(FillPolicy.reject("insufficient buying power"), symbol="SPY")  # once
    h = harness(seed=60)
    h.start()
    assert h.until(lambda: bool(h.orders()) and h.orders()[0]["status"] == "rejected")
    target, _ = h.ledger.strategy_state(h.runner.skey, "SPY")
    assert math.isnan(target)  # not acted on: the next bar decides again
    assert "order_rejected" in _kinds(h, "error")
    _next_bar(h, 60)
    rejected, accepted = h.orders()
    assert accepted["status"] == "filled" and accepted["side"] == "BUY" and accepted["target"] == 1.0
    assert gw.position("SPY")[0] == accepted["quantity"] > 0
    assert h.ledger.strategy_state(h.runner.skey, "SPY")[0] == 1.0
    assert [o.order_ref for o in gw.orders_received()] == [rejected["order_ref"], accepted["order_ref"]]


def test_entry_retries_are_bounded(harness: H, gw: FakeGateway) -> None:
    gw.set_default_policy(FillPolicy.reject("no trading permissions"))
    h = harness(seed=60, orders={"reject_retries": 1})
    h.start()
    assert h.until(lambda: bool(h.orders()) and h.orders()[0]["status"] == "rejected")
    _next_bar(h, 60)  # the one retry, rejected again: give up
    assert h.until(lambda: len(h.orders()) == 2 and h.orders()[1]["status"] == "rejected")
    assert "rejections_exhausted" in _kinds(h, "critical")
    _next_bar(h, 61)
    _next_bar(h, 62)
    assert len(gw.orders_received()) == 2  # no endless retrying
    assert h.ledger.decisions()[-1]["verdict"] == "hold"


def test_rejected_exit_alerts_critically_and_is_retried(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=180)
    _long(h)
    held = gw.position("SPY")[0]
    gw.script(FillPolicy.reject("order size exceeds limit"), symbol="SPY", action="SELL")  # once
    i = _advance_until_sell(h)
    assert h.until(lambda: h.orders()[-1]["status"] == "rejected")
    assert "exit_rejected" in _kinds(h, "critical")
    assert gw.position("SPY")[0] == held
    assert h.ledger.strategy_state(h.runner.skey, "SPY")[0] == 1.0  # still long in the strategy's books: retry
    _next_bar(h, i)
    assert h.until(lambda: gw.position("SPY")[0] == 0.0 and h.settled())
    assert h.orders()[-1]["side"] == "SELL" and h.orders()[-1]["status"] == "filled"
    assert h.ledger.strategy_state(h.runner.skey, "SPY")[0] == 0.0


def test_an_exit_that_cannot_be_placed_halts(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=180, orders={"reject_retries": 1})
    _long(h)
    gw.set_default_policy(FillPolicy.reject("order size exceeds limit"))
    i = _advance_until_sell(h)
    _next_bar(h, i)
    assert h.until(lambda: h.ledger.risk_state().halted)
    rs = h.ledger.risk_state()
    assert "exit" in rs.reason and "rejected" in rs.reason and not rs.kill_switch
    assert _kinds(h, "critical").count("exit_rejected") >= 2 and "exit_unplaceable" in _kinds(h, "critical")
    assert gw.position("SPY")[0] > 0  # the position is still open: the operator must act (runbook)
    assert h.ledger.strategy_state(h.runner.skey, "SPY")[0] == 1.0  # not acted on: decided again after the resume
    gw.set_default_policy(FillPolicy.auto())  # the operator fixed the cause, then `bridge resume`:
    h.ledger.set_risk_state(h.clock.now(), kill_switch=False, halted=False, reason="", since=None)
    _next_bar(h, i + 1)
    assert h.until(lambda: gw.position("SPY")[0] == 0.0 and h.settled())
    assert h.orders()[-1]["side"] == "SELL" and h.orders()[-1]["status"] == "filled"


def test_an_exit_that_cannot_be_placed_can_latch_the_kill_switch(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=180, orders={"reject_retries": 0, "on_exit_rejected": "kill_switch"})
    _long(h)
    gw.set_default_policy(FillPolicy.reject("order size exceeds limit"))
    _advance_until_sell(h)
    assert h.until(lambda: h.ledger.risk_state().kill_switch)
    assert "exit_unplaceable" in _kinds(h, "critical") and "kill_switch" in _kinds(h, "critical")


def test_a_rejected_flatten_order_is_never_silent(harness: H, gw: FakeGateway) -> None:
    import pandas as pd

    h = harness(seed=60)
    h.start()
    assert h.until(lambda: h.settled() and h.orders() and gw.position("SPY")[0] > 0)
    gw.script(FillPolicy.reject("no trading permissions"), symbol="SPY", action="SELL")
    cid = h.ledger.request_control("stop", {"flatten": True, "by": "test"}, pd.Timestamp.now(tz="UTC"), "test")
    assert h.until(lambda: (h.ledger.control(cid) or {}).get("result") and h.orders()[-1]["status"] == "rejected")
    flat = h.orders()[-1]
    assert flat["purpose"] == "flatten" and gw.position("SPY")[0] > 0
    assert "exit_rejected" in _kinds(h, "critical") and "exit_unplaceable" in _kinds(h, "critical")
    assert h.ledger.risk_state().kill_switch


def test_bad_rejection_settings_are_refused() -> None:
    import pytest

    from bridge.config import load_config
    from bridge.errors import BridgeConfigError

    with pytest.raises(BridgeConfigError, match="orders.reject_retries must be >= 0"):
        load_config(overrides={"orders": {"reject_retries": -1}}, env={})
    with pytest.raises(BridgeConfigError, match="orders.on_exit_rejected must be halt or kill_switch"):
        load_config(overrides={"orders": {"on_exit_rejected": "ignore"}}, env={})
    cfg = load_config(env={"BRIDGE_ORDERS_REJECT_RETRIES": "5", "BRIDGE_ORDERS_ON_EXIT_REJECTED": "kill_switch"})
    assert (cfg.orders.reject_retries, cfg.orders.on_exit_rejected) == (5, "kill_switch")


def test_a_rejection_first_seen_by_reconcile_rolls_back_too(
    harness: H, gw: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner missed the live 201 (crash, drop): after the reconnect IB lists the order as a
    completed order whose completedStatus says 'Rejected'. It is rejected, not cancelled, and the
    next bar decides again."""
    gw.script(FillPolicy.reject("insufficient buying power"), symbol="SPY")
    h = harness(seed=60)
    monkeypatch.setattr(h.runner.session, "on_order", lambda ev: None)  # the live status never reaches the ledger
    h.start()
    assert h.until(lambda: gw.orders() and gw.orders()[0].status == "Cancelled")
    h.until(lambda: False, timeout=0.2)
    [row] = h.orders()
    assert row["status"] == "sent"
    monkeypatch.undo()
    gw.drop_connections()
    assert h.until(lambda: h.runner.state == "ready" and h.runner.metrics["reconnects"] == 1, timeout=10)
    assert h.ledger.order(row["order_ref"])["status"] == "rejected"
    assert math.isnan(h.ledger.strategy_state(h.runner.skey, "SPY")[0])
    _next_bar(h, 60)
    assert h.until(lambda: len(h.orders()) == 2 and h.settled())
    assert h.orders()[1]["status"] == "filled" and gw.position("SPY")[0] > 0
