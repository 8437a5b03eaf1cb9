"""Order lifecycle: placement, modification, fills, cancels, brackets, OCA groups.

Resting orders are checked against every price ``Move`` (``triggers``): a bar's
intrabar path, a ``set_price`` jump, or the market at placement. Runs on the gateway's event loop. Sends order messages to the owning
client's session when it is connected; the state changes either way, so
fills that happen while a client is away are replayed on reconnect.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from .groups import cancels_at_once, children, oca_members, parent_filled, reduced_quantity
from .messages import WhatIfInfo
from .order_rules import missing_price, parent_problem
from .policy import FillPolicy
from .requests import OrderRequest
from .state import Execution, Order
from .triggers import Move, limit_hit, split_at, stop_hit, trail_level, trail_step
from .visibility import completed_for, open_orders_for

if TYPE_CHECKING:
    from .core import GatewayCore
    from .session import Session

log = logging.getLogger("tests.fakegw")
_MARKET = {"MKT", "MOC", "MOO"}
_LIMIT = {"LMT", "LOC", "LOO"}
_STOP = {"STP", "STP LMT"}
_TRAIL = {"TRAIL"}
#: Order types IB simulates for US stocks: held (PreSubmitted) until elected.
_SIMULATED = _STOP | _TRAIL


def split_quantity(qty: float, pieces: int) -> list[float]:
    """Split ``qty`` into at most ``pieces`` executions (whole shares when ``qty`` is whole)."""
    if pieces <= 1:
        return [qty]
    if float(qty).is_integer():
        base = math.floor(qty / pieces)
        if base == 0:
            return [1.0] * int(qty)
        return [float(base)] * (pieces - 1) + [float(qty - base * (pieces - 1))]
    return [qty / pieces] * pieces


class OrderEngine:
    """Applies fill policies to orders and emits the resulting messages."""

    def __init__(self, core: GatewayCore) -> None:
        self.core = core
        self._move: Move | None = None  # the price move being walked, for orders activated mid-move

    @property
    def state(self):  # noqa: ANN201 - GatewayState
        return self.core.state

    # --- client requests ---------------------------------------------------
    def place(self, session: Session, req: OrderRequest) -> None:
        """Handle placeOrder from ``session``."""
        cid = session.client_id or 0
        inst = self.core.catalogue.resolve(req.contract)
        existing = self.state.orders.get((cid, req.order_id))
        if req.what_if:
            self._what_if(session, req)
            return
        if inst is None:
            session.send(session.msg.error(req.order_id, 200, "No security definition has been found for the request"))
            return
        if existing is not None and existing.is_done and existing.epoch != self.state.epoch:
            session.send(session.msg.error(req.order_id, 103, "Duplicate order id"))
            return
        if existing is not None:
            self._modify(session, existing, req)
            return
        parent = self.state.orders.get((cid, req.parent_id)) if req.parent_id else None
        refusal = missing_price(req) or parent_problem(req, parent.status if parent is not None else None)
        policy = FillPolicy.reject(refusal) if refusal else self.core.policy_for(req, inst)
        order = Order(
            client_id=cid,
            order_id=req.order_id,
            perm_id=self.state.new_perm_id(),
            instrument=inst,
            req=req,
            account=req.account or self.state.default_account,
            placed_at=self.core.now(),
            policy=policy,
            epoch=self.state.epoch,
        )
        self.state.orders[order.key] = order
        if policy.mode == "reject":
            order.status = "Cancelled"
            order.completed_at = self.core.now()
            order.completed_status = f"Rejected: {policy.reason}"
            session.send(session.msg.error(req.order_id, 201, f"Order rejected - reason:{policy.reason}"))
            return
        if not req.transmit:
            order.held = True
            return
        self._release_chain(order)

    def cancel(self, session: Session, order_id: int) -> None:
        order = self.state.orders.get((session.client_id or 0, order_id))
        if order is None:
            session.send(
                session.msg.error(order_id, 10147, f"OrderId {order_id} that needs to be cancelled is not found.")
            )
        elif order.is_done:
            session.send(
                session.msg.error(
                    order_id,
                    161,
                    f"Cancel attempted when order is not in a cancellable state.  Order permId ={order.perm_id}",
                )
            )
        else:
            self.cancel_order(order)

    def global_cancel(self) -> None:
        for order in list(self.state.orders.values()):
            if not order.is_done:
                self.cancel_order(order)

    # --- replays for (re)connecting clients ------------------------------------
    def send_open_orders(self, session: Session, all_clients: bool) -> None:
        for o in open_orders_for(self.state, session.client_id or 0, all_clients):
            session.send(session.msg.open_order(o))
            session.send(session.msg.order_status(o))
        session.send(session.msg.open_order_end())

    def send_completed_orders(self, session: Session, api_only: bool = False) -> None:
        from .messages import ib_time

        for o in completed_for(self.state, api_only):
            stamp = ib_time(o.completed_at or o.placed_at, self.core.tz)
            session.send(session.msg.completed_order(o, stamp))
        session.send(session.msg.completed_orders_end())

    # --- price-driven evaluation ------------------------------------------------
    def on_price(self, symbol: str, move: Move) -> None:
        """Check working orders of ``symbol`` against one price move.

        A continuous move is cut at the resting levels it crosses, so the level the path
        reaches first fills first (and cancels its OCA group) whatever the placement order.
        """
        for part in split_at(move, self._levels(symbol)):
            self.state.prices[symbol] = part.end
            self._on_move(symbol, part)

    def _on_move(self, symbol: str, move: Move) -> None:
        self._move = move
        try:
            # children whose parent fills during this move meet only the rest of it (``_after_filled``)
            for order in self._working(symbol):
                self.evaluate(order, placement=False, move=move)
        finally:
            self._move = None

    def _working(self, symbol: str) -> list[Order]:
        return [
            o
            for o in self.state.orders.values()
            if o.instrument.symbol == symbol and not o.is_done and not o.held and self._parent_filled(o)
        ]

    def _levels(self, symbol: str) -> list[float]:
        """Prices at which working orders of ``symbol`` would trigger or fill now."""
        out: list[float] = []
        for o in self._working(symbol):
            kind = o.req.order_type.upper()
            if kind in _STOP and not o.triggered:
                level = o.req.aux_price
            elif kind in _TRAIL:
                level = o.trail_stop if o.trail_anchor is not None else None
            else:
                level = o.req.lmt_price if kind in _LIMIT or kind == "STP LMT" else None
            if level is not None:
                out.append(level)
        return out

    def evaluate(self, order: Order, placement: bool, move: Move | None = None) -> None:
        """Fill ``order`` now (or schedule it) if its policy says so.

        Without ``move`` the order meets the market as it is now: a gap to the reference price.
        """
        if order.is_done or order.held or order.timers or not order.auto_fill:
            return
        if not self._parent_filled(order):
            return
        policy = order.policy or self.core.default_policy
        if policy.mode in ("rest", "reject"):
            return
        ref = self.state.prices.get(order.instrument.symbol)
        if policy.mode == "fill":
            price = next(
                (p for p in (policy.price, ref, order.req.lmt_price, order.req.aux_price) if p is not None), None
            )
        else:
            if move is None:
                if placement and policy.price is not None:
                    ref = policy.price
                if ref is None:
                    return
                move = Move(None, ref, "gap")
            price = self._auto_price(order, move)
        if price is None:
            return
        self._schedule(order, price, policy)

    def _auto_price(self, order: Order, move: Move) -> float | None:
        """The fill price of ``order`` along ``move``, or None if it does not trade."""
        kind = order.req.order_type.upper()
        buy = order.is_buy
        if kind in _MARKET:
            return move.end
        if kind in _TRAIL:
            return self._trail(order, move)
        if kind in _STOP:
            if not order.triggered:
                stop = order.req.aux_price
                hit = None if stop is None else stop_hit(stop, buy, move)
                if hit is None:
                    return None
                self._elect(order)
                if kind == "STP":
                    return hit
                # STP LMT: a limit order from the trigger on, first at the trigger price itself
                at_trigger = limit_hit(order.req.lmt_price, buy, Move(None, hit, "gap"))  # type: ignore[arg-type]
                if at_trigger is not None:
                    return at_trigger
                move = move.rest_from(hit)
        if kind in _LIMIT or kind == "STP LMT":
            limit = order.req.lmt_price
            return None if limit is None else limit_hit(limit, buy, move)
        return None

    def _trail(self, order: Order, move: Move) -> float | None:
        """Ratchet a trailing stop along ``move``; its fill price once the stop is hit."""
        r = order.req
        if order.trail_anchor is None:
            order.trail_anchor = move.start if move.kind == "path" and move.start is not None else move.end
        if order.trail_stop is None:
            return None  # neither trailingPercent nor a trailing amount: never triggers

        def level_at(anchor: float) -> float | None:
            return trail_level(order.is_buy, anchor, r.trail_stop_price, r.aux_price, r.trailing_percent)

        order.trail_anchor, hit = trail_step(order.is_buy, order.trail_anchor, move, level_at)
        if hit is not None:
            self._elect(order)
        return hit

    def _elect(self, order: Order) -> None:
        """A simulated order's trigger was met: it goes out (Submitted) and then trades."""
        order.triggered = True
        if order.status == "PreSubmitted":
            order.status = "Submitted"
            self._notify(order)

    def _waiting_status(self, order: Order) -> str:
        """PreSubmitted while a child waits for its parent or a simulated stop for its trigger."""
        if not self._parent_filled(order):
            return "PreSubmitted"
        if order.req.order_type.upper() in _SIMULATED and not order.triggered:
            return "PreSubmitted"
        return "Submitted"

    # --- fills --------------------------------------------------------------------
    def _schedule(self, order: Order, price: float, policy: FillPolicy) -> None:
        pieces = split_quantity(order.remaining, policy.pieces)
        if policy.partial is not None:
            pieces = pieces[: policy.partial]
            order.auto_fill = False
        if not pieces:
            return
        if policy.delay <= 0 and policy.interval <= 0:
            for qty in pieces:
                self.execute(order, qty, price, policy.commission)
            return
        loop = self.core.loop
        for i, qty in enumerate(pieces):
            holder: list[object] = []

            def fire(q: float = qty, holder: list[object] = holder) -> None:
                if holder and holder[0] in order.timers:
                    order.timers.remove(holder[0])
                self.execute(order, q, price, policy.commission)

            handle = loop.call_later(policy.delay + i * policy.interval, fire)
            holder.append(handle)
            order.timers.append(handle)

    def execute(self, order: Order, qty: float, price: float, commission: float | None = None) -> Execution | None:
        """Book one execution and tell everyone who needs to know."""
        qty = min(qty, order.remaining)
        if order.is_done or qty <= 0:
            return None
        now = self.core.now()
        ex = self.state.record_fill(order, qty, price, now, commission)
        done = order.remaining <= 1e-9
        order.status = "Filled" if done else "Submitted"
        if done:
            order.completed_at = now
            order.completed_status = "Filled"
            self._cancel_timers(order)
        session = self.core.session_for(order.client_id)
        if session is not None:
            session.send(session.msg.exec_details(-1, ex))
            session.send(session.msg.order_status(order))
            if done:
                session.send(session.msg.open_order(order))
            session.send(session.msg.commission_report(ex))
        self.core.on_account_change(order.account, order.instrument.symbol)
        if done:
            self._after_filled(order)
        else:
            self._after_partial(order, qty)
        return ex

    def cancel_order(self, order: Order, reason: str = "") -> None:
        """Cancel a working order (and its children): orderStatus Cancelled, then error 202."""
        if order.is_done:
            return
        self._cancel_timers(order)
        order.status = "Cancelled"
        order.completed_at = self.core.now()
        order.completed_status = "Cancelled by Trader"
        session = self.core.session_for(order.client_id)
        if session is not None:
            session.send(session.msg.order_status(order))
            session.send(session.msg.error(order.order_id, 202, f"Order Canceled - reason:{reason}"))
        for child in self._children(order):
            self.cancel_order(child, reason)

    # --- internals ----------------------------------------------------------------
    def _modify(self, session: Session, order: Order, req: OrderRequest) -> None:
        if order.is_done:
            code, text = (
                (104, "Can't modify a filled order.")
                if order.status == "Filled"
                else (
                    10148,
                    f"OrderId {order.order_id} that needs to be modified cannot be modified as it is in state {order.status}.",
                )
            )
            session.send(session.msg.error(order.order_id, code, text))
            return
        refusal = missing_price(req)
        if refusal:
            session.send(session.msg.error(order.order_id, 321, f"Error validating request.-'bO' : cause - {refusal}"))
            return
        req.parent_id = order.req.parent_id
        order.req = req
        order.base_qty = None  # the client's new quantity is the base again
        if req.quantity <= order.filled:
            req.quantity = order.filled
        if req.order_type.upper() == "STP":
            order.triggered = False  # a new stop price is checked afresh
        was_held = order.held
        if was_held and req.transmit:
            self._release_chain(order)
            return
        if not was_held:
            if order.status in ("PreSubmitted", "Submitted"):
                order.status = self._waiting_status(order)
            self._notify(order)
            self.evaluate(order, placement=True)

    def _what_if(self, session: Session, req: OrderRequest) -> None:
        inst = self.core.catalogue.resolve(req.contract)
        if inst is None:
            session.send(session.msg.error(req.order_id, 200, "No security definition has been found for the request"))
            return
        price = self.state.prices.get(inst.symbol) or req.lmt_price or 0.0
        value = req.quantity * price
        book = self.state.book(req.account or self.state.default_account)
        vals = book.value_map(self.state.prices)
        fee = self.state.commission.order_total(req.quantity, value)
        info = WhatIfInfo(
            init_change=0.5 * value,
            maint_change=0.25 * value,
            equity_after=vals.get("EquityWithLoanValue", 0.0) - fee,
            init_after=vals.get("InitMarginReq", 0.0) + 0.5 * value,
            maint_after=vals.get("MaintMarginReq", 0.0) + 0.25 * value,
            commission=fee,
        )
        tmp = Order(session.client_id or 0, req.order_id, 0, inst, req, req.account or book.account, self.core.now())
        session.send(session.msg.open_order(tmp, status="PreSubmitted", what_if=info))

    def _release_chain(self, order: Order) -> None:
        root = order
        if order.req.parent_id:
            root = self.state.orders.get((order.client_id, order.req.parent_id), order)
        chain = [root, *self._children(root)]
        for o in chain:
            if o.is_done:
                continue
            o.held = False
            o.status = self._waiting_status(o)
            self._notify(o)
        for o in chain:
            self.evaluate(o, placement=True)

    def notify(self, order: Order) -> None:
        """openOrder and orderStatus to the owning client, if it is connected."""
        self._notify(order)

    def _notify(self, order: Order) -> None:
        session = self.core.session_for(order.client_id)
        if session is not None:
            session.send(session.msg.open_order(order))
            session.send(session.msg.order_status(order))

    def _children(self, order: Order) -> list[Order]:
        return children(self.state, order)

    def _parent_filled(self, order: Order) -> bool:
        return parent_filled(self.state, order)

    def _after_filled(self, order: Order) -> None:
        """A parent's children become active; the order's OCA group and bracket siblings are cancelled."""
        kids = self._children(order)
        for child in kids:
            if not child.is_done and not child.held:
                child.status = self._waiting_status(child)
                self._notify(child)
        # children meet the rest of the move that filled the parent (or the market as it is now)
        rest = self._move.rest_from(order.last_fill_price) if self._move is not None else None
        for child in kids:
            self.evaluate(child, placement=True, move=rest)
        for o in oca_members(self.state, order):
            if not o.is_done:
                self.cancel_order(o, "OCA group fill")

    def _after_partial(self, order: Order, qty: float) -> None:
        """One execution of an order that keeps working: its OCA group reacts at once (``groups``)."""
        for o in oca_members(self.state, order):
            if o.is_done:
                continue
            if cancels_at_once(order, o):
                self.cancel_order(o, "OCA group fill")
                continue
            new_qty = reduced_quantity(order, o, qty)
            if new_qty <= o.filled + 1e-9:
                self.cancel_order(o, "OCA group fill")
            else:
                o.base_qty = o.base
                o.req.quantity = new_qty
                self._notify(o)

    @staticmethod
    def _cancel_timers(order: Order) -> None:
        for h in order.timers:
            h.cancel()  # type: ignore[attr-defined]
        order.timers.clear()
