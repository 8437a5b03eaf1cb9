"""Issue 9, chaos seeds 4, 18, 19, 23, 35 and 40: an order adopted from another client id.

No live update (status or execution) of another client's order reaches this client, and
this client cannot cancel it. So the runner polls the broker while one is open (its fill is
recorded: seed 40 lost one), a decision it blocks polls once more, and a symbol blocked on a
second bar halts with a critical alert naming the order, its client id and the fix (the
position could not converge and nothing said so).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from bridge.runtime.oversight import ADOPTED_POLL
from tests.fakegw import FakeGateway, FillPolicy

from ._harness import BridgeHarness
from .test_client_change import _restart

H = Callable[..., BridgeHarness]
FLIP = {"name": "tests/bridge/flip_strategy.py", "params": "", "symbols": ("SPY",)}


def _zigzag(spy_daily: pd.DataFrame) -> pd.DataFrame:
    """Closes 100/101 alternating: the flip strategy wants long after odd bars, flat after even ones."""
    f = spy_daily.iloc[:70].copy()
    close = np.where(np.arange(len(f)) % 2 == 1, 101.0, 100.0)
    f["close"] = close
    f["open"] = np.concatenate(([100.0], close[:-1]))
    f["high"] = np.maximum(f["open"], f["close"]) + 0.2
    f["low"] = np.minimum(f["open"], f["close"]) - 0.2
    return f


def _adopted(harness: H, gw: FakeGateway, spy_daily: pd.DataFrame) -> tuple[BridgeHarness, str]:
    """Client 7 buys on bar 59, the order rests; the runner restarts as client 27 and adopts it."""
    gw.script(FillPolicy.rest(), symbol="SPY")
    h = harness(seed=60, frame=_zigzag(spy_daily), strategy=FLIP)
    h.start()
    assert h.until(lambda: bool(h.orders()) and h.orders()[0]["status"] == "working")
    ref = h.orders()[0]["order_ref"]
    assert h.orders()[0]["side"] == "BUY"
    h.runner.close()
    h2 = _restart(h, gw, 27)
    h2.runner.start()
    assert h2.runner.ctx.state.adopted == {ref: 7}
    return h2, ref


def _complete(h: BridgeHarness, i: int) -> None:
    """Bar ``i`` closes and bar ``i + 1`` opens: the runner decides bar ``i``."""
    h.close_bar(i)
    h.open_bar(i + 1)
    assert h.until(lambda: h.decided(i)), f"no decision on bar {i}"


def _verdicts(h: BridgeHarness) -> list[str]:
    return [r["verdict"] for r in h.ledger.rows("SELECT verdict FROM decisions ORDER BY id")]


def test_fill_of_an_adopted_order_is_recorded_without_waiting_for_the_periodic_check(
    harness: H, gw: FakeGateway, spy_daily: pd.DataFrame
) -> None:
    """Seed 40: the adopted order filled; reconcile.check_every is 300 s, so the ledger missed it
    (broker 98, ledger 0, not halted)."""
    h2, ref = _adopted(harness, gw, spy_daily)
    gw.fill_order(ref, price=100.0)
    assert h2.until(lambda: h2.ledger.order(ref)["status"] == "filled" and h2.settled(), timeout=ADOPTED_POLL + 3)
    assert [f["order_ref"] for f in h2.ledger.fills()] == [ref]
    assert gw.position("SPY")[0] == h2.ledger.expected_positions()["SPY"] == h2.ledger.order(ref)["quantity"]
    assert not h2.runner.ctx.state.adopted
    assert not h2.ledger.risk_state().halted
    h2.close()


def test_a_decision_blocked_by_an_adopted_order_that_filled_meanwhile_trades(
    harness: H, gw: FakeGateway, spy_daily: pd.DataFrame
) -> None:
    h2, ref = _adopted(harness, gw, spy_daily)
    qty = h2.ledger.order(ref)["quantity"]
    gw.fill_order(ref, price=100.0)
    _complete(h2, 60)  # flat wanted: the BUY is done, so the SELL goes out
    assert h2.until(lambda: h2.settled() and len(h2.orders()) == 2)
    sell = h2.orders()[1]
    assert (sell["side"], sell["quantity"], sell["status"]) == ("SELL", qty, "filled")
    assert gw.position("SPY")[0] == h2.ledger.expected_positions()["SPY"] == 0.0
    assert "blocked" not in _verdicts(h2) and not h2.ledger.risk_state().halted
    h2.close()


def test_a_symbol_blocked_by_an_adopted_order_on_two_bars_halts_and_says_how_to_fix_it(
    harness: H, gw: FakeGateway, spy_daily: pd.DataFrame
) -> None:
    """Seeds 4, 18, 19, 23, 35: the symbol stayed blocked for good and the runner said nothing."""
    h2, ref = _adopted(harness, gw, spy_daily)
    _complete(h2, 60)  # flat wanted, the adopted BUY still works: blocked, not halted yet
    assert _verdicts(h2)[-1] == "blocked" and not h2.ledger.risk_state().halted
    _complete(h2, 61)  # long again: target unchanged (hold)
    _complete(h2, 62)  # flat wanted again, still blocked: halt
    rs = h2.ledger.risk_state()
    assert rs.halted
    for part in (ref, "client id 7", "TWS", "bridge stop", "--client-id 7", "bridge resume"):
        assert part in rs.reason, part
    alerts = [a for a in h2.notifier.sent if a["kind"] == "adopted_order_blocks"]
    assert [a["level"] for a in alerts] == ["critical"] and ref in alerts[0]["message"]
    assert gw.received(msg_id=4, client_id=27) == []  # never a cancelOrder for another client's order
    assert [o.order_ref for o in gw.orders_received()] == [ref]  # and nothing new sent

    gw.fill_order(ref, price=100.0)  # halted, still polled: the fill is recorded
    assert h2.until(lambda: h2.ledger.order(ref)["status"] == "filled" and h2.settled(), timeout=ADOPTED_POLL + 3)
    assert gw.position("SPY")[0] == h2.ledger.expected_positions()["SPY"]
    assert len([a for a in h2.notifier.sent if a["kind"] == "adopted_order_blocks"]) == 1
    h2.close()
