"""Issue 9, item 5: ledger and broker positions are compared at a fixed interval
(``[reconcile] check_every``), not only at start and reconnect; a mismatch halts."""

from __future__ import annotations

from collections.abc import Callable

from tests.fakegw import FakeGateway

from ._harness import BridgeHarness

H = Callable[..., BridgeHarness]


def test_periodic_check_halts_on_a_position_changed_outside_the_bridge(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60, reconcile={"check_every": 5.0})
    h.start()
    assert h.until(lambda: h.settled() and h.orders() and "SPY" in h.runner.broker.positions())
    qty = gw.position("SPY")[0]
    h.runner.ctx.state.next_check = 0.0
    h.step()
    assert not h.ledger.risk_state().halted  # in step: nothing to report
    gw.set_position("SPY", qty + 3, 395.0)  # traded by hand while the bridge runs
    assert h.until(lambda: h.ledger.risk_state().halted, timeout=12.0)  # within check_every (+ the confirmation)
    rs = h.ledger.risk_state()
    assert f"broker holds {qty + 3:g}, ledger expects {qty:g}" in rs.reason
    assert [a["level"] for a in h.notifier.sent if a["kind"] == "reconcile_mismatch"] == ["critical"]
    h.runner.ctx.state.next_check = 0.0
    h.step()
    assert [a["kind"] for a in h.notifier.sent].count("reconcile_mismatch") == 1  # halted: no repeated alert


def test_a_failing_periodic_check_never_kills_the_runner(harness: H, gw: FakeGateway) -> None:
    from bridge.errors import BrokerDisconnected, BrokerError

    h = harness(seed=60)
    h.start()
    assert h.until(lambda: h.settled() and h.orders())
    errors = iter(
        [BrokerError("IB request timed out", found="reqAllOpenOrders"), BrokerDisconnected("the IB connection dropped")]
    )

    def failing_sync() -> None:
        raise next(errors)

    real_sync, h.runner.broker.sync = h.runner.broker.sync, failing_sync  # type: ignore[method-assign]
    h.runner.ctx.state.next_check = 0.0
    h.step()  # a timed-out request: alert, retried at the next interval
    assert h.runner.state == "ready" and any(a["kind"] == "periodic_check_failed" for a in h.notifier.sent)
    h.runner.ctx.state.next_check = 0.0
    h.step()  # the connection dropped during the check: reconnect as for any drop
    assert h.runner.state == "disconnected"
    h.runner.broker.sync = real_sync  # type: ignore[method-assign]
    assert h.until(lambda: h.runner.state == "ready", timeout=5)
