"""Time exits and limit entries on the IB broker against the fake gateway (issue 12): the
runner's max_hold exit and research's limit entries (with their bracket children) give the
engine simulator's orders on real SPY bars, through the real ib_async client and socket."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bridge import parity
from bridge.protection import exits_for_run
from quantlab.engine.intervals import get_interval
from quantlab.engine.params import resolve_params
from quantlab.engine.registry import get_strategy
from tests.fakegw import FakeGateway

from ._harness import BridgeHarness


def quiet(h: BridgeHarness) -> bool:
    """Every order acknowledged by the gateway and every fill recorded (resting limits and
    protective children stay open, so the harness's ``settled`` never holds here)."""
    unacked = h.ledger.rows("SELECT 1 FROM orders WHERE status IN ('intent', 'sent')")
    unrecorded = h.ledger.rows(
        "SELECT 1 FROM orders o WHERE o.filled - COALESCE((SELECT SUM(f.quantity) FROM fills f"
        " WHERE f.order_ref = o.order_ref), 0) > 1e-9"
    )
    return not unacked and not unrecorded


def run(h: BridgeHarness, n: int) -> None:
    h.start()
    assert h.until(lambda: h.decided(29) and quiet(h))
    h.close_bar(30)
    for i in range(31, n):
        h.open_bar(i)
        assert h.until(lambda i=i: h.decided(i - 1) and quiet(h)), f"no decision on bar {i - 1}"
        h.close_bar(i)
        assert h.until(lambda i=i: h.runner.windows["SPY"].forming.close == float(h.frame["close"].iloc[i]))
        assert h.until(lambda: quiet(h))


def simulated(h: BridgeHarness, frame: pd.DataFrame, params: str) -> pd.DataFrame:
    spec = exits_for_run(get_strategy("sma_cross"), params, "paper")
    resolved = resolve_params(spec, params, get_interval("1d"))
    rules = {p.name: resolved[p.name] for p in spec.exit_params}
    return parity.simulated_orders(spec, resolved, frame, "SPY", h.cfg.sim_config(100_000.0), get_interval("1d"), rules)


@pytest.fixture
def timed_harness(
    fake_gateway_factory: Callable[..., FakeGateway], tmp_path: Path
) -> Iterator[Callable[..., tuple[BridgeHarness, FakeGateway]]]:
    """A harness whose fake gateway stamps executions with the runner's manual clock: max_hold
    counts bars from the entry's execution time, as IB reports it live."""
    made: list[BridgeHarness] = []

    def make(frame: pd.DataFrame, **sections: Any) -> tuple[BridgeHarness, FakeGateway]:
        box: dict[str, BridgeHarness] = {}
        gw = fake_gateway_factory(cash=100_000.0, clock=lambda: box["h"].clock.now().to_pydatetime())
        h = box["h"] = BridgeHarness(gw, frame, tmp_path / f"l{len(made)}.sqlite", 30, **sections)
        made.append(h)
        return h, gw

    yield make
    for h in made:
        h.close()


@pytest.mark.parametrize(
    "params", ["fast=10,slow=30,max_hold=5", "fast=10,slow=30,entry_limit=0.003,limit_expiry=2,sl_stop=0.03"]
)
def test_max_hold_on_the_fake_gateway_equals_the_simulator(
    timed_harness: Callable[..., tuple[BridgeHarness, FakeGateway]], spy_daily: pd.DataFrame, params: str
) -> None:
    frame = spy_daily.iloc[:220]
    h, _ = timed_harness(frame, strategy={"params": params})
    run(h, len(frame))
    ours = [o for o in h.orders() if o["status"] == "filled"]
    theirs = simulated(h, frame, params)
    assert len(ours) == len(theirs) >= 4
    if "max_hold" in params:
        timed = [o for o in ours if o["purpose"] == "time_exit"]
        assert len(timed) >= 2 and all(o["reason"].startswith("max_hold 5 bars") for o in timed)
    else:  # limit entries that filled, one that expired, and a stop that fired
        entries = [o for o in h.orders() if o["order_type"] == "LMT" and not o["role"]]
        assert {"filled", "cancelled"} <= {o["status"] for o in entries}
        assert any(o["role"] == "stop" for o in ours)
    tick = 0.01 if "stop" in params else 1e-9
    for o, (_, t) in zip(ours, theirs.iterrows(), strict=True):
        assert (1 if o["side"] == "BUY" else -1) * o["filled"] == t["size"]
        assert o["avg_fill_price"] == pytest.approx(t["price"], abs=tick)
