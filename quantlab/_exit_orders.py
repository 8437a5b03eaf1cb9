"""The order function of the exits reference replay, written from the semantics file only.

Research-only. vectorbt's flexible ``from_order_func`` calls :meth:`ExitOrderFunc.__call__`
repeatedly per bar until it answers "no more orders"; vectorbt does the cash, position and
value accounting of every order itself. One Python generator per bar walks the rules in
their stated order (docs/research.md, "Exit and entry rules"):

1. at the open: a protective exit the open gaps through (at the open), a ``max_hold`` exit,
   then the strategy's market-on-open order from the previous close's target;
2. a working entry limit (fills when the low reaches limit - ticks, at min(open, limit));
3. intrabar: stop (at its level) before target (at its level) for a position open after
   steps 1-2, except one a limit filled intrabar in this bar; then the trailing mark takes
   this bar's high (from the bar after the fill bar on).

After any rule exit the position stays flat until the target goes to 0 or changes sign.
Sizing and commission use the shared kernels (:mod:`quantlab.kernels.sizing`,
:mod:`quantlab.kernels.costs`): they are checked elsewhere; the exit logic is not shared.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from quantlab.kernels.costs import commission_nb
from quantlab.kernels.layout import C_SLIPPAGE
from quantlab.kernels.sizing import affordable_buy_nb, target_shares_nb
from quantlab.replay_exit_rules import TICK, ExitRules, ExtraCosts


def _sign(x: float) -> int:
    return int(x > 0) - int(x < 0)


class ExitOrderFunc:
    """Stateful flexible order function for one column (one symbol, one parameter set).

    Arrays cover the replay window; ``prev_target``/``prev_close``/``prev_vol`` hold bar
    ``k - 1``'s values at index ``k`` (NaN before the data starts). ``cfg`` is the
    simulation vector for the shared sizing and commission kernels; ``slippage`` is the
    fraction from the settings.
    """

    def __init__(
        self,
        open_: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        prev_target: np.ndarray,
        prev_close: np.ndarray,
        prev_vol: np.ndarray,
        cfg: np.ndarray,
        slippage: float,
        rules: ExitRules,
        costs: ExtraCosts,
        bars_per_year: float,
        vbt_timing: bool = False,
    ) -> None:
        self.o, self.h, self.l, self.c = open_, high, low, close
        self.prev_target, self.prev_close, self.prev_vol = prev_target, prev_close, prev_vol
        # slippage + half-spread, from the settings (not from ``cfg``, whose slippage slot
        # may already hold the engine's own concession)
        self.slip = slippage + costs.half_spread_bps / 1e4
        self.cfg = cfg.copy()
        self.cfg[C_SLIPPAGE] = self.slip  # the spread is paid like slippage on every fill
        self.rules, self.costs = rules, costs
        self.bars_per_year = bars_per_year
        # True: vectorbt from_signals' timing instead of ours (only for cross-checking with it):
        # no stop check in the fill bar, and a stop hit in a bar replaces that bar's signal.
        self.vbt_timing = vbt_timing
        self.borrow = np.zeros(len(close))  # borrow charged at each close
        self.last_target = math.nan
        self.lock = 0  # side of the last rule exit: no re-entry on that side until 0 / flip
        self.entry_price = math.nan
        self.entry_bar = -1
        self.entry_at_open = False
        self.mark = math.nan  # high-water (long) / low-water (short) mark
        self.limit: tuple[float, float, int] | None = None  # (price, signed shares, last bar)
        self.exits: list[tuple[int, str]] = []  # (bar, rule) of every rule exit
        self._gen: Iterator[tuple[float, float]] | None = None
        self._paid = 0.0

    # -- vectorbt interface -------------------------------------------------------------
    def __call__(self, ctx: Any, *args: Any) -> tuple[int, Any]:
        from vectorbt.portfolio import nb

        col = ctx.from_col
        if ctx.call_idx == 0:
            self._gen = self._bar(ctx.i, ctx.last_position, ctx.last_cash, col)
        assert self._gen is not None
        step = next(self._gen, None)
        if step is None:
            return -1, nb.order_nothing_nb()
        size, price = step
        fees = commission_nb(abs(size), price * (1 + self.slip if size > 0 else 1 - self.slip), self.cfg)
        if size < 0:
            fees += self.costs.sell_fees(-size, price * (1 - self.slip))
        order = nb.order_nb(
            size=size, price=price, fixed_fees=fees, slippage=self.slip, allow_partial=False, raise_reject=True
        )
        return col, order

    # -- the rules ----------------------------------------------------------------------
    def _levels(self, side: int) -> tuple[float, float]:
        """(stop, target) for a position on ``side``; NaN where the rule is off."""
        r, e = self.rules, self.entry_price
        stop = math.nan
        if r.on("sl_stop"):
            stop = e * (1 - side * r.sl_stop)
        if r.on("sl_trail"):
            trail = self.mark * (1 - side * r.sl_trail)
            stop = trail if math.isnan(stop) else (max(stop, trail) if side > 0 else min(stop, trail))
        tp = e * (1 + side * r.tp_stop) if r.on("tp_stop") else math.nan
        return stop, tp

    def _opened(self, k: int, price: float, at_open: bool) -> None:
        self.entry_price, self.entry_bar, self.entry_at_open, self.mark = price, k, at_open, price

    def _rule_exit(self, k: int, side: int, rule: str) -> None:
        self.lock = side
        self.exits.append((k, rule))
        self.limit = None

    def _bar(self, k: int, position: np.ndarray, cash: np.ndarray, col: int) -> Iterator[tuple[float, float]]:
        r = self.rules
        o, h, lo = self.o[k], self.h[k], self.l[k]

        def pos() -> float:
            return float(position[col])

        def free_cash() -> float:
            return float(cash[col]) - self._paid

        equity_prev = free_cash() + (pos() * self.prev_close[k] if pos() != 0 else 0.0)
        if self.vbt_timing and _sign(pos()) and r.protective:
            # vectorbt from_signals: a stop hit in this bar replaces the bar's signal
            side = _sign(pos())
            stop, tp = self._levels(side)
            hit = self._protective_hit(side, stop, tp, o, h, lo, vbt_order=True)
            if hit is not None:
                yield -pos(), hit[0]
                self._rule_exit(k, side, hit[1])
                t = self.prev_target[k]
                if not math.isnan(t):
                    self.last_target = t
                    if _sign(t) != side:
                        self.lock = 0  # this bar's target already left the exited side
                return
        # 1a. a protective exit the open gaps through fills at the open
        side = _sign(pos())
        if side and r.protective:
            stop, tp = self._levels(side)
            if side * (o - stop) <= 0 or side * (o - tp) >= 0:
                yield -pos(), o
                self._rule_exit(k, side, "stop-gap" if side * (o - stop) <= 0 else "target-gap")
        # 1b. time exit
        side = _sign(pos())
        if side and r.max_hold and k >= self.entry_bar + r.max_hold:
            yield -pos(), o
            self._rule_exit(k, side, "max_hold")
        # 1c. the strategy's market-on-open order (or a new entry limit)
        yield from self._strategy_order(k, o, equity_prev, pos, free_cash)
        # 2. a working entry limit
        if self.limit is not None and pos() == 0:
            lim, shares, last_bar = self.limit
            side = _sign(shares)
            reached = lo <= lim - r.limit_ticks * TICK if side > 0 else h >= lim + r.limit_ticks * TICK
            if k > last_bar:
                self.limit = None
            elif reached:
                price = min(o, lim) if side > 0 else max(o, lim)
                qty = affordable_buy_nb(shares, free_cash(), price, self.cfg) if side > 0 else shares
                self.limit = None
                if qty != 0:
                    yield qty, price
                    self._opened(k, price, at_open=price == o)
        # 3. intrabar: stop before target
        side = _sign(pos())
        if side and r.protective and (k > self.entry_bar or (self.entry_at_open and not self.vbt_timing)):
            stop, tp = self._levels(side)
            hit = self._protective_hit(side, stop, tp, math.nan, h, lo)
            if hit is not None:
                yield -pos(), hit[0]
                self._rule_exit(k, side, hit[1])
        side = _sign(pos())
        if side and k > self.entry_bar:
            self.mark = max(self.mark, h) if side > 0 else min(self.mark, lo)
        if side < 0 and self.costs.borrow_rate:
            self.borrow[k] = self.costs.borrow_rate * -pos() * self.c[k] / self.bars_per_year
            self._paid += self.borrow[k]

    @staticmethod
    def _protective_hit(
        side: int, stop: float, tp: float, o: float, h: float, lo: float, vbt_order: bool = False
    ) -> tuple[float, str] | None:
        """(fill price, rule) of the first protective exit in a bar, or None.

        Ours: the open first (stop, then target, gapped through), then intrabar stop before
        target. ``vbt_order``: vectorbt's order (the stop at the open or intrabar, then the
        target), which prices an intrabar stop even when the open gapped through the target.
        A NaN open skips the gap checks (the open was already handled).
        """
        stop_gap = side * (o - stop) <= 0
        tp_gap = side * (o - tp) >= 0
        stop_in = (lo <= stop) if side > 0 else (h >= stop)
        tp_in = (h >= tp) if side > 0 else (lo <= tp)
        checks = (
            [(stop_gap, o, "stop-gap"), (stop_in, stop, "stop"), (tp_gap, o, "target-gap"), (tp_in, tp, "target")]
            if vbt_order
            else [(stop_gap, o, "stop-gap"), (tp_gap, o, "target-gap"), (stop_in, stop, "stop"), (tp_in, tp, "target")]
        )
        for hit, price, rule in checks:
            if hit:
                return price, rule
        return None

    def _strategy_order(self, k, o, equity_prev, pos, free_cash):  # type: ignore[no-untyped-def]
        t = self.prev_target[k]
        if math.isnan(t) or t == self.last_target:
            return
        if self.lock:
            if _sign(t) == self.lock:
                self.last_target = t  # still on the exited side: no re-entry
                return
            self.lock = 0
        desired = target_shares_nb(t, equity_prev, self.prev_close[k], self.prev_vol[k], self.cfg)
        if math.isnan(desired):
            return
        self.last_target = t
        if self.limit is not None and _sign(desired) != _sign(self.limit[1]):
            self.limit = None  # the target returned to 0 (or flipped) before the limit filled
        position = pos()
        if self.rules.limit_entries and desired != 0 and _sign(desired) != _sign(position):
            if position != 0:
                yield -position, o  # close at the open; the new side enters by limit
            ref = self.prev_close[k]
            side = _sign(desired)
            self.limit = (ref * (1 - side * self.rules.entry_limit), desired, k - 1 + self.rules.limit_expiry)
            return
        delta = desired - position
        if delta > 0:
            delta = affordable_buy_nb(delta, free_cash(), o, self.cfg)
        if delta == 0:
            return
        if delta < 0:
            adj = o * (1 - self.slip)
            fee = commission_nb(-delta, adj, self.cfg) + self.costs.sell_fees(-delta, adj)
            if -delta * adj - fee < 0:
                return  # a sell whose costs exceed its proceeds is not sent (as the simulator)
        new = position + delta
        yield delta, o
        if _sign(new) != _sign(position) and new != 0:
            self._opened(k, o, at_open=True)
