"""Reference replay of exit rules for a shared-cash group through vectorbt (research only).

vectorbt's ``Portfolio.from_order_func`` with ``cash_sharing=True``, ``group_by=True`` and
``flexible=True`` (several orders per symbol and bar, any column in any order), driven by
:class:`quantlab._exit_orders_group.GroupExitOrderFunc`; vectorbt does the group's cash,
position and value accounting of every fill. ``from_signals`` with ``cash_sharing=True``
is not used: besides the single-symbol timing differences (docs/research.md, "vectorbt's
stop semantics vs ours") it orders a bar's calls by its call sequence only, one order per
symbol, so a gap exit and an entry of the same symbol at one open cannot both happen.

Not imported by the engine or the bridge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantlab._exit_orders_group import GroupExitOrderFunc
from quantlab.engine.intervals import Interval
from quantlab.engine.settings import SimConfig
from quantlab.engine.signals import PriceArrays
from quantlab.engine.sizing import sizing_vol
from quantlab.errors import QuantlabError
from quantlab.replay_exit_rules import ExitRules, ExtraCosts


@dataclass(frozen=True)
class GroupExitReplay:
    """vectorbt's cash-sharing portfolio of one group replay; ``exits`` lists
    ``(bar, column, rule)`` of every rule exit."""

    pf: Any
    exits: list[tuple[int, int, str]]

    def fills(self) -> list[tuple[int, int, float, float]]:
        """(bar, column, fill price after slippage, signed quantity) of every order, in order."""
        rec = self.pf.orders.records
        sign = np.where(rec["side"] == 0, 1.0, -1.0)
        return [
            (int(i), int(c), float(p), float(s))
            for i, c, p, s in zip(rec["idx"], rec["col"], rec["price"], rec["size"] * sign, strict=True)
        ]


def _shifted(a: np.ndarray) -> np.ndarray:
    """``a[k - 1]`` at row k, NaN on the first row."""
    out = np.full(a.shape, np.nan)
    out[1:] = a[:-1]
    return out


def replay_exits_group(
    targets: np.ndarray,
    prices: Sequence[PriceArrays],
    sim: SimConfig,
    interval: Interval,
    rules: ExitRules,
    costs: ExtraCosts | None = None,
    vol: np.ndarray | None = None,
) -> GroupExitReplay:
    """Replay (bars x symbols) ``targets`` on ``prices`` (one per symbol, the same
    timestamps) with ``rules`` as one cash-sharing group in vectorbt.

    ``vol`` (bars x symbols) is the sizing volatility (default: each symbol's own, over
    these bars). Short borrow is refused: vectorbt has no cash flow outside orders.
    """
    import vectorbt as vbt

    costs = costs or ExtraCosts()
    if costs.borrow_rate:
        raise QuantlabError("the group reference does not model short borrow", found=costs.borrow_rate, fix="use 0")
    index = prices[0].index
    if any(not p.index.equals(index) for p in prices):
        raise QuantlabError("the group's symbols must share their timestamps", fix="align the bars first")

    def stack(name: str) -> np.ndarray:
        return np.column_stack([getattr(p, name) for p in prices]).astype(np.float64)

    close = stack("close")
    if vol is None:
        vol = np.column_stack([sizing_vol(p, sim, interval) for p in prices])
    func = GroupExitOrderFunc(
        stack("open"),
        stack("high"),
        stack("low"),
        close,
        _shifted(np.asarray(targets, dtype=np.float64)),
        _shifted(close),
        _shifted(np.asarray(vol, dtype=np.float64)),
        sim.to_array(),
        sim.costs.slippage_bps / 1e4,
        rules,
        costs,
        split=sim.sizing.mode in ("all", "vol_target"),
    )
    pf = vbt.Portfolio.from_order_func(
        pd.DataFrame(close, index=index, columns=[p.symbol for p in prices]),
        func,
        flexible=True,
        use_numba=False,
        cash_sharing=True,
        group_by=True,
        init_cash=float(sim.init_cash),
        freq=interval.freq,
        max_orders=4 * len(index) * len(prices) + 1,
    )
    return GroupExitReplay(pf, func.exits)
