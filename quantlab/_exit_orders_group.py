"""The order function of the shared-cash exits reference, written from the semantics file.

Research-only, like :mod:`quantlab._exit_orders` (whose per-symbol state and level helpers
it reuses, one :class:`~quantlab._exit_orders.ExitOrderFunc` per symbol): vectorbt's
flexible ``from_order_func`` with ``cash_sharing=True`` calls :meth:`GroupExitOrderFunc.__call__`
per bar for the whole group until it answers "no more orders", and keeps one cash balance.
One generator per bar walks docs/research.md's group order ("Exit rules in a shared-cash
group"):

1. every symbol's open: a protective exit the open gaps through, then a ``max_hold`` exit;
2. the strategies' market-on-open orders, sized from the group's equity at the decision
   close: every sell first (column order), then every buy, cut to the cash left then;
3. every symbol's working entry limit (buys cut to the cash left);
4. every symbol's intrabar stop (before its target); then the trailing marks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from quantlab._exit_orders import ExitOrderFunc, _sign
from quantlab.errors import QuantlabError
from quantlab.kernels.costs import commission_nb
from quantlab.kernels.sizing import affordable_buy_nb, target_shares_nb
from quantlab.replay_exit_rules import TICK, ExitRules, ExtraCosts


class NegativeCashError(QuantlabError):
    """A protective cover the group's cash cannot pay: the simulator fills it (an exit
    always closes) and the cash goes negative; vectorbt's simulator would reject it."""


class GroupExitOrderFunc:
    """Stateful flexible order function for one cash-sharing group.

    Arrays are (bars x symbols) over the replay window; ``prev_*`` hold bar ``k - 1``'s
    values at row ``k``. ``split``: the budget per symbol is the group's equity divided by
    the number of symbols (``all`` and ``vol_target`` sizing), else the whole equity.
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
        split: bool,
    ) -> None:
        m = close.shape[1]
        self.sym = [
            ExitOrderFunc(
                open_[:, c],
                high[:, c],
                low[:, c],
                close[:, c],
                prev_target[:, c],
                prev_close[:, c],
                prev_vol[:, c],
                cfg,
                slippage,
                rules,
                costs,
                1.0,
            )
            for c in range(m)
        ]
        self.cfg = self.sym[0].cfg  # slippage + half-spread in the slippage slot
        self.slip = self.sym[0].slip
        self.rules, self.costs, self.split = rules, costs, split
        self.exits: list[tuple[int, int, str]] = []  # (bar, column, rule) of every rule exit
        self._gen: Iterator[tuple[int, float, float]] | None = None

    def __call__(self, ctx: Any, *args: Any) -> tuple[int, Any]:
        from vectorbt.portfolio import nb

        if ctx.call_idx == 0:
            self._gen = self._bar(ctx.i, ctx.last_position, ctx.last_cash, ctx.group, ctx.from_col)
        assert self._gen is not None
        step = next(self._gen, None)
        if step is None:
            return -1, nb.order_nothing_nb()
        col, size, price = step
        fees = commission_nb(abs(size), price * (1 + self.slip if size > 0 else 1 - self.slip), self.cfg)
        if size < 0:
            fees += self.costs.sell_fees(-size, price * (1 - self.slip))
        elif size * price * (1 + self.slip) + fees > ctx.last_cash[ctx.group] + 1e-9 * abs(ctx.last_cash[ctx.group]):
            raise NegativeCashError(
                "the reference cannot fill a buy beyond the group's cash (vectorbt's simulator has no negative cash)",
                found=f"bar {ctx.i}, column {ctx.from_col + col}: {size:g} shares, cash {ctx.last_cash[ctx.group]:.2f}",
                fix="compare runs whose covers the cash pays (the simulator fills such an exit anyway)",
            )
        order = nb.order_nb(
            size=size, price=price, fixed_fees=fees, slippage=self.slip, allow_partial=False, raise_reject=True
        )
        return ctx.from_col + col, order

    def _exit(self, k: int, c: int, side: int, rule: str) -> None:
        self.sym[c]._rule_exit(k, side, rule)
        self.exits.append((k, c, rule))

    def _bar(
        self, k: int, position: np.ndarray, cash: np.ndarray, group: int, from_col: int
    ) -> Iterator[tuple[int, float, float]]:
        r, m = self.rules, len(self.sym)

        def pos(c: int) -> float:
            return float(position[from_col + c])

        def free_cash() -> float:
            return float(cash[group])

        equity = free_cash() + sum(pos(c) * f.prev_close[k] for c, f in enumerate(self.sym) if pos(c) != 0)
        budget = equity / m if self.split else equity
        # 1. every symbol's open: gap exits, then time exits
        for c, f in enumerate(self.sym):
            o = f.o[k]
            side = _sign(pos(c))
            if side and r.protective:
                stop, tp = f._levels(side)
                if side * (o - stop) <= 0 or side * (o - tp) >= 0:
                    yield c, -pos(c), o
                    self._exit(k, c, side, "stop-gap" if side * (o - stop) <= 0 else "target-gap")
            side = _sign(pos(c))
            if side and r.max_hold and k >= f.entry_bar + r.max_hold:
                yield c, -pos(c), o
                self._exit(k, c, side, "max_hold")
        # 2. the strategies' orders: decide all, then sells, then buys
        plans = [self._decide(k, f, budget, pos(c)) for c, f in enumerate(self.sym)]
        for selling in (True, False):
            for c, f in enumerate(self.sym):
                plan, o = plans[c], f.o[k]
                if plan is None:
                    continue
                kind, delta = plan
                if kind == "close":
                    if (delta < 0) == selling:
                        yield c, delta, o  # a reversal's old side; the new one enters by limit
                    continue
                if (delta < 0) != selling:
                    continue
                if delta > 0:
                    delta = affordable_buy_nb(delta, free_cash(), o, self.cfg)
                    if delta == 0:
                        continue
                else:
                    adj = o * (1 - self.slip)
                    fee = commission_nb(-delta, adj, self.cfg) + self.costs.sell_fees(-delta, adj)
                    if -delta * adj - fee < 0:
                        continue  # a sell whose costs exceed its proceeds is not sent
                before = pos(c)
                yield c, delta, o
                if _sign(pos(c)) != _sign(before) and pos(c) != 0:
                    f._opened(k, o, at_open=True)
        # 3. every symbol's working entry limit
        for c, f in enumerate(self.sym):
            if f.limit is None or pos(c) != 0:
                continue
            lim, shares, last_bar = f.limit
            side = _sign(shares)
            o, h, lo = f.o[k], f.h[k], f.l[k]
            reached = lo <= lim - r.limit_ticks * TICK if side > 0 else h >= lim + r.limit_ticks * TICK
            if k > last_bar:
                f.limit = None
            elif reached:
                price = min(o, lim) if side > 0 else max(o, lim)
                qty = affordable_buy_nb(shares, free_cash(), price, self.cfg) if side > 0 else shares
                f.limit = None
                if qty != 0:
                    yield c, qty, price
                    f._opened(k, price, at_open=price == o)
        # 4. every symbol's intrabar stop before its target; then the marks
        for c, f in enumerate(self.sym):
            h, lo = f.h[k], f.l[k]
            side = _sign(pos(c))
            if side and r.protective and (k > f.entry_bar or f.entry_at_open):
                stop, tp = f._levels(side)
                hit = f._protective_hit(side, stop, tp, math.nan, h, lo)
                if hit is not None:
                    yield c, -pos(c), hit[0]
                    self._exit(k, c, side, hit[1])
            side = _sign(pos(c))
            if side and k > f.entry_bar:
                f.mark = max(f.mark, h) if side > 0 else min(f.mark, lo)

    def _decide(self, k: int, f: ExitOrderFunc, budget: float, position: float) -> tuple[str, float] | None:
        """("close", -position) for a reversal's old side whose new side waits as a limit,
        ("market", delta) for a market order at the open, or None."""
        t = f.prev_target[k]
        if math.isnan(t) or t == f.last_target:
            return None
        if f.lock:
            if _sign(t) == f.lock:
                f.last_target = t  # still on the exited side: no re-entry
                return None
            f.lock = 0
        desired = target_shares_nb(t, budget, f.prev_close[k], f.prev_vol[k], self.cfg)
        if math.isnan(desired):
            return None
        f.last_target = t
        if f.limit is not None and _sign(desired) != _sign(f.limit[1]):
            f.limit = None  # the target returned to 0 (or flipped) before the limit filled
        if self.rules.limit_entries and desired != 0 and _sign(desired) != _sign(position):
            side = _sign(desired)
            ref = f.prev_close[k]
            f.limit = (ref * (1 - side * self.rules.entry_limit), desired, k - 1 + self.rules.limit_expiry)
            return ("close", -position) if position != 0 else None
        delta = desired - position
        return ("market", delta) if delta != 0 else None
