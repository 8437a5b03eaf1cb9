"""Drive a real Runner against the fake IB Gateway, in-process, bar by bar.

The fake runs in its own thread; the runner (real ``ib_async`` client, real socket)
runs in the test's thread, so the test interleaves: move the manual clock, push a bar
at the fake, then step the runner until a condition holds. Nothing waits on wall time
except the bounded ``until`` loops (conditions, not timings, are asserted).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from bridge.brokers.ib import IBBroker
from bridge.clock import ManualClock
from bridge.config import BridgeConfig, load_config
from bridge.ledger.store import Ledger
from bridge.market import MarketCalendar
from bridge.ops.notify import Notifier
from bridge.runtime.runner import Runner
from quantlab.engine.intervals import get_interval
from tests.fakegw import FakeGateway

CALENDAR = MarketCalendar()


def bridge_config(gw: FakeGateway | None, ledger_path: Path, **sections: Mapping[str, Any]) -> BridgeConfig:
    """A test configuration: fast reconnects, short waits, strategy sma_cross on SPY by default."""
    over: dict[str, dict[str, Any]] = {
        "strategy": {"name": "sma_cross", "symbols": ("SPY",), "params": "fast=20,slow=50", "bar": "1d"},
        "gateway": {
            "port": gw.port if gw else 4002,
            "client_id": 7,
            "connect_timeout": 2.0,
            "connect_attempts": 1,
            "backoff_initial": 0.05,
            "backoff_max": 0.2,
            "request_timeout": 5.0,
        },
        "orders": {"cancel_wait": 2.0},
        "costs": {"slippage_bps": 0.0},
        "ledger": {"path": str(ledger_path), "synchronous": "NORMAL"},  # durability is tested in test_ledger.py
        "data": {"history_bars": 2000},
    }
    for section, values in sections.items():
        over.setdefault(section, {}).update(values)
    return load_config(overrides=over, env={})


def daily(frame: pd.DataFrame) -> pd.DataFrame:
    """UTC-midnight daily bars -> the naive dates the fake gateway expects."""
    out = frame[["open", "high", "low", "close", "volume"]].copy()
    out.index = pd.DatetimeIndex(out.index).tz_localize(None)
    return out


def for_fake(frame: pd.DataFrame, intraday: bool) -> pd.DataFrame:
    """Bars as the fake gateway takes them: naive dates for daily bars, aware times intraday."""
    return frame[["open", "high", "low", "close", "volume"]].copy() if intraday else daily(frame)


def until(step: Callable[[], None], predicate: Callable[[], object], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        step()
    return True


class BridgeHarness:
    """A runner on ``frame`` (UTC daily bars) with the first ``seed`` bars seeded at the fake."""

    def __init__(
        self,
        gw: FakeGateway,
        frame: pd.DataFrame,
        ledger_path: Path,
        seed: int,
        *,
        cfg: BridgeConfig | None = None,
        symbol: str = "SPY",
        reseed: bool = True,
        **sections: Mapping[str, Any],
    ) -> None:
        self.gw = gw
        self.frame = frame
        self.symbol = symbol
        self.k = seed  # next bar to push
        self.cfg = cfg or bridge_config(gw, ledger_path, **sections)
        self.interval = get_interval(self.cfg.strategy.bar)
        self.intraday = self.interval.minutes > 0
        if reseed:
            gw.seed_bars(symbol, for_fake(frame.iloc[:seed], self.intraday))
        self.clock = ManualClock(self.due(seed - 1) - pd.Timedelta(hours=12))
        self.ledger = Ledger(ledger_path, synchronous=self.cfg.ledger.synchronous)
        self.broker = IBBroker(self.cfg.gateway)
        self.notifier = Notifier(self.cfg.notify, background=False)
        self.runner = Runner(
            self.cfg, self.broker, self.ledger, clock=self.clock, notifier=self.notifier, calendar=CALENDAR
        )

    def due(self, i: int) -> pd.Timestamp:
        return CALENDAR.due(self.frame.index[i], self.interval)

    def _stamp(self, i: int) -> pd.Timestamp:
        t = self.frame.index[i]
        return t if self.intraday else t.tz_localize(None)

    def start(self, open_next: bool = True) -> Runner:
        """Open bar ``k`` (completing the seeded history) and start the runner at that moment."""
        if open_next:
            self.clock.set(self.due(self.k - 1) + pd.Timedelta(seconds=1))
            self._push_open(self.k)
        self.runner.start()
        return self.runner

    def _push_open(self, i: int) -> None:
        o = float(self.frame["open"].iloc[i])
        self.gw.push_bar(self.symbol, {"time": self._stamp(i), "open": o, "high": o, "low": o, "close": o})

    def open_bar(self, i: int | None = None, *, late: float = 1.0) -> None:
        """Bar ``i`` opens (``late`` seconds after its due time): completes bar ``i - 1``."""
        i = self.k if i is None else i
        self.clock.set(self.due(i - 1) + pd.Timedelta(seconds=late))
        self._push_open(i)
        self.k = i

    def close_bar(self, i: int | None = None) -> None:
        """Bar ``i`` gets its final values (the runner only sees a forming-bar update)."""
        i = self.k if i is None else i
        row = self.frame.iloc[i]
        self.gw.push_bar(
            self.symbol,
            {"time": self._stamp(i), **{c: float(row[c]) for c in ("open", "high", "low", "close", "volume")}},
        )
        self.k = i + 1

    def step(self, timeout: float = 0.02) -> None:
        self.runner.step(timeout)

    def until(self, predicate: Callable[[], object], timeout: float = 5.0) -> bool:
        return until(self.step, predicate, timeout)

    def decided(self, i: int) -> bool:
        """The runner recorded its decision on bar ``i``."""
        t = self.frame.index[i].isoformat()
        return bool(self.ledger.rows("SELECT 1 FROM decisions WHERE bar_time = ? AND symbol = ?", (t, self.symbol)))

    def settled(self) -> bool:
        """No order of ours is still open and every filled quantity has its executions recorded.

        IB sends the ``Filled`` order status before the execution details, so an order can be
        closed in the ledger a moment before its fills (and the fill alerts) arrive.
        """
        unrecorded = self.ledger.rows(
            "SELECT 1 FROM orders o WHERE o.filled - COALESCE((SELECT SUM(f.quantity) FROM fills f"
            " WHERE f.order_ref = o.order_ref), 0) > 1e-9"
        )
        return not self.ledger.open_orders() and not unrecorded

    def advance(self, i: int) -> None:
        """Open bar ``i`` and wait for the decision on ``i - 1`` and its orders to settle, then close ``i``."""
        self.open_bar(i)
        assert self.until(lambda: self.decided(i - 1) and self.settled()), f"no decision on bar {i - 1}"
        self.close_bar(i)
        assert self.until(
            lambda: (
                (f := self.runner.windows[self.symbol].forming) is not None
                and f.close == float(self.frame["close"].iloc[i])
            )
        )

    def orders(self) -> list[dict[str, Any]]:
        return self.ledger.rows("SELECT * FROM orders ORDER BY created_at, rowid")

    def close(self) -> None:
        try:
            self.runner.close()
        finally:
            self.ledger.close()


def with_sections(cfg: BridgeConfig, **changes: Mapping[str, Any]) -> BridgeConfig:
    parts = {name: dataclasses.replace(getattr(cfg, name), **values) for name, values in changes.items()}
    return dataclasses.replace(cfg, **parts)
