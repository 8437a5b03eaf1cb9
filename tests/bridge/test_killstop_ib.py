"""The kill switch never strips a position's protective orders, on the fake gateway over real
sockets (issue 12 item 5): without flatten the runner cancels its other orders one by one
(cancelOrder, no reqGlobalCancel) and the bracket's stop and target keep working at IB;
``bridge stop`` under another client id keeps them too and reports the orders it cannot cancel;
with flatten the children go first and a stop that fills during the cancel wait shrinks the
flatten (ledger == broker)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bridge.cli import cli
from bridge.risk import OrderIntent
from bridge.runtime.killswitch import kill
from tests.fakegw import FakeGateway
from tests.fakegw.policy import FillPolicy

from ._harness import BridgeHarness
from .test_reattach_ib import PARAMS, _close_restarts, protected, working  # noqa: F401  (autouse fixture)

H = Callable[..., BridgeHarness]
GLOBAL_CANCEL, CANCEL = 58, 4


def resting(h: BridgeHarness, gw: FakeGateway, ref: str = "ql:test:SPY:rest") -> str:
    """A working order of the runner that is not a protective child (it never fills)."""
    gw.script(FillPolicy.rest(), order_ref=ref)
    ctx = h.runner.ctx
    intent = OrderIntent("SPY", "BUY", 1, 400.0)
    ctx.ledger.insert_order(ctx.order_row(intent, ref, None, "intent", None, None, "test"), h.clock.now())
    h.runner.decision.place(intent, ref, None)
    assert h.until(lambda: ref in working(gw) and h.ledger.order(ref)["status"] == "working")
    return ref


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={k: "" for k in os.environ if k.startswith("BRIDGE_")})


def test_bridge_stop_help_says_protective_orders_are_kept() -> None:
    text = " ".join(invoke("stop", "--help").stdout.split())
    assert "Without --flatten the protective orders of open positions" in text and "kept protective orders" in text
    assert "their protective orders are cancelled first; without --flatten they are kept" in text


def stop(h: BridgeHarness, flatten: bool) -> dict[str, Any]:
    return kill(h.runner.ctx, "operator", flatten=flatten, kind="manual_stop", tag=h.clock.now())


def test_the_runners_stop_without_flatten_keeps_the_bracket_working_at_ib(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60, strategy={"params": PARAMS})
    ref, qty = protected(h)
    other = resting(h, gw)
    result = stop(h, flatten=False)
    assert h.until(lambda: h.ledger.order(other)["status"] == "cancelled")
    assert set(working(gw)) == {f"{ref}:sl", f"{ref}:tp"}
    assert gw.received(msg_id=GLOBAL_CANCEL) == [] and len(gw.received(msg_id=CANCEL)) == 1
    assert [k["order_ref"] for k in result["kept"]] == [f"{ref}:sl", f"{ref}:tp"]
    assert result["kept_text"].startswith(f"kept protective orders: {ref}:sl (SELL {qty:g} SPY)")
    assert {k["status"] for k in h.ledger.children(ref)} == {"working"}
    assert any(a["kind"] == "protection_kept" for a in h.notifier.sent)
    # a later reconcile while latched adopts them, sends nothing and cancels nothing
    n = len(gw.orders_received())
    h.runner.ctx.state.next_check = 0.0
    h.step()
    assert len(gw.orders_received()) == n and set(working(gw)) == {f"{ref}:sl", f"{ref}:tp"}


def test_bridge_stop_under_another_client_id_keeps_the_bracket_and_reports_what_it_cannot_cancel(
    harness: H, gw: FakeGateway
) -> None:
    from bridge.app import stop_bridge

    h = harness(seed=60, strategy={"params": PARAMS})
    ref, _ = protected(h)
    other = resting(h, gw)
    h.runner.close()
    out = invoke("stop", "--ledger", str(h.ledger.path), "--timeout", "1")  # client id 7 + 1
    assert out.exit_code == 3, out.stderr  # an order was NOT cancelled: the operator has to act
    assert f"bridge stop: kept protective orders: {ref}:sl (SELL" in out.stderr
    assert f"bridge stop: {other} NOT cancelled: client id 7 owns it" in out.stderr
    result = json.loads(out.stdout)
    assert set(working(gw)) == {f"{ref}:sl", f"{ref}:tp", other}
    assert gw.received(msg_id=GLOBAL_CANCEL) == []
    assert [(o["order_ref"], o["client_id"]) for o in result["not_cancelled"]] == [(other, 7)]
    assert "bridge stop --client-id 7" in result["not_cancelled"][0]["fix"]
    assert [k["order_ref"] for k in result["kept"]] == [f"{ref}:sl", f"{ref}:tp"]
    # the fix it names: the owner's client id cancels it one by one, the bracket stays
    again = stop_bridge(h.cfg, flatten=False, shutdown=False, client_id=7, timeout=1.0)
    assert "not_cancelled" not in again and set(working(gw)) == {f"{ref}:sl", f"{ref}:tp"}


@pytest.mark.parametrize("part", [0.0, 0.25])
def test_stop_with_flatten_cancels_the_bracket_first_and_a_stop_filled_meanwhile_is_not_sold_again(
    harness: H, gw: FakeGateway, part: float
) -> None:
    h = harness(seed=60, strategy={"params": PARAMS})
    ref, qty = protected(h)
    sold = float(int(qty * part))
    real = h.broker.cancel_all

    def stop_fills_first() -> None:  # the market reaches the stop while the cancel is on its way
        if sold:
            gw.fill_order(f"{ref}:sl", qty=sold)
        real()

    h.broker.cancel_all = stop_fills_first  # type: ignore[method-assign]
    result = stop(h, flatten=True)
    assert gw.received(msg_id=GLOBAL_CANCEL)
    [flat] = [o for o in result["orders"] if "order_ref" in o]
    assert flat["quantity"] == qty - sold and result["kept"] == []
    assert h.until(lambda: h.ledger.order(flat["order_ref"])["status"] == "filled")
    assert working(gw) == {} and gw.position("SPY")[0] == 0.0
    assert h.until(lambda: h.ledger.expected_positions()["SPY"] == 0.0)


def test_bridge_stop_through_the_running_runner_answers_which_orders_it_kept(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60, strategy={"params": PARAMS})
    ref, qty = protected(h)
    cid = h.ledger.request_control("stop", {"flatten": False, "by": "test"}, h.clock.now(), "test")
    assert h.until(lambda: (h.ledger.control(cid) or {}).get("result"))
    answer = json.loads(h.ledger.control(cid)["result"])
    assert answer["kept_text"] == f"kept protective orders: {ref}:sl (SELL {qty:g} SPY), {ref}:tp (SELL {qty:g} SPY)"
    assert set(working(gw)) == {f"{ref}:sl", f"{ref}:tp"} and h.ledger.risk_state().kill_switch
