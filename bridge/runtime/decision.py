"""The decision path: a completed bar -> kernel -> target -> size -> risk gate -> ledger -> order.

Timing is the backtest's (``quantlab/kernels/sim.py``): the target at bar ``i`` is known at
its close; if it is finite and differs from the last target acted on (kept in the ledger)
the position is resized when bar ``i + 1`` opens, sized with equity marked at bar ``i``'s
close. The order intent is committed to the ledger before ``placeOrder``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import signal
import time
from typing import Any

import pandas as pd

from bridge.brokers.protocol import BarEvent, OrderRequest, OrderState
from bridge.errors import (
    BridgeError,
    BrokerDisconnected,
    DuplicateOrder,
    OrderUnconfirmed,
    StaleData,
)
from bridge.feed import BarWindow
from bridge.ledger import queries
from bridge.ledger.store import iso
from bridge.live_signal import latest_target
from bridge.ops.logs import CONTEXT
from bridge.orders import expected_fill, limit_price, size
from bridge.protection import child_request, children
from bridge.risk import Decision, OrderIntent
from bridge.runtime.context import Context
from bridge.runtime.killswitch import kill
from bridge.runtime.reconciling import Reconciler
from bridge.runtime.rejections import on_rejected
from bridge.runtime.time_exits import TimeRules
from bridge.runtime.trailing import ratchet, trail_level
from quantlab.engine.sizing import sizing_vol

log = logging.getLogger("bridge.runner")


class DecisionPath:
    """Decisions, order placement, cancels before re-deciding, limit-to-market."""

    def __init__(self, ctx: Context, reconciler: Reconciler) -> None:
        self.ctx = ctx
        self.reconciler = reconciler
        self.timed = TimeRules(ctx, self.place, self.clear_working)  # max_hold exits, limit entries' expiry

    def decide_pending(self) -> None:
        for sym in self.ctx.symbols:
            self.decide(sym, None)

    def decide(self, sym: str, received: float | None) -> None:
        """Act on the newest completed bar of ``sym`` if it has not been acted on yet."""
        w = self.ctx.windows[sym]
        bar_time = w.last_time
        if bar_time is None or self.ctx.state.phase != "ready":
            return
        last_target, done = self.ctx.processed(sym, bar_time)
        if done:
            return
        ratchet(self.ctx, sym, self.level_base)  # research's trailing mark takes the completed bar
        CONTEXT.bar_time = iso(bar_time) or ""
        try:
            self.decide_bar(sym, w, bar_time, last_target, received)
        except BrokerDisconnected:
            raise
        except BridgeError as err:
            self.ctx.mark(sym, bar_time)
            self.ctx.record(sym, bar_time, "error", err.render(), "error")
            self.ctx.alert("decision_error", f"{sym} {bar_time}: {err.render()}", "error", symbol=sym)
        finally:
            CONTEXT.bar_time = ""

    def decide_bar(
        self, sym: str, w: BarWindow, bar_time: pd.Timestamp, last_target: float, received: float | None
    ) -> None:
        now = self.ctx.clock.now()
        due = self.ctx.calendar.due(bar_time, self.ctx.interval)
        age = (now - due).total_seconds()
        if age > self.ctx.max_age:
            self.ctx.mark(sym, bar_time)
            self.ctx.refuse(
                sym,
                bar_time,
                "stale",
                f"bar is {age:,.0f} s past its due time {due} (tolerance {self.ctx.max_age:g} s)",
            )
            return
        if age < -self.ctx.cfg.data.max_clock_skew:
            self.ctx.mark(sym, bar_time)
            self.ctx.refuse(
                sym,
                bar_time,
                "future",
                f"bar completed {-age:,.0f} s before its due time {due}: clock or feed is wrong",
            )
            return
        gap = w.gap_in_window()
        if gap is not None:
            self.ctx.mark(sym, bar_time)
            self.ctx.refuse(sym, bar_time, "missing_bars", f"bars missing between {gap[0]} and {gap[1]}")
            return
        if len(w) < self.ctx.need:
            self.ctx.mark(sym, bar_time)
            self.ctx.record(sym, bar_time, "warmup", f"{len(w)} of {self.ctx.need} bars", "warmup")
            return
        self.ctx.state.stale.pop(sym, None)
        if not self.timed.before_decision(sym, w, bar_time):  # a max_hold exit still working
            self.ctx.mark(sym, bar_time)
            self.ctx.record(sym, bar_time, "blocked", "the max_hold exit is still working", "working_order")
            return
        prices = w.window()
        sig = latest_target(self.ctx.spec, self.ctx.params, prices)
        t = sig.target
        if not math.isfinite(t) or t == last_target:
            self.ctx.mark(sym, bar_time)
            self.ctx.record(
                sym,
                bar_time,
                "hold",
                "no opinion (NaN)" if not math.isfinite(t) else "target unchanged",
                "hold",
                target=t,
                last_target=last_target,
            )
            return
        if self.timed.waits_for_fresh_entry(sym, t):  # research's rule 5 after an exit by a rule
            self.ctx.mark(sym, bar_time, target=t)
            self.ctx.record(
                sym,
                bar_time,
                "hold",
                "fresh entry: a rule closed this side; the target must go to 0 or flip first",
                "fresh_entry",
                target=t,
                last_target=last_target,
            )
            return
        if not self.clear_working(sym):
            self.ctx.mark(sym, bar_time)
            self.ctx.record(
                sym,
                bar_time,
                "blocked",
                "an earlier order for this symbol is still working",
                "working_order",
                target=t,
                last_target=last_target,
            )
            return
        equity, cash = self.ctx.marked_equity(at_close=True)
        positions = {s: p.quantity for s, p in self.ctx.broker.positions().items()}
        marks = self.ctx.marks(positions)
        pos = positions.get(sym, 0.0)
        fill_est = w.forming.open if w.forming is not None else w.last_close
        vol = (
            float(sizing_vol(prices, self.ctx.sim, self.ctx.interval)[-1])
            if self.ctx.sim.sizing.mode == "vol_target"
            else 0.0
        )
        sz = size(t, equity, w.last_close, vol, pos, cash, fill_est, self.ctx.cost_vectors.get(sym, self.ctx.cfg_array))
        common = dict(target=t, last_target=last_target, position=pos, desired=sz.desired)
        if not math.isfinite(equity) or not math.isfinite(sz.desired):
            self.ctx.mark(sym, bar_time)
            self.ctx.record(
                sym,
                bar_time,
                "hold",
                f"cannot size yet (equity {equity!r}, desired {sz.desired!r})",
                "sizing",
                **common,
            )
            if not math.isfinite(equity):
                self.ctx.alert(
                    "no_equity",
                    f"{sym}: the broker reported no account value: bar {bar_time} not traded",
                    "error",
                    symbol=sym,
                )
            return
        if sz.delta == 0:
            self.ctx.mark(sym, bar_time, target=t)
            self.ctx.record(sym, bar_time, "no_order", "position already at target", "no_order", quantity=0.0, **common)
            return
        side = "BUY" if sz.delta > 0 else "SELL"
        qty = abs(sz.delta)
        exp_px, exp_fee = expected_fill(side, qty, fill_est, self.ctx.cost_vectors.get(sym, self.ctx.cfg_array))
        log.info(
            "expected fill",
            extra={
                "event": "expected_fill",
                "symbol": sym,
                "side": side,
                "quantity": qty,
                "price": exp_px,
                "fees": exp_fee,
            },
        )
        lmt = (
            limit_price(side, fill_est, self.ctx.cfg.orders.limit_offset_bps)
            if self.ctx.cfg.orders.type == "limit"
            else None
        )
        tif = None
        research = self.timed.limit_entry(side, w.last_close, pos, sz.desired, bar_time)
        if research is not None:  # entry_limit: research's limit entry (docs/research.md rule 4)
            lmt, tif = research
        # exposure is measured at the decision bar's close, the price sizing used; the band uses the last price
        intent = OrderIntent(
            sym,
            side,  # type: ignore[arg-type]
            qty,
            w.last_close,
            "LMT" if lmt else "MKT",
            lmt,
            "signal",
            tif=tif,
            expected_fill=fill_est,
        )
        kids = self.bracket_of(intent, pos, sz.desired)
        stop = next((k["aux_price"] for k in kids if k["role"] == "stop"), None)
        if stop is not None:  # the stop the entry's bracket carries, for the gate's rule 9
            intent = dataclasses.replace(intent, stop_price=stop)
        decision = self.ctx.gate(intent, positions, marks, equity, fill_est)
        common["quantity"] = intent.signed
        if decision.verdict == "allow":
            self.send(intent, bar_time, t, last_target, decision, received, common)
        elif decision.verdict == "needs_approval":
            ref = self.ctx.new_ref(sym, bar_time, "sig")
            self.ctx.mark(sym, bar_time)
            self.ctx.ledger.insert_order(
                self.ctx.order_row(intent, ref, bar_time, "needs_approval", t, last_target, decision.reason), now
            )
            self.ctx.record(sym, bar_time, decision.verdict, decision.reason, decision.rule, order_ref=ref, **common)
            self.ctx.alert(
                "needs_approval", f"order {ref} held for approval: {decision.reason}", "warning", order_ref=ref
            )
        elif decision.verdict == "flatten":
            self.ctx.mark(sym, bar_time)
            self.ctx.record(sym, bar_time, decision.verdict, decision.reason, decision.rule, **common)
            if not self.ctx.ledger.risk_state().kill_switch:
                kill(self.ctx, decision.reason, flatten=True, kind="daily_loss", tag=now)
        else:
            self.ctx.mark(sym, bar_time)
            self.ctx.record(sym, bar_time, decision.verdict, decision.reason, decision.rule, **common)

    def send(
        self,
        intent: OrderIntent,
        bar_time: pd.Timestamp,
        target: float,
        prev_target: float,
        decision: Decision,
        received: float | None,
        common: dict[str, Any],
    ) -> None:
        """Record the intent (one committed transaction), then place, then record 'sent'."""
        now = self.ctx.clock.now()
        sym = intent.symbol
        ref = self.ctx.new_ref(sym, bar_time, "sig")
        status = "dry_run" if self.ctx.cfg.dry_run else "intent"
        row = self.ctx.order_row(intent, ref, bar_time, status, target, prev_target, decision.reason)
        kids = self.bracket_of(intent, float(common["position"]), float(common["desired"]), row)
        with self.ctx.ledger.tx():
            if kids:
                self.ctx.ledger.insert_bracket(
                    row, kids, now
                )  # parent and children: all or none, before anything is sent
            else:
                self.ctx.ledger.insert_order(row, now)
            self.ctx.mark(sym, bar_time, target=target)
            self.ctx.record(sym, bar_time, decision.verdict, decision.reason, decision.rule, order_ref=ref, **common)
        if self.ctx.cfg.dry_run:
            log.info(
                "dry run: order not sent",
                extra={"event": "dry_run", "order_ref": ref, "side": intent.side, "quantity": intent.quantity},
            )
            return
        if kids:
            self.place_bracket(intent, ref, kids, received)
        else:
            self.place(intent, ref, received)

    def stop_of(self, intent: OrderIntent) -> float | None:
        """The stop an order would carry if sent now (an approval's rule-9 check), or None."""
        pos = {s: p.quantity for s, p in self.ctx.broker.positions().items()}.get(intent.symbol, 0.0)
        kids = self.bracket_of(intent, pos, pos + intent.signed)
        return next((k["aux_price"] for k in kids if k["role"] == "stop"), None)

    def bracket_of(
        self, intent: OrderIntent, position: float, desired: float, row: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """The protective children's ledger rows of an order that opens or adds (none for an exit):
        they cover the whole position the order leaves (a flip's: the new side), GTC, with levels
        from the expected entry (the limit, else the expected fill: the open it trades at, once known;
        an add's: the position's first entry, as research); :meth:`relevel` moves them to the fill."""
        opens = desired != 0 and (position == 0 or (desired > 0) != (position > 0) or abs(desired) > abs(position))
        if not self.ctx.exits or not opens:
            return []
        parent = {
            **(row or {"order_ref": "?", "symbol": intent.symbol}),
            "side": intent.side,
            "quantity": abs(desired),
            "tif": "GTC",
        }
        base = self.position_base(intent.symbol, intent.side) if position and (desired > 0) == (position > 0) else None
        return children(parent, self.ctx.exits, intent.entry_price if base is None else base)

    def position_base(self, symbol: str, side: str, ref: str | None = None) -> float | None:
        """The price an add's children measure their levels from: the raw fill of the order that
        opened ``symbol``'s position on ``side`` (research keeps the first entry's price on an
        add); None when ``ref`` is that order, or the ledger does not know it (the baseline's)."""
        opening = queries.entry_order(self.ctx.ledger, symbol)
        if opening is None or opening["side"] != side or opening["order_ref"] == ref:
            return None
        if not opening["avg_fill_price"]:
            return None
        return self.entry_base(opening)

    def entry_base(self, row: dict[str, Any]) -> float:
        """The raw fill of entry ``row`` (the sim's fills carry modelled slippage; IB's are raw),
        or research's limit when a limit entry filled at it."""
        fill = float(row["avg_fill_price"])
        raw = getattr(self.ctx.broker, "raw_price", None)
        base = raw(fill, str(row["side"]), str(row["symbol"])) if raw else fill
        return self.timed.research_entry(row, base)

    def place_bracket(self, intent: OrderIntent, ref: str, kids: list[dict[str, Any]], received: float | None) -> None:
        """Send entry ``ref`` with its recorded children in one ``Broker.place_bracket`` (at IB the
        parent is held until the last child transmits it), record them 'sent', then relevel them
        if the entry already filled. A child the broker did not take (the parent refused at once)
        is voided; nothing sent stays 'intent' for the reconnect to resolve."""
        try:
            states = self.ctx.broker.place_bracket(self.request(intent, ref), [child_request(row) for row in kids])
        except BrokerDisconnected as err:
            log.error(
                "bracket not sent: disconnected", extra={"event": "send_failed", "order_ref": ref, "detail": err.what}
            )
            for r in [ref, *(row["order_ref"] for row in kids)]:
                self.ctx.ledger.update_order(r, self.ctx.clock.now(), kind="send_failed", detail=unsent_detail(err))
            self.ctx.disconnected(err.what)
            return
        if self.ctx.crash_after_place:
            self.crash(ref)
        self.sent(intent, ref, states[0], received)
        placed = {st.order_ref: st for st in states[1:]}
        for row in kids:
            st = placed.get(row["order_ref"])
            if st is None:
                self.ctx.ledger.update_order(
                    row["order_ref"],
                    self.ctx.clock.now(),
                    kind="void",
                    status="void",
                    detail=f"entry {ref} is {states[0].status}: nothing to protect",
                )
                continue
            self.ctx.ledger.update_order(
                row["order_ref"],
                self.ctx.clock.now(),
                kind="sent",
                status="sent",
                sent_at=iso(self.ctx.clock.now()),
                broker_order_id=st.broker_order_id,
                perm_id=st.perm_id,
            )
            if st.status != "pending":
                self.ctx.sync.order_event(st)
            if st.status == "rejected":  # at once (the sim): the event that follows changes nothing
                on_rejected(self.ctx, row["order_ref"], st.message, st.error_code)
        self.relevel(ref)

    def relevel_open(self) -> None:
        """After a reconcile: relevel the open children of every entry, in case it filled while
        the bridge was away (a crash right after placing, a disconnect); :meth:`relevel` skips
        children already at their levels."""
        if not self.ctx.exits:
            return
        parents = dict.fromkeys(str(r["parent_ref"]) for r in self.ctx.ledger.open_orders() if r["role"])
        for parent in parents:
            self.relevel(parent)

    def relevel(self, parent_ref: str) -> None:
        """Once the entry filled: its stop and target move to levels measured from the raw fill
        (research's rule; a trailing stop's mark starts there at the broker); an add's, from the
        raw fill of the order that opened the position (research keeps the first entry's price)."""
        row = self.ctx.ledger.order(parent_ref)
        if row is None or row["status"] != "filled" or not row["avg_fill_price"]:
            return
        placed = [
            c for c in self.ctx.ledger.children(parent_ref) if c["status"] in ("sent", "working", "partially_filled")
        ]
        if not placed:
            return
        base = self.position_base(str(row["symbol"]), str(row["side"]), parent_ref)  # an add: the first entry's
        if base is None:
            base = self.entry_base(row)
        new = {c["role"]: c for c in children({**row, "quantity": placed[0]["quantity"]}, self.ctx.exits, base)}
        for child in placed:
            key = "limit_price" if child["role"] == "take_profit" else "aux_price"
            level = new.get(child["role"], {}).get(key)
            if child["role"] == "trail":  # the ratcheted level (bars since the fill), not the entry's
                level = trail_level(self.ctx, row, base)
            if level is None or level == child[key]:
                continue
            if self.ctx.broker.modify(child["order_ref"], level=level):
                self.ctx.ledger.update_order(
                    child["order_ref"],
                    self.ctx.clock.now(),
                    kind="modified",
                    detail=f"level {level:g} from the entry fill {base:g}",
                    **{key: level},
                )

    def level_base(self, row: dict[str, Any]) -> float:
        """The base of filled entry ``row``'s levels: the first entry's for an add, else its own."""
        base = self.position_base(str(row["symbol"]), str(row["side"]), str(row["order_ref"]))
        return self.entry_base(row) if base is None else base

    def place_approved(self, intent: OrderIntent, ref: str, received: float | None) -> None:
        """Send an order approved after a hold (``bridge.approvals``) as :meth:`send` would: one that
        opens or adds goes out as a bracket, its children sized from the position now (it may have
        moved while the order was held) and recorded before anything is sent."""
        held = self.ctx.broker.positions().get(intent.symbol)
        pos = held.quantity if held is not None else 0.0
        kids = self.bracket_of(intent, pos, pos + intent.signed, self.ctx.ledger.order(ref))
        if kids:
            try:
                with self.ctx.ledger.tx():
                    for row in kids:
                        self.ctx.ledger.insert_order(row, self.ctx.clock.now())
            except DuplicateOrder:  # an earlier attempt recorded them: send those
                kids = self.ctx.ledger.children(ref)
            self.place_bracket(intent, ref, kids, received)
        else:
            self.place(intent, ref, received)

    def request(self, intent: OrderIntent, ref: str) -> OrderRequest:
        return OrderRequest(
            ref,
            intent.symbol,
            intent.side,
            intent.quantity,
            intent.order_type,
            intent.limit_price,
            intent.tif or self.ctx.cfg.orders.tif,
        )

    def place(self, intent: OrderIntent, ref: str, received: float | None) -> None:
        try:
            state = self.ctx.broker.place(self.request(intent, ref))
        except BrokerDisconnected as err:
            log.error(
                "order not sent: disconnected", extra={"event": "send_failed", "order_ref": ref, "detail": err.what}
            )
            self.ctx.ledger.update_order(ref, self.ctx.clock.now(), kind="send_failed", detail=unsent_detail(err))
            self.ctx.disconnected(err.what)
            return
        if self.ctx.crash_after_place:
            self.crash(ref)
        self.sent(intent, ref, state, received)

    def sent(self, intent: OrderIntent, ref: str, state: OrderState, received: float | None) -> None:
        """Record a placed strategy order 'sent' (with its broker ids), its latency and log line."""
        sent = time.perf_counter()
        self.ctx.ledger.update_order(
            ref,
            self.ctx.clock.now(),
            kind="sent",
            status="sent",
            sent_at=iso(self.ctx.clock.now()),
            broker_order_id=state.broker_order_id,
            perm_id=state.perm_id,
        )
        if state.status != "pending":
            self.ctx.sync.order_event(state)
        self.ctx.state.metrics["orders_sent"] += 1
        if intent.order_type == "LMT" and not self.timed.limits_by_bars:  # limit entries expire by bars
            self.ctx.state.working[ref] = self.ctx.clock.monotonic()
        latency = (sent - received) * 1000 if received is not None else None
        if latency is not None:
            self.ctx.state.latencies_ms.append(latency)
        log.info(
            "order sent",
            extra={
                "event": "order_sent",
                "order_ref": ref,
                "symbol": intent.symbol,
                "side": intent.side,
                "quantity": intent.quantity,
                "order_type": intent.order_type,
                "limit_price": intent.limit_price,
                "latency_ms": latency,
            },
        )

    def crash(self, ref: str) -> None:
        """Test hook: die after placeOrder, before the ledger records 'sent' (the crash window)."""
        wait = getattr(self.ctx.broker, "wait_acknowledged", None)
        if wait is not None:
            wait(ref, 2.0)
        log.critical("test hook: SIGKILL after place", extra={"event": "test_crash", "order_ref": ref})
        os.kill(os.getpid(), signal.SIGKILL)

    def clear_working(self, sym: str) -> bool:
        """Cancel earlier working orders of ``sym``; True once none is left."""
        rows = self.ctx.ledger.open_orders(sym)
        if not rows:
            return True
        if all(r["order_ref"] in self.ctx.state.adopted for r in rows):
            return self.reconciler.clear_adopted(
                sym
            )  # another client's order: this client cannot cancel it (bridge.runtime.oversight)
        for r in rows:
            if r["order_ref"] in self.ctx.state.adopted:
                continue
            self.ctx.state.cancel_reason.setdefault(r["order_ref"], "superseded")
            self.ctx.broker.cancel(r["order_ref"])
        deadline = time.monotonic() + self.ctx.cfg.orders.cancel_wait
        while time.monotonic() < deadline and self.ctx.ledger.open_orders(sym):
            self.ctx.pump(0.05)
        left = self.ctx.ledger.open_orders(sym)
        if left and all(r["order_ref"] in self.ctx.state.adopted for r in left):
            return self.reconciler.clear_adopted(sym)
        return not left

    def on_bar_deferred(self, ev: BarEvent) -> None:
        """A bar that arrives while the runner waits (cancel, kill switch): stored now, decided
        on the next loop iteration."""
        w = self.ctx.windows.get(ev.symbol)
        if w is None:
            return
        if not ev.complete:
            w.set_forming(ev.bar)
            return
        try:
            if w.add_complete(ev.bar):
                self.ctx.state.metrics["bars"] += 1
                self.ctx.state.deferred.add(ev.symbol)
        except StaleData as err:
            self.ctx.refuse(ev.symbol, ev.bar.time, "invalid_bar", err.what)

    def replace_with_market(self, ref: str, remaining: float) -> None:
        row = self.ctx.ledger.order(ref)
        if row is None or remaining <= 0:
            return
        sym = row["symbol"]
        w = self.ctx.windows.get(sym)
        last = w.last_price() if w is not None else float(row["limit_price"] or 0.0)
        intent = OrderIntent(sym, row["side"], remaining, last, "MKT", None, "timeout_market")
        positions = {s: p.quantity for s, p in self.ctx.broker.positions().items()}
        marks = self.ctx.marks(positions)
        equity = self.ctx.marked_equity(at_close=True)[0]
        decision = self.ctx.gate(intent, positions, marks, equity, last)
        new_ref = f"{ref}:m"
        now = self.ctx.clock.now()
        bar_time = pd.Timestamp(row["bar_time"]) if row["bar_time"] else None
        self.ctx.record(
            sym,
            bar_time if bar_time is not None else now,
            decision.verdict,
            f"limit timed out: {decision.reason}",
            decision.rule,
            order_ref=new_ref if decision.allowed else None,
            quantity=intent.signed,
        )
        if not decision.allowed:
            return
        try:
            self.ctx.ledger.insert_order(
                self.ctx.order_row(
                    intent,
                    new_ref,
                    bar_time,
                    "intent",
                    None,
                    None,
                    "limit order timed out: converted to market",
                    parent=ref,
                ),
                now,
            )
        except DuplicateOrder:
            return
        self.place(intent, new_ref, None)


def unsent_detail(err: BrokerDisconnected) -> str:
    """The order event for an order that did not (provably) reach the broker: it stays ``intent``."""
    if isinstance(err, OrderUnconfirmed):
        return (
            "written into a socket the gateway had closed: may not have arrived; stays intent until the reconnect "
            "resolves it (adopted if the broker has it, voided only if proven absent)"
        )
    return "not sent: the connection was down; stays intent, resolved at the reconnect"
