"""An approval must not send an order the operator rejected meanwhile (found by reading the code).

``approve_in_runner`` read the held order, ran the risk gate (which asks the broker for
positions: time passes) and then set the order to ``intent`` and sent it without looking
again. A ``bridge reject`` (or the page's Reject) landing in that window voided the order
in the ledger, and the approval then revived and sent it anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bridge.approvals import approve_in_runner, reject_held, request_approval
from bridge.errors import ControlError
from tests.fakegw import FakeGateway

from ._harness import BridgeHarness


def test_a_reject_during_the_approval_check_wins(harness: Callable[..., BridgeHarness], gw: FakeGateway) -> None:
    h = harness(seed=60, risk={"approval_threshold": 5_000.0, "market_hours": False})
    h.start()
    assert h.until(lambda: bool(h.orders()))
    [held] = h.orders()
    ref = held["order_ref"]
    assert held["status"] == "needs_approval"
    gate = h.runner.ctx.gate

    def gate_then_operator_rejects(*args: Any, **kwargs: Any) -> Any:
        decision = gate(*args, **kwargs)
        reject_held(h.ledger, ref, "cli (operator@host)", h.clock.now())  # the operator's reject lands meanwhile
        return decision

    h.runner.ctx.gate = gate_then_operator_rejects  # type: ignore[method-assign]
    result = approve_in_runner(h.runner.ctx, h.runner.decision.place, {"order_ref": ref, "by": "dashboard (someone)"})
    for _ in range(20):
        h.step(0.02)
    assert result.get("error") and "not held" in result["error"], result
    assert h.ledger.order(ref)["status"] == "void"
    assert gw.orders_received() == []  # never sent


def test_an_approval_the_bridge_did_not_answer_is_withdrawn(
    harness: Callable[..., BridgeHarness], gw: FakeGateway
) -> None:
    """``bridge approve`` that times out says the approval failed: the bridge must not send the
    order later when it gets round to the request (a wedged or restarted runner)."""
    h = harness(seed=60, risk={"approval_threshold": 5_000.0, "market_hours": False})
    h.start()
    assert h.until(lambda: bool(h.orders()))
    [held] = h.orders()
    ref = held["order_ref"]
    h.runner.ctx.heartbeat(force=True)  # alive, but not stepping: it does not answer
    with pytest.raises(ControlError) as err:
        request_approval(h.ledger, ref, "cli (operator@host)", h.clock.now(), "1d", timeout=0.3)
    assert "did not answer" in err.value.what
    for _ in range(20):
        h.step(0.02)
    assert h.ledger.order(ref)["status"] == "needs_approval" and gw.orders_received() == []
    [c] = h.ledger.control_log()
    assert c["command"] == "approve" and "withdrawn" in (c["result"] or "")  # the attempt stays on record
