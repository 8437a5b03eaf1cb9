"""``bridge run --replay``: bundled bars through the very same pipeline, no IB needed.

Kernel, sizing, risk gate, ledger and the runner are the live ones; only the broker
(:class:`~bridge.brokers.sim.SimBroker`) and the clock (:class:`~bridge.clock.ManualClock`) are
simulated. Each bar opens (completing the previous bar: decide, fill market orders at
this open with the configured slippage and IB commission), then closes. The first
``lookback`` bars are the seeded history. The kernel always sees the whole history from
the first bar (``history_bars`` = all), so the orders equal the backtest's on the same
bars: :func:`compare_with_backtest` checks it.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bridge import parity
from bridge.brokers.factory import make_broker
from bridge.brokers.sim import ReplayDriver, SimBroker
from bridge.clock import ManualClock
from bridge.config import BridgeConfig
from bridge.errors import BridgeConfigError
from bridge.ledger import queries
from bridge.ledger.store import Ledger
from bridge.live_signal import lookback
from bridge.market import MarketCalendar
from bridge.ops.notify import Notifier
from bridge.protection import exits_for_run, rules_of
from bridge.runtime.runner import Runner
from bridge.runtime.time_exits import timed_rules
from quantlab.engine.exits import check_shorting
from quantlab.engine.intervals import get_interval
from quantlab.engine.params import resolve_params
from quantlab.engine.registry import get_strategy
from quantlab.engine.signals import price_arrays
from quantlab.engine.strategy import StrategySpec
from quantlab.errors import ParameterError


@dataclass
class ReplayResult:
    ledger_path: Path
    bars: int
    orders: pd.DataFrame
    final_cash: float
    final_equity: float
    positions: dict[str, float]
    metrics: dict[str, float]
    parity: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "ledger": str(self.ledger_path),
            "bars": self.bars,
            "orders": len(self.orders),
            "final_cash": self.final_cash,
            "final_equity": self.final_equity,
            "positions": self.positions,
            "metrics": self.metrics,
            "parity": self.parity,
        }


def load_frames(
    symbols: list[str], bar: str, start: str | None, end: str | None, data: Mapping[str, pd.DataFrame] | None
) -> dict[str, pd.DataFrame]:
    """Bars per symbol from ``data`` or the bundled store, clipped to [start, end]."""
    from quantlab import data as qdata

    out: dict[str, pd.DataFrame] = {}
    for s in symbols:
        frame = data[s] if data is not None and s in data else qdata.load(s, interval=bar)
        frame = frame[["open", "high", "low", "close", "volume"]]
        if start is not None:
            frame = frame[frame.index >= pd.Timestamp(start, tz="UTC")]
        if end is not None:
            frame = frame[frame.index <= pd.Timestamp(end, tz="UTC")]
        out[s] = frame
    return out


def run_replay(
    cfg: BridgeConfig,
    *,
    start: str | None = None,
    end: str | None = None,
    cash: float = 100_000.0,
    data: Mapping[str, pd.DataFrame] | None = None,
    spec: StrategySpec | None = None,
    check: bool = True,
) -> ReplayResult:
    """Replay bars through the runner with a simulated broker; see the module docstring."""
    need_stop = cfg.risk.require_stop or cfg.risk.max_loss_per_trade > 0
    spec = exits_for_run(
        spec or get_strategy(cfg.strategy.name),
        cfg.strategy.params,
        "replay",
        require_stop=need_stop,
        limit_orders=cfg.orders.type == "limit",
        allow_short=cfg.sizing.allow_short,
        limit_band=cfg.risk.limit_band_pct,
    )
    params = resolve_params(spec, cfg.strategy.params or None, get_interval(cfg.strategy.bar))
    symbols = [s.upper() for s in cfg.strategy.symbols]
    interval = get_interval(cfg.strategy.bar)
    frames = load_frames(symbols, interval.name, start, end, data)
    warm = lookback(spec, params)
    exits = rules_of(spec, params)
    timed = timed_rules(spec, params)  # max_hold, entry_limit...: the runner times them (bridge/runtime/time_exits.py)
    if (
        exits or timed
    ):  # a strategy's negative targets are read as flat without allow_short: its exits would not mean what it meant
        try:
            check_shorting(
                spec,
                [price_arrays(f, s) for s, f in frames.items()],
                params,
                cfg.sizing.allow_short,
                [exits["tp_stop"]] if "tp_stop" in exits else [],
            )
        except ParameterError as err:
            # research's fix names Sizing(allow_short=True); a bridge user sets it in bridge.toml
            fix = (
                "set allow_short = true under [sizing] in bridge.toml, or drop the exit rules from --params"
                if not cfg.sizing.allow_short
                else err.fix
            )
            raise BridgeConfigError(err.what, found=err.found, fix=fix) from None
    index = pd.DatetimeIndex(sorted(set().union(*[set(f.index) for f in frames.values()])))
    if len(index) <= warm + 1:
        raise BridgeConfigError(
            "too few bars to replay", found=f"{len(index)} bars, lookback {warm}", fix="widen --start/--end"
        )
    calendar = MarketCalendar(cfg.data.calendar)

    def open_time(t: pd.Timestamp) -> pd.Timestamp:
        if interval.minutes:
            return t
        return pd.Timestamp(calendar.cal.session_open(pd.Timestamp(t.date())))

    clock = ManualClock(open_time(index[warm - 1]))
    path = (
        Path(cfg.ledger.path) if cfg.ledger.path else Path(tempfile.mkdtemp(prefix="bridge-replay-")) / "ledger.sqlite"
    )
    cfg = dataclasses.replace(
        cfg,
        mode="replay",
        data=dataclasses.replace(cfg.data, history_bars=len(index) + 1),
        ledger=dataclasses.replace(
            cfg.ledger, path=str(path), synchronous="NORMAL" if not cfg.ledger.path else cfg.ledger.synchronous
        ),
    )
    if path.exists() and queries.has_decisions(Ledger(path)):
        raise BridgeConfigError(
            "a replay needs a fresh ledger",
            found=str(path),
            fix="pass a new --ledger path (or none: a temporary one is used)",
        )
    broker = make_broker(cfg, clock=clock, cash=cash, symbols=symbols)
    assert isinstance(broker, SimBroker), "mode=replay always builds the simulated broker"
    if "entry_limit" in timed:  # research's limit entries fill by its rule (limit_ticks included)
        broker.use_bar_limits(timed["limit_ticks"])
    ReplayDriver(broker, frames, warm, clock.set, open_time)
    ledger = Ledger(path, synchronous=cfg.ledger.synchronous)
    runner = Runner(
        cfg, broker, ledger, clock=clock, notifier=Notifier(cfg.notify, background=False), spec=spec, calendar=calendar
    )
    try:
        runner.start()
        runner.run(poll=0.0)
    finally:
        runner.close("replay_done")
    orders = pd.DataFrame(queries.all_orders(ledger))
    account = broker.account()
    result = ReplayResult(
        path,
        len(index),
        orders,
        account.cash,
        account.net_liquidation,
        {s: p.quantity for s, p in broker.positions().items()},
        dict(runner.metrics),
    )
    ledger.close()
    if check and len(symbols) == 1:
        result.parity = parity.compare(spec, params, frames, cfg.sim_config(cash), interval, orders, {**exits, **timed})
    return result
