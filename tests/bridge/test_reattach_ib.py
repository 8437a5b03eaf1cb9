"""Protective orders survive a crash on the fake gateway, over real sockets (issue 12 item 5): the
reconcile on reconnect and restart re-attaches a child the broker lost (once), adopts what the
broker holds (also under another client id, never re-sent or cancelled), cancels a child resting on
a flat symbol, resizes after a partial exit, and a restart with everything in order sends nothing."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest

from bridge.risk import OrderIntent
from tests.fakegw import FakeGateway
from tests.fakegw.policy import FillPolicy

from ._harness import BridgeHarness

H = Callable[..., BridgeHarness]
PARAMS = "fast=20,slow=50,sl_stop=0.05,tp_stop=0.1"


def entries(h: BridgeHarness) -> list[dict[str, Any]]:
    return [o for o in h.orders() if o["role"] is None]


def calm(h: BridgeHarness) -> bool:
    unrecorded = h.ledger.rows(
        "SELECT 1 FROM orders o WHERE o.filled - COALESCE((SELECT SUM(f.quantity) FROM fills f"
        " WHERE f.order_ref = o.order_ref), 0) > 1e-9"
    )
    return not [o for o in h.ledger.open_orders() if o["role"] is None] and not unrecorded


def protected(h: BridgeHarness) -> tuple[str, float]:
    """Start, let the entry fill with its bracket working at the gateway; (entry ref, position)."""
    h.start()
    assert h.until(lambda: bool(entries(h)) and entries(h)[0]["status"] == "filled" and calm(h))
    ref = entries(h)[0]["order_ref"]
    assert h.until(lambda: {k["status"] for k in h.ledger.children(ref)} == {"working"})
    return ref, gw_position(h)


def gw_position(h: BridgeHarness) -> float:
    return h.gw.position("SPY")[0]


def sent(gw: FakeGateway) -> list[str]:
    return [r.order_ref for r in gw.orders_received() if not r.is_modify]


def working(gw: FakeGateway) -> dict[str, Any]:
    return {v.order_ref: v for v in gw.orders() if v.status in ("Submitted", "PreSubmitted")}


_LEFT: list[BridgeHarness] = []


@pytest.fixture(autouse=True)
def _close_restarts() -> Iterator[None]:
    """Runners started by :func:`restart` are closed even when a test fails (a live client would
    linger on the shared event loop)."""
    yield
    while _LEFT:
        h = _LEFT.pop()
        with contextlib.suppress(Exception):
            h.close()


def restart(h: BridgeHarness, gw: FakeGateway, client_id: int | None = None) -> BridgeHarness:
    """The bridge process ends and a new one starts on the same ledger (optionally as another client)."""
    h.runner.close()
    cid = client_id or h.cfg.gateway.client_id
    deadline = time.monotonic() + 3
    while cid in gw.connected_clients() and time.monotonic() < deadline:
        time.sleep(0.01)
    cfg = dataclasses.replace(h.cfg, gateway=dataclasses.replace(h.cfg.gateway, client_id=cid))
    h2 = BridgeHarness(gw, h.frame, h.ledger.path, h.k, cfg=cfg, reseed=False)
    h2.clock.set(h.clock.now() + pd.Timedelta(seconds=30))
    _LEFT.append(h2)
    h2.runner.start()
    return h2


def reconnect(h: BridgeHarness, gw: FakeGateway, meanwhile: Callable[[], None] = lambda: None) -> None:
    gw.pause_accepting()
    gw.drop_connections()
    assert h.until(lambda: h.runner.state == "disconnected", timeout=3)
    meanwhile()
    gw.resume_accepting()
    assert h.until(lambda: h.runner.state == "ready", timeout=8)


def test_a_child_cancelled_while_away_is_reattached_once_at_ib(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60, strategy={"params": PARAMS})
    ref, qty = protected(h)
    reconnect(h, gw, lambda: gw.cancel_order(f"{ref}:sl", reason="cancelled in TWS"))
    assert h.until(lambda: f"{ref}:sl~1" in working(gw))
    stop = working(gw)[f"{ref}:sl~1"]
    row = h.ledger.order(f"{ref}:sl~1")
    assert (stop.quantity, stop.oca_group, stop.aux_price) == (qty, f"{ref}:oca", row["aux_price"])
    assert row["aux_price"] == h.ledger.order(f"{ref}:sl")["aux_price"]  # the same level, from the entry's fill
    assert h.ledger.order(f"{ref}:sl")["status"] == "cancelled"
    reconnect(h, gw)  # a second reconcile: held, never sent again
    h.runner.ctx.state.next_check = 0.0
    h.step()
    h2 = restart(h, gw)
    assert not h2.until(lambda: sent(gw).count(f"{ref}:sl~1") > 1, timeout=1.0)
    assert sent(gw).count(f"{ref}:sl~1") == 1 and not [r for r in sent(gw) if r.endswith("~2")]
    assert set(working(gw)) == {f"{ref}:tp", f"{ref}:sl~1"}
    # the re-attached stop and the old target are one OCA group: the stop fills, the target goes
    o = float(h.frame["open"].iloc[60])
    low = float(row["aux_price"]) - 1.0
    gw.push_bar("SPY", {"time": h.frame.index[60].tz_localize(None), "open": o, "high": o, "low": low, "close": low})
    assert gw_position(h2) == 0.0 and working(gw) == {}


def test_a_restart_and_a_gateway_restart_with_everything_in_order_send_nothing(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60, strategy={"params": PARAMS})
    ref, _ = protected(h)
    before_sent, before_rows = len(gw.orders_received()), h.ledger.rows("SELECT * FROM orders ORDER BY rowid")
    events = len(h.ledger.rows("SELECT * FROM order_events"))
    h2 = restart(h, gw)
    reconnect(h2, gw, lambda: gw.restart(next_order_id=1))  # ids reused; transmitted orders survive at IB
    h2.runner.ctx.state.next_check = 0.0
    h2.step()
    assert len(gw.orders_received()) == before_sent
    after_rows = h2.ledger.rows("SELECT * FROM orders ORDER BY rowid")
    # (the entry's updated_at moves: IB replays its execution at the connect; recorded once, no event)
    assert len(after_rows) == len(before_rows)
    changed = [{k for k in r if r[k] != b[k]} - {"updated_at"} for r, b in zip(after_rows, before_rows, strict=True)]
    assert changed == [set()] * len(before_rows)
    assert len(h2.ledger.rows("SELECT * FROM order_events")) == events
    assert set(working(gw)) == {f"{ref}:sl", f"{ref}:tp"} and not h2.runner.ctx.state.unprotected


def test_another_clients_children_are_adopted_never_resent_nor_cancelled(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60, strategy={"params": PARAMS})
    ref, _ = protected(h)
    n = len(gw.orders_received())
    h2 = restart(h, gw, client_id=27)  # e.g. after IB error 326: client 7's children keep working
    assert not h2.until(lambda: len(gw.orders_received()) > n, timeout=1.0)
    assert {k["status"] for k in h2.ledger.children(ref)} == {"working"}
    assert not h2.ledger.risk_state().halted and not h2.runner.ctx.state.unprotected


def exit_behind_the_childrens_back(h: BridgeHarness, qty: float) -> None:
    """An exit outside the strategy's path (the children are not cancelled first): its fill, or at
    the latest the next reconcile, resizes or cancels them."""
    ctx = h.runner.ctx
    intent = OrderIntent("SPY", "SELL", qty, float(h.frame["open"].iloc[60]))
    ref = f"ql:test:SPY:exit{qty:g}"
    ctx.ledger.insert_order(ctx.order_row(intent, ref, None, "intent", None, None, "test exit"), h.clock.now())
    h.runner.decision.place(intent, ref, None)
    assert h.until(lambda: calm(h) and gw_position(h) == h.ledger.expected_positions()["SPY"])


def test_a_child_on_a_flat_symbol_is_cancelled_and_a_partial_exit_resizes_at_ib(harness: H, gw: FakeGateway) -> None:
    h = harness(seed=60, strategy={"params": PARAMS})
    ref, qty = protected(h)
    part = float(int(qty // 3))
    exit_behind_the_childrens_back(h, part)
    h.runner.reconciler.run("periodic")
    assert h.until(lambda: {v.quantity for v in working(gw).values()} == {qty - part})
    assert {h.ledger.order(f"{ref}:{k}")["quantity"] for k in ("sl", "tp")} == {qty - part}
    mods = [r for r in gw.orders_received() if r.is_modify and r.order_ref == f"{ref}:sl"]
    assert mods and mods[-1].quantity == qty - part  # the same order, modified (not cancel and replace)
    exit_behind_the_childrens_back(h, qty - part)
    h.runner.reconciler.run("periodic")
    assert h.until(lambda: working(gw) == {})
    assert h.until(lambda: {h.ledger.order(f"{ref}:{k}")["status"] for k in ("sl", "tp")} == {"cancelled"})
    assert gw_position(h) == 0.0 and not [r for r in sent(gw) if "~" in r]


def test_a_reattach_ib_rejects_alerts_and_is_retried_at_once(harness: H, gw: FakeGateway) -> None:
    """IB rejects asynchronously (orderStatus Inactive + 201): the runner's rejection path marks
    the symbol unprotected (critical alert, entries refused) and re-attaches at once under a new
    ref, which lifts it; a first rejection of the role never flattens."""
    h = harness(seed=60, strategy={"params": PARAMS})
    ref, qty = protected(h)
    gw.script(FillPolicy.reject("stop price too far"), order_ref=f"{ref}:sl~1")
    reconnect(h, gw, lambda: gw.cancel_order(f"{ref}:sl", reason="cancelled in TWS"))
    ctx = h.runner.ctx
    assert h.until(lambda: f"{ref}:sl~2" in working(gw) and not ctx.state.unprotected)
    failed = [a for a in h.notifier.sent if a["kind"] == "protection_failed"]
    assert len(failed) == 1 and failed[0]["level"] == "critical" and "stop price too far" in failed[0]["message"]
    assert any(a["kind"] == "protection_restored" for a in h.notifier.sent)
    assert sent(gw).count(f"{ref}:sl~1") == sent(gw).count(f"{ref}:sl~2") == 1
    assert not h.ledger.risk_state().kill_switch and gw_position(h) == qty


def test_a_child_the_ledger_lost_is_adopted_from_ib_not_resent(harness: H, gw: FakeGateway) -> None:
    """A ledger restored from an older backup lacks the children IB holds: adopted with IB's own
    level and OCA group, never re-sent, never a mismatch."""
    h = harness(seed=60, strategy={"params": PARAMS})
    ref, qty = protected(h)
    stop = h.ledger.order(f"{ref}:sl")["aux_price"]
    h.ledger.db.execute("DELETE FROM orders WHERE order_ref = ?", (f"{ref}:sl",))
    n = len(gw.orders_received())
    h2 = restart(h, gw)
    assert not h2.until(lambda: len(gw.orders_received()) > n, timeout=1.0)
    row = h2.ledger.order(f"{ref}:sl")
    assert row is not None and (row["status"], row["role"], row["quantity"]) == ("working", "stop", qty)
    assert (row["aux_price"], row["oca_group"], row["parent_ref"]) == (stop, f"{ref}:oca", ref)
    assert not h2.ledger.risk_state().halted and any(a["kind"] == "protect_adopted" for a in h2.notifier.sent)


def test_a_partly_filled_entry_is_cut_to_its_fill_and_protected_at_the_next_reconcile(
    harness: H, gw: FakeGateway
) -> None:
    """IB keeps a bracket's children inactive until the parent fills completely: an entry held
    partly filled leaves its shares unprotected. The reconcile cancels the entry's remainder (its
    children go with it) and re-attaches lone children for the shares bought (chaos invariant 8)."""
    h = harness(seed=60, strategy={"params": PARAMS})
    gw.script(FillPolicy.auto(pieces=2, partial=1), symbol="SPY", once=True)
    h.start()
    assert h.until(lambda: bool(entries(h)) and float(entries(h)[0]["filled"] or 0) > 0)
    ref = entries(h)[0]["order_ref"]
    bought = gw_position(h)
    assert 0 < bought < float(entries(h)[0]["quantity"])
    h.runner.ctx.state.next_check = 0.0  # the periodic reconcile
    assert h.until(lambda: f"{ref}:sl~1" in working(gw), timeout=8)
    stop, target = working(gw)[f"{ref}:sl~1"], working(gw)[f"{ref}:tp~1"]
    assert (stop.quantity, target.quantity, stop.oca_group) == (bought, bought, f"{ref}:oca")
    assert stop.aux_price == h.ledger.order(f"{ref}:sl~1")["aux_price"]
    assert h.ledger.order(ref)["status"] == "cancelled" and gw_position(h) == bought
    assert {h.ledger.order(f"{ref}:{r}")["status"] for r in ("sl", "tp")} == {"cancelled"}
    assert set(working(gw)) == {f"{ref}:sl~1", f"{ref}:tp~1"}
