"""Reference replay of exit and entry rules through vectorbt (research wrappers only).

Independent of the simulator it checks: it takes the strategy's target array and the rules
and lets vectorbt do the accounting of every fill.

- :func:`replay_exits` runs all our rules through ``Portfolio.from_order_func`` (flexible,
  several orders per bar) with the order function of :mod:`quantlab._exit_orders`, which is
  written from the semantics in docs/research.md only.
- :func:`replay_stops_signals` runs the subset vectorbt's own ``from_signals`` stop engine
  can express (``sl_stop`` or ``sl_trail``, ``tp_stop``; cash sizing; percent fees) with the
  settings that come closest to our rules. Two timing rules still differ (docs/research.md,
  "vectorbt's stop semantics vs ours"); ``replay_exits(..., vbt_timing=True)`` switches
  exactly those two, and the tests check it equals ``from_signals``, which checks the
  order function's stop machinery against vectorbt's.

Neither is imported by the engine or the bridge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantlab._exit_orders import ExitOrderFunc
from quantlab.engine.intervals import Interval
from quantlab.engine.settings import SimConfig
from quantlab.engine.signals import PriceArrays
from quantlab.engine.sizing import sizing_vol
from quantlab.errors import QuantlabError
from quantlab.replay import vbt_metrics
from quantlab.replay_exit_rules import ExitRules, ExtraCosts


@dataclass(frozen=True)
class ExitReplay:
    """vectorbt's portfolio of one replay, plus what vectorbt cannot hold.

    ``value`` is vectorbt's value less the short borrow charged so far (vectorbt 1.2.0 has
    no cash flows outside orders); ``exits`` lists ``(bar, rule)`` of every rule exit,
    bars counted from the window start.
    """

    pf: Any
    value: pd.Series
    borrow: np.ndarray
    exits: list[tuple[int, str]]

    def fills(self) -> list[tuple[int, float, float]]:
        """(bar, fill price after slippage, signed quantity) of every order, in order."""
        rec = self.pf.orders.records
        sign = np.where(rec["side"] == 0, 1.0, -1.0)
        return [
            (int(i), float(p), float(s)) for i, p, s in zip(rec["idx"], rec["price"], rec["size"] * sign, strict=True)
        ]

    def metrics(self, interval: Interval) -> pd.DataFrame:
        """Our metrics computed by vectorbt (:func:`quantlab.replay.vbt_metrics`)."""
        if self.borrow.any():
            raise QuantlabError(
                "vectorbt's metrics do not include short borrow",
                found=float(self.borrow.sum()),
                fix="compare ExitReplay.value, or replay with borrow_rate=0",
            )
        return vbt_metrics(self.pf, interval)


def _shifted(a: np.ndarray, start: int, end: int) -> np.ndarray:
    """``a[k - 1]`` for k in [start, end), NaN before the first bar."""
    out = np.full(end - start, np.nan)
    lo = max(start, 1)
    out[lo - start :] = a[lo - 1 : end - 1]
    return out


def replay_exits(
    target: np.ndarray,
    prices: PriceArrays,
    sim: SimConfig,
    interval: Interval,
    rules: ExitRules,
    costs: ExtraCosts | None = None,
    start: int = 0,
    end: int | None = None,
    vbt_timing: bool = False,
) -> ExitReplay:
    """Replay ``target`` with ``rules`` over bars ``[start, end)`` in vectorbt.

    The account starts flat with ``sim.init_cash`` at ``start`` and may act there on the
    target of bar ``start - 1``, as the simulator does.
    """
    import vectorbt as vbt

    end = len(prices) if end is None else end
    costs = costs or ExtraCosts()
    vol = sizing_vol(prices, sim, interval)
    sl = slice(start, end)
    func = ExitOrderFunc(
        prices.open[sl],
        prices.high[sl],
        prices.low[sl],
        prices.close[sl],
        _shifted(np.asarray(target, dtype=np.float64), start, end),
        _shifted(prices.close, start, end),
        _shifted(vol, start, end),
        sim.to_array(),
        sim.costs.slippage_bps / 1e4,
        rules,
        costs,
        interval.bars_per_year,
        vbt_timing=vbt_timing,
    )
    close = pd.Series(prices.close[sl], index=prices.index[sl], name=prices.symbol)
    pf = vbt.Portfolio.from_order_func(
        close,
        func,
        flexible=True,
        use_numba=False,
        init_cash=float(sim.init_cash),
        freq=interval.freq,
        max_orders=4 * (end - start) + 1,
    )
    value = pf.value() - np.cumsum(func.borrow)
    return ExitReplay(pf, value, func.borrow, func.exits)


def replay_stops_signals(
    target: np.ndarray,
    prices: PriceArrays,
    sim: SimConfig,
    interval: Interval,
    rules: ExitRules,
    start: int = 0,
    end: int | None = None,
) -> Any:
    """vectorbt ``from_signals`` with its own stop engine, set up to match our rules.

    Representable: long-only or long/short targets in {-1, 0, 1}, ``sl_stop`` or ``sl_trail``
    (not both: vectorbt has one stop-loss), ``tp_stop``; ``cash`` sizing (path-independent
    share counts: ``floor(cash / previous close)``); the percent cost model. Settings:
    ``price=open`` with entries shifted one bar (our next-open execution),
    ``stop_entry_price=Price`` (the raw fill price before slippage), ``stop_exit_price=
    StopMarket`` (fill at the stop level or the gapped open, with slippage),
    ``upon_stop_exit=Close`` and no accumulation (a still-long target does not re-enter).
    """
    import vectorbt as vbt
    from vectorbt.portfolio.enums import StopEntryPrice, StopExitMode, StopExitPrice

    _check_signal_subset(rules, sim)
    end = len(prices) if end is None else end
    tgt = _shifted(np.asarray(target, dtype=np.float64), start, end)
    held = pd.Series(tgt).ffill().to_numpy()
    before = np.concatenate([[np.nan], held[:-1]])
    side = np.sign(np.nan_to_num(held))
    side_before = np.sign(np.nan_to_num(before))
    changed = side != side_before
    long_entries = changed & (side > 0)
    short_entries = changed & (side < 0)
    exits = changed & (side == 0)
    prev_close = _shifted(prices.close, start, end)
    whole = sim.sizing.whole_shares
    size = sim.sizing.value / prev_close
    size = np.floor(size) if whole else size
    size = np.nan_to_num(size)
    sl = slice(start, end)
    stop = rules.sl_trail if rules.on("sl_trail") else (rules.sl_stop if rules.on("sl_stop") else np.nan)
    return vbt.Portfolio.from_signals(
        pd.Series(prices.close[sl], index=prices.index[sl], name=prices.symbol),
        entries=long_entries,
        exits=exits & (side_before > 0),
        short_entries=short_entries,
        short_exits=exits & (side_before < 0),
        size=size,
        size_type="amount",
        price=prices.open[sl],
        open=prices.open[sl],
        high=prices.high[sl],
        low=prices.low[sl],
        fees=sim.costs.pct_fee,
        fixed_fees=sim.costs.fixed_fee,
        slippage=sim.costs.slippage_bps / 1e4,
        sl_stop=stop,
        sl_trail=rules.on("sl_trail"),
        tp_stop=rules.tp_stop if rules.on("tp_stop") else np.nan,
        stop_entry_price=StopEntryPrice.Price,
        stop_exit_price=StopExitPrice.StopMarket,
        upon_stop_exit=StopExitMode.Close,
        accumulate=False,
        init_cash=float(sim.init_cash),
        freq=interval.freq,
    )


def _check_signal_subset(rules: ExitRules, sim: SimConfig) -> None:
    problems = []
    if rules.on("sl_stop") and rules.on("sl_trail"):
        problems.append("sl_stop with sl_trail (vectorbt has one stop-loss)")
    if rules.max_hold or rules.limit_entries:
        problems.append("max_hold / entry_limit (no such rules in from_signals)")
    if sim.sizing.mode != "cash":
        problems.append(f"sizing {sim.sizing.mode!r} (from_signals sizes at the fill, not at the previous close)")
    if sim.costs.model != "percent":
        problems.append(f"cost model {sim.costs.model!r} (per-share commission with min/cap)")
    if problems:
        raise QuantlabError(
            "these rules are not representable in vectorbt from_signals",
            found="; ".join(problems),
            fix="use replay_exits (from_order_func) for them",
        )
