"""Parity on the fake gateway with stated intrabar paths (issue 12 item 6).

A runner (real ``ib_async`` client over 127.0.0.1, :class:`BridgeHarness`) trades bars the
fake gateway streams; each bar's prices walk a path the test states, and the fills the gateway
makes along it are compared with the engine simulator's (``bridge/parity.py``, the kernel the
backtest and the sweep use) on the same bars, params, costs and exit rules.

**The path of a bar (the mapping both sides model).** Research does not know the order of the
high and the low inside a bar, so it takes the pessimistic one: a stop wins a bar that touches
both stop and target. The path that makes that true at the gateway depends on the position
held while the bar trades: ``open -> low -> high -> close`` for a long (and when flat: nothing
rests), ``open -> high -> low -> close`` for a short. The open itself is a gap from the previous
close (a level the open gaps through fills at the open on both sides). The harness reads the
gateway's position once the bar has opened and its market orders filled, then walks the rest.

**Timing.** Bar ``i`` first opens (an open-only bar: the runner decides on bar ``i - 1`` and its
market order fills at that open, like research's next-open fill, no slippage on either side);
the harness waits until the runner has recorded everything and moved its children to levels
from the fill, then the bar completes along its path. A fill belongs to the bar during which
the gateway made it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from bridge import parity
from bridge.protection import children, exits_for_run, rules_of, split_ref
from quantlab.engine.intervals import get_interval
from quantlab.engine.params import resolve_params
from quantlab.engine.registry import get_strategy
from quantlab.engine.strategy import StrategySpec

from ._harness import BridgeHarness

TICK = 0.01
#: A child's ledger role -> the simulator's exit reason (an order without a role is the strategy's).
REASON_OF_ROLE = {None: "signal", "stop": "stop", "take_profit": "target", "trail": "trail"}
#: orders purpose -> reason for orders without a role (a max_hold exit is the bridge's time exit)
REASON_OF_PURPOSE = {"time_exit": "time"}
_DONE = ("Filled", "Cancelled", "ApiCancelled", "Inactive")


def pessimistic_path(row: Mapping[str, float], position: float) -> list[float]:
    """The bar's prices in the order that makes a stop win a two-sided bar for ``position``."""
    o, h, low, c = (float(row[k]) for k in ("open", "high", "low", "close"))
    return [o, h, low, c] if position < 0 else [o, low, h, c]


class PathRun:
    """Drive ``h`` from its seeded history to bar ``end - 1``; :meth:`fills` says what filled when."""

    def __init__(self, h: BridgeHarness) -> None:
        self.h = h
        self.exits = strategy_of(h)[2]
        self.bar_of: dict[str, int] = {}  # exec_id -> index of the bar it filled in
        self.paths: dict[int, list[float]] = {}

    # --- driving --------------------------------------------------------------------------
    def run(self, end: int, timeout: float = 10.0) -> None:
        h = self.h
        first = h.k
        h.start()
        self._settle(first - 1, first, timeout)
        self._complete(first, timeout)
        for i in range(first + 1, end):
            h.open_bar(i)
            self._settle(i - 1, i, timeout)
            self._complete(i, timeout)

    def _complete(self, i: int, timeout: float) -> None:
        h = self.h
        row = h.frame.iloc[i]
        qty, _ = h.gw.position(h.symbol)
        path = pessimistic_path(row, qty)
        self.paths[i] = path
        h.gw.push_bar(
            h.symbol,
            {"time": h._stamp(i), **{c: float(row[c]) for c in ("open", "high", "low", "close", "volume")}},
            ticks=path,
        )
        h.k = i + 1
        self._mark(i)
        assert h.until(
            lambda: (f := h.runner.windows[h.symbol].forming) is not None and f.close == float(row["close"]), timeout
        ), f"the runner never saw bar {i} complete"
        assert h.until(self.settled, timeout), f"bar {i}: not settled: {self.unsettled()}"

    def _settle(self, decided: int, bar: int, timeout: float) -> None:
        h = self.h
        assert h.until(lambda: h.decided(decided) and self.settled(), timeout), (
            f"no settled decision on bar {decided}: {self.unsettled()}"
        )
        self._mark(bar)

    def _mark(self, i: int) -> None:
        for e in self.h.gw.executions():
            self.bar_of.setdefault(e.exec_id, i)

    # --- the ledger caught up with the gateway ----------------------------------------------
    def settled(self) -> bool:
        return not self.unsettled()

    def unsettled(self) -> list[str]:
        """What the runner has not recorded or done yet (empty: it caught up with the gateway)."""
        h, out = self.h, []
        recorded = {r["exec_id"] for r in h.ledger.rows("SELECT exec_id FROM fills")}
        out += [
            f"execution {e.exec_id} of {e.order_ref} not in the ledger"
            for e in h.gw.executions()
            if e.exec_id not in recorded
        ]
        at_gw = {o.order_ref: o for o in h.gw.orders()}
        for row in h.ledger.open_orders():
            ref, role = row["order_ref"], row.get("role")
            if not role:
                out.append(f"order {ref} still open in the ledger")
                continue
            o = at_gw.get(ref)
            if o is None or o.status in _DONE:
                out.append(f"child {ref} open in the ledger, {o.status if o else 'unknown'} at the gateway")
                continue
            want = self._level(row)
            key = "limit_price" if role == "take_profit" else "aux_price"
            have = o.lmt_price if role == "take_profit" else o.aux_price
            if want is not None and (row[key] != want or have != want):
                out.append(f"child {ref} at {have} (ledger {row[key]}), not yet at {want} from the entry fill")
        live = {r["order_ref"] for r in h.ledger.open_orders()}
        out += [
            f"{ref} working at the gateway, closed in the ledger"
            for ref, o in at_gw.items()
            if o.status not in _DONE and ref not in live
        ]
        return out

    def _level(self, row: Mapping[str, Any]) -> float | None:
        """The child's level measured from its parent's fill (research's rule), None for a trail."""
        if row["role"] == "trail":
            return None
        parent = self.h.ledger.order(str(row["parent_ref"] or split_ref(row["order_ref"])[0]))  # type: ignore[index]
        if parent is None or parent["status"] != "filled":
            return None
        key = "limit_price" if row["role"] == "take_profit" else "aux_price"
        new = {c["role"]: c for c in children(parent, self.exits, float(parent["avg_fill_price"]))}
        return new[row["role"]][key]

    # --- results --------------------------------------------------------------------------
    def fills(self) -> pd.DataFrame:
        """The gateway's executions as the ledger recorded them, per order: the bar it filled in,
        side, quantity, average price, reason (the child's role, else ``signal``)."""
        h = self.h
        rows: dict[str, dict[str, Any]] = {}
        for e in h.gw.executions():
            f = h.ledger.rows(
                "SELECT f.*, o.role, o.purpose FROM fills f LEFT JOIN orders o USING (order_ref) WHERE exec_id = ?",
                (e.exec_id,),
            )
            assert f, f"execution {e.exec_id} ({e.order_ref}) is not in the ledger"
            r = rows.setdefault(
                e.order_ref,
                {
                    "time": h.frame.index[self.bar_of[e.exec_id]],
                    "side": f[0]["side"],
                    "quantity": 0.0,
                    "value": 0.0,
                    "reason": REASON_OF_ROLE[f[0]["role"]]
                    if f[0]["role"]
                    else REASON_OF_PURPOSE.get(f[0]["purpose"], "signal"),
                    "ref": e.order_ref,
                },
            )
            r["quantity"] += f[0]["quantity"]
            r["value"] += f[0]["quantity"] * f[0]["price"]
        out = pd.DataFrame(list(rows.values()), columns=["time", "side", "quantity", "value", "reason", "ref"])
        out["price"] = out["value"] / out["quantity"]
        return out.drop(columns="value")


def strategy_of(h: BridgeHarness) -> tuple[StrategySpec, dict[str, float], dict[str, float]]:
    """The harness's strategy with its exit rules merged, its resolved params, and the exit rules."""
    s = h.cfg.strategy
    spec = exits_for_run(get_strategy(s.name), s.params, "replay")  # research's side: no broker to refuse
    params = resolve_params(spec, s.params or None, get_interval(s.bar))
    return spec, params, rules_of(spec, params)


def research_fills(h: BridgeHarness) -> pd.DataFrame:
    """The engine simulator's fills on the harness's bars with its strategy, params, costs and exit rules."""
    spec, params, exits = strategy_of(h)
    sim = h.cfg.sim_config(100_000.0)
    o = parity.simulated_orders(spec, params, h.frame, h.symbol, sim, get_interval(h.cfg.strategy.bar), exits)
    return pd.DataFrame(
        {
            "time": o["time"],
            "side": ["BUY" if q > 0 else "SELL" for q in o["size"]],
            "quantity": o["size"].abs(),
            "price": o["price"],
            "reason": o["reason"],
        }
    )


def differences(ours: pd.DataFrame, theirs: pd.DataFrame, tick: float = TICK) -> list[str]:
    """Fill-by-fill differences: bar time, side, quantity and reason exactly, price within ``tick``."""
    out = []
    for k in range(max(len(ours), len(theirs))):
        a = ours.iloc[k] if k < len(ours) else None
        b = theirs.iloc[k] if k < len(theirs) else None
        if a is None or b is None:
            out.append(
                f"#{k}: bridge {None if a is None else a.to_dict()} vs research {None if b is None else b.to_dict()}"
            )
            continue
        same = (a["time"], a["side"], a["quantity"], a["reason"]) == (b["time"], b["side"], b["quantity"], b["reason"])
        if not same or abs(a["price"] - b["price"]) > tick + 1e-9:
            out.append(
                f"#{k}: bridge {a['time']} {a['side']} {a['quantity']:g} @ {a['price']:.4f} ({a['reason']})"
                f" vs research {b['time']} {b['side']} {b['quantity']:g} @ {b['price']:.4f} ({b['reason']})"
            )
    return out
