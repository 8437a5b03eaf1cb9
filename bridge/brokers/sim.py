"""SimBroker: an in-process broker implementing the Broker protocol.

It drives ``bridge run --replay`` (with :class:`ReplayDriver`) and the broker contract
tests. Fills use the engine's own cost kernels, so a replay pays exactly what the
backtest pays: a market order fills at the current price (the new bar's open in a
replay) moved by the slippage and the symbol's half-spread (``fill_price_nb`` with the
symbol's cost vector, ``SimConfig.to_array(symbol)``), paying IB fixed commission plus,
on sells, the SEC fee and FINRA TAF (``order_fee_nb``, as the sweep charges them).

Scripting (contract tests): ``script(order_ref, "reject"|"rest"|"partial", ...)``,
``fill_order``, ``drop`` (a server-side disconnect: fills may keep happening and are
recovered through ``executions()`` after ``connect``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from bridge.brokers.protocol import (
    Account,
    Bar,
    BarEvent,
    ConnectionEvent,
    Event,
    Fill,
    FillEvent,
    OrderEvent,
    OrderRequest,
    OrderState,
    Position,
)
from bridge.brokers.resting import Resting, first_fill, ratchet
from bridge.clock import Clock
from bridge.errors import (
    BrokerDisconnected,
    BrokerError,
    GatewayUnreachable,
    StaleData,
    UnknownSymbol,
)
from bridge.protection import split_ref
from quantlab.engine.intervals import Interval
from quantlab.engine.settings import SimConfig
from quantlab.kernels.costs import fill_price_nb, order_fee_nb
from quantlab.kernels.layout import TICK


@dataclass
class _Order:
    state: OrderState
    mode: str = "auto"
    partial_qty: float = 0.0
    reason: str = ""
    value: float = 0.0
    commission: float = 0.0


class SimBroker:
    """A simulated broker: one USD cash account, stocks, market and limit orders."""

    name = "sim"

    def __init__(
        self,
        sim: SimConfig,
        clock: Clock,
        *,
        cash: float | None = None,
        account: str = "SIM0000001",
        symbols: Sequence[str] | None = None,
    ) -> None:
        self.sim = sim
        self.cfg = sim.to_array()
        self._cfgs: dict[str, np.ndarray] = {}  # symbol -> its cost vector (per-symbol spread)
        self.clock = clock
        self._account = account
        self._known = {s.upper() for s in symbols} if symbols is not None else None
        self.cash = float(sim.init_cash if cash is None else cash)
        self._positions: dict[str, list[float]] = {}  # symbol -> [qty, avg_cost]
        self._prices: dict[str, float] = {}
        self._history: dict[str, pd.DataFrame] = {}
        self._appended: dict[str, list[Bar]] = {}
        self._forming: dict[str, Bar] = {}
        self._subscribed: set[str] = set()
        self._orders: dict[str, _Order] = {}
        self._fills: list[Fill] = []
        self._scripts: dict[str, tuple[str, float, str]] = {}
        self._events: list[Event] = []
        self._connected = False
        self._next_id = 1
        self._exec_seq = 0
        self.driver: Callable[[], bool] | None = None
        self.finished = False
        self.placed: list[OrderRequest] = []
        self._children: dict[str, list[tuple[OrderRequest, Resting]]] = {}  # parent ref -> bracket children
        self._active: dict[
            str, pd.Timestamp
        ] = {}  # child ref -> the bar its parent filled in (children live from then)
        self._child_refs: set[str] = set()  # bracket children trigger on completed bars, not on set_price
        #: Research's limit entries (``use_bar_limits``): None = limits fill when the price crosses them.
        self._limit_ticks: float | None = None
        self._limit_from: dict[str, pd.Timestamp] = {}  # limit ref -> the bar it was placed in
        self._protect_after: dict[str, pd.Timestamp] = {}  # child ref -> an intrabar parent fill's bar

    def use_bar_limits(self, ticks: float = 0.0) -> None:
        """Fill limit orders by research's rule for limit entries (docs/research.md rule 4): in a bar
        whose low trades ``ticks`` ticks through a buy limit (high for a sell), at the limit or a
        better open, with the modelled slippage. Their children are protected from that bar if the
        fill was at the open, else from the next (the path after an intrabar fill is unknown).
        Live, the broker decides: ``limit_ticks`` is research's fill-probability model."""
        self._limit_ticks = float(ticks)

    # --- market setup and driving ------------------------------------------------------
    def load_history(self, symbol: str, frame: pd.DataFrame) -> None:
        """Bars ``subscribe_bars`` will return (the last one is the forming bar if any)."""
        symbol = symbol.upper()
        self._history[symbol] = frame[["open", "high", "low", "close", "volume"]].astype(np.float64)
        if len(frame):
            self._prices[symbol] = float(frame["close"].iloc[-1])

    def set_forming(self, symbol: str, bar: Bar) -> None:
        """Declare the still-forming bar (returned last by ``subscribe_bars``)."""
        self._forming[symbol.upper()] = bar
        self._prices[symbol.upper()] = bar.close

    def push_bar(self, symbol: str, bar: Bar) -> None:
        """A bar update: a newer start completes the forming bar; the same start updates it."""
        symbol = symbol.upper()
        prev = self._forming.get(symbol)
        now = time.perf_counter()
        if prev is not None and bar.time > prev.time:
            self._trigger(symbol, prev)
            self._bar_limits(symbol, prev)
            self._append_history(symbol, prev)
            if symbol in self._subscribed and self._connected:
                self._events.append(BarEvent(symbol, prev, True, now))
        self._forming[symbol] = bar
        if prev is not None and bar.time == prev.time:
            self._bar_limits(symbol, bar)  # the forming bar's range so far
        if symbol in self._subscribed and self._connected:
            self._events.append(BarEvent(symbol, bar, False, now))
        self.set_price(symbol, bar.close)

    def set_price(self, symbol: str, price: float) -> None:
        """Move the reference price; resting limit orders it crosses fill at their limit."""
        symbol = symbol.upper()
        self._prices[symbol] = float(price)
        for order in list(self._orders.values()):
            st = order.state
            if (
                st.symbol != symbol
                or st.done
                or order.mode != "auto"
                or st.order_type != "LMT"
                or st.order_ref in self._child_refs
                or st.order_ref in self._limit_from
            ):
                continue
            lmt = float(st.limit_price or 0.0)
            if (st.side == "BUY" and price <= lmt) or (st.side == "SELL" and price >= lmt):
                self._execute(order, st.quantity - st.filled, lmt, slippage=False)

    def script(self, order_ref: str, mode: str, *, qty: float = 0.0, reason: str = "Simulated rejection") -> None:
        """Next order with ``order_ref``: ``reject``, ``rest`` (never fills by itself) or
        ``partial`` (fills ``qty`` then keeps working)."""
        if mode not in ("reject", "rest", "partial"):
            raise ValueError(f"unknown script mode {mode!r}")
        self._scripts[order_ref] = (mode, float(qty), reason)

    def fill_order(self, order_ref: str, qty: float | None = None, price: float | None = None) -> Fill | None:
        """Execute (part of) a working order now, connected or not."""
        order = self._orders[order_ref]
        st = order.state
        px = price if price is not None else self._prices.get(st.symbol, st.limit_price or 0.0)
        return self._execute(order, st.quantity - st.filled if qty is None else qty, float(px), slippage=price is None)

    def forget(self, order_ref: str) -> None:
        """The broker loses an order without a trace (a gateway restart drops an untransmitted
        order): no open or completed order, no execution carries its ref any more."""
        self._orders.pop(order_ref, None)
        self._child_refs.discard(order_ref)
        self._active.pop(order_ref, None)
        for parent, kids in self._children.items():
            self._children[parent] = [(req, rest) for req, rest in kids if req.order_ref != order_ref]

    def drop(self) -> None:
        """A disconnect from the broker side: the runner sees ``disconnected``."""
        if self._connected:
            self._connected = False
            self._subscribed.clear()
            self._events.append(ConnectionEvent("disconnected", "simulated drop"))

    # --- Broker protocol --------------------------------------------------------------------
    def connect(self) -> None:
        if self.finished and self.driver is not None:
            raise GatewayUnreachable("the replay has ended")
        self._connected = True
        self._events = [e for e in self._events if not isinstance(e, ConnectionEvent)]

    def disconnect(self) -> None:
        self._connected = False
        self._subscribed.clear()

    def is_connected(self) -> bool:
        return self._connected

    def account_id(self) -> str:
        return self._account

    def managed_accounts(self) -> list[str]:
        return [self._account]

    def qualify(self, symbols: Sequence[str]) -> None:
        for s in symbols:
            known = self._known if self._known is not None else set(self._history)
            if s.upper() not in known:
                raise UnknownSymbol(
                    f"the simulated broker does not know the symbol {s!r} (error 200)",
                    found=s,
                    fix=f"known: {', '.join(sorted(known)) or 'none'}",
                )

    def subscribe_bars(self, symbol: str, interval: Interval, bars: int) -> pd.DataFrame:
        self._need_connection()
        symbol = symbol.upper()
        self.qualify([symbol])
        frame = self._frame(symbol)
        if frame.empty and symbol not in self._forming:
            raise StaleData(f"no historical bars for {symbol}", fix="load_history first")
        if symbol not in self._forming:  # like IB: the newest bar counts as forming until a newer one starts
            last = frame.iloc[-1]
            self._forming[symbol] = Bar(
                frame.index[-1], *(float(last[c]) for c in ("open", "high", "low", "close", "volume"))
            )
            self._history[symbol] = frame = frame.iloc[:-1]
        if symbol in self._forming:
            f = self._forming[symbol]
            row = pd.DataFrame([_row(f)], index=pd.DatetimeIndex([f.time]))
            frame = pd.concat([frame, row]) if len(frame) else row
        self._subscribed.add(symbol)
        return frame.copy()

    def place(self, request: OrderRequest) -> OrderState:
        self._need_connection()
        if request.order_ref in self._orders:
            raise BrokerDisconnected("duplicate orderRef at the simulated broker", found=request.order_ref)
        self.placed.append(request)
        state = OrderState(
            order_ref=request.order_ref,
            symbol=request.symbol,
            side=request.side,
            quantity=float(request.quantity),
            order_type=request.order_type,
            status="working",
            remaining=float(request.quantity),
            limit_price=request.limit_price,
            broker_order_id=self._next_id,
            perm_id=900_000_000 + self._next_id,
            parent_ref=request.parent_ref,
            aux_price=request.aux_price,
            trail_pct=request.trail_pct,
            oca_group=request.oca_group,
        )
        self._next_id += 1
        mode, qty, reason = self._scripts.pop(request.order_ref, ("auto", 0.0, ""))
        order = _Order(state, mode, qty, reason)
        self._orders[request.order_ref] = order
        if request.symbol not in (self._known if self._known is not None else set(self._history)):
            self._finish(order, "rejected", "No security definition has been found for the request", 200)
            return order.state
        if mode == "reject":
            self._finish(order, "rejected", f"Order rejected - reason:{reason}", 201)
            return order.state
        self._emit(order)
        if request.parent_ref is not None:
            self._attach(request, order)
            return order.state
        px = self._prices.get(request.symbol)
        if mode == "partial" and px is not None:
            self._execute(order, min(qty, state.quantity), px, slippage=True)
            order.mode = "rest"
        elif mode == "auto" and request.order_type == "LMT" and self._limit_ticks is not None:
            self._limit_from[request.order_ref] = self._bar_time(request.symbol)  # fills by bars from this one
        elif mode == "auto" and px is not None:
            if request.order_type == "MKT":
                self._execute(order, state.quantity, px, slippage=True)
            else:
                lmt = float(request.limit_price or 0.0)
                if (request.side == "BUY" and px <= lmt) or (request.side == "SELL" and px >= lmt):
                    self._execute(order, state.quantity, px, slippage=True, cap=lmt)
        return order.state

    def place_bracket(self, parent: OrderRequest, children: Sequence[OrderRequest]) -> list[OrderState]:
        """The parent, then each child in turn (nothing can happen in between in a simulation).
        A parent refused at once gets no children (the list then holds the parent only)."""
        states = [self.place(parent)]
        if states[0].done and states[0].filled == 0:
            return states
        return states + [self.place(child) for child in children]

    def cancel(self, order_ref: str) -> bool:
        order = self._orders.get(order_ref)
        if order is None or order.state.done:
            return False
        self._finish(order, "cancelled", "Order Canceled - reason:", 202)
        if order.state.filled == 0:  # an unfilled parent takes its children with it (as at IB)
            for req, _ in self._children.get(order_ref, []):
                self.cancel(req.order_ref)
        return True

    def raw_price(self, price: float, side: str, symbol: str | None = None) -> float:
        """A fill's price before the modelled slippage and half-spread (research measures exit levels from it)."""
        slip = float(fill_price_nb(1.0, side == "BUY", self.cost_vector(symbol) if symbol else self.cfg))
        return price / slip

    def modify(self, order_ref: str, *, level: float | None = None, quantity: float | None = None) -> bool:
        """Move a working child's stop/target level, or its total quantity (IB's ``totalQuantity``:
        filled shares included; a partial exit resizes the children). False if the order is not
        working or the quantity is not above what already filled."""
        order = self._orders.get(order_ref)
        if order is None or order.state.done:
            return False
        if quantity is not None and not quantity > order.state.filled:
            return False
        for kids in self._children.values():
            for req, rest in kids:
                if req.order_ref == order_ref and level is not None:
                    rest.level = float(level)
                    if rest.role == "trail":
                        rest.mark = _mark_of(rest, float(level))
                    if rest.role != "trail" or rest.fixed:  # the state shows the level as IB shows it
                        if rest.role == "take_profit":
                            order.state = replace(order.state, limit_price=float(level))
                        else:
                            order.state = replace(order.state, aux_price=float(level))
        if quantity is not None:
            order.state = replace(order.state, quantity=float(quantity), remaining=float(quantity) - order.state.filled)
        self._emit(order)
        return True

    def cancel_all(self) -> None:
        for ref, order in list(self._orders.items()):
            if not order.state.done:
                self.cancel(ref)

    def sync(self) -> None:
        self._need_connection()

    def open_orders(self) -> list[OrderState]:
        return [o.state for o in self._orders.values() if not o.state.done]

    def completed_orders(self) -> list[OrderState]:
        return [o.state for o in self._orders.values() if o.state.done]

    def executions(self) -> list[Fill]:
        return list(self._fills)

    def positions(self) -> dict[str, Position]:
        return {s: Position(s, q, c) for s, (q, c) in self._positions.items() if q}

    def account(self) -> Account:
        marks = {s: (q, self._prices.get(s, c)) for s, (q, c) in self._positions.items() if q}
        value = sum(q * px for q, px in marks.values())
        return Account(self._account, self.cash, self.cash + value, marks=marks)

    def poll(self, timeout: float) -> list[Event]:
        if not self._events and self.driver is not None and not self.finished and self._connected:
            if not self.driver():
                self.finished = True
        events, self._events = self._events, []
        return events

    # --- internals ------------------------------------------------------------------------
    def _need_connection(self) -> None:
        if not self._connected:
            raise BrokerDisconnected("not connected to the simulated broker")

    def _append_history(self, symbol: str, bar: Bar) -> None:
        self._appended.setdefault(symbol, []).append(bar)

    def _frame(self, symbol: str) -> pd.DataFrame:
        """History plus the bars completed since (folded in lazily: replays append every bar)."""
        frame = self._history.get(
            symbol, pd.DataFrame(columns=["open", "high", "low", "close", "volume"], dtype=np.float64)
        )
        extra = self._appended.pop(symbol, [])
        if extra:
            rows = pd.DataFrame([_row(b) for b in extra], index=pd.DatetimeIndex([b.time for b in extra]))
            frame = pd.concat([frame[~frame.index.isin(rows.index)], rows]) if len(frame) else rows
            self._history[symbol] = frame
        return frame

    def _emit(self, order: _Order) -> None:
        if self._connected:
            self._events.append(OrderEvent(order.state))

    def _finish(self, order: _Order, status: str, message: str, code: int) -> None:
        order.state = replace(
            order.state,
            status=status,  # type: ignore[arg-type]
            message=message,
            error_code=code,
            remaining=0.0 if status != "working" else order.state.remaining,
        )
        self._emit(order)

    def _execute(
        self, order: _Order, qty: float, price: float, *, slippage: bool, cap: float | None = None
    ) -> Fill | None:
        st = order.state
        qty = min(qty, st.quantity - st.filled)
        if st.done or qty <= 0:
            return None
        buy = st.side == "BUY"
        cfg = self.cost_vector(st.symbol)
        px = float(fill_price_nb(price, buy, cfg)) if slippage else price
        if cap is not None:
            px = min(px, cap) if buy else max(px, cap)
        filled = st.filled + qty
        order.value += qty * px
        avg = order.value / filled
        total_fee = float(order_fee_nb(filled, avg, buy, cfg))
        fee = max(total_fee - order.commission, 0.0)
        order.commission += fee
        signed = qty if buy else -qty
        realized = self._book(st.symbol, signed, px, fee)
        self.cash -= signed * px + fee
        self._exec_seq += 1
        fill = Fill(
            f"sim.{self._exec_seq:08d}",
            st.order_ref,
            st.symbol,
            st.side,
            qty,
            px,
            self.clock.now(),
            fee,
            realized,
            st.perm_id,
        )
        self._fills.append(fill)
        done = filled >= st.quantity - 1e-9
        order.state = replace(
            st,
            filled=filled,
            remaining=max(st.quantity - filled, 0.0),
            avg_fill_price=avg,
            status="filled" if done else "working",
        )
        if self._connected:
            self._events.append(OrderEvent(order.state))
            self._events.append(FillEvent(fill))
        if done:
            raw = self.raw_price(avg, st.side, st.symbol)
            for req, rest in self._children.get(
                st.order_ref, []
            ):  # the bracket's children go live on the parent's fill
                self._active.setdefault(req.order_ref, self._bar_time(st.symbol))
                if rest.role == "trail" and not rest.mark:  # research's trailing mark starts at the raw entry
                    rest.mark = raw
        return fill

    def _attach(self, request: OrderRequest, order: _Order) -> None:
        """Register a bracket child: live at once if its parent already filled, else on the fill."""
        parsed = split_ref(request.order_ref)
        if parsed is None or parsed[0] != request.parent_ref:
            raise BrokerError(
                "a bracket child's ref must be <parent>:sl|:tp|:tr of its parent_ref",
                found=request.order_ref,
                fix="build child requests with bridge.protection.child_request",
            )
        role = parsed[1]
        level = float((request.limit_price if role == "take_profit" else request.aux_price) or 0.0)
        rest = Resting(
            request.order_ref, role, request.side, level, request.trail_pct, fixed=request.order_type == "STP"
        )
        parent = self._orders.get(str(request.parent_ref))
        # a parent that has traded all it will (filled, or cut after a partial fill): live at once
        traded = parent is not None and parent.state.done and parent.state.filled > 0
        if role == "trail" and traded and parent is not None:
            rest.mark = self.raw_price(parent.state.avg_fill_price or 0.0, parent.state.side, request.symbol)
        elif role == "trail" and parent is None:  # a parent the broker never had: trail from the market
            rest.mark = self._prices.get(request.symbol, 0.0)
        self._children.setdefault(str(request.parent_ref), []).append((request, rest))
        self._child_refs.add(request.order_ref)
        if parent is None or traded:  # re-attached after the fill: live at once
            self._active[request.order_ref] = self._bar_time(request.symbol)

    def _bar_time(self, symbol: str) -> pd.Timestamp:
        bar = self._forming.get(symbol)
        return bar.time if bar is not None else pd.Timestamp(self.clock.now())

    def _trigger(self, symbol: str, bar: Bar) -> None:
        """A completed bar against the live children of each bracket (research's fill rules)."""
        for kids in self._children.values():
            live = [
                (req, rest)
                for req, rest in kids
                if req.symbol == symbol
                and req.order_ref in self._active
                and not self._orders[req.order_ref].state.done
                and self._protect_after.get(req.order_ref, bar.time - pd.Timedelta(1)) < bar.time
            ]
            if not live:
                continue
            hit = first_fill([rest for _, rest in live], bar.open, bar.high, bar.low)
            if hit is not None:
                rest, px = hit
                order = self._orders[rest.ref]
                self._execute(order, order.state.quantity - order.state.filled, px, slippage=True)
                for req, _ in live:  # one OCA group: the others are cancelled
                    if req.order_ref != rest.ref:
                        self._finish(self._orders[req.order_ref], "cancelled", "OCA group member filled", 202)
                continue
            ratchet([rest for req, rest in live if self._active[req.order_ref] < bar.time], bar.high, bar.low)

    def _bar_limits(self, symbol: str, bar: Bar) -> None:
        """Research's limit entries against one bar (or the forming bar's range so far)."""
        for ref, since in list(self._limit_from.items()):
            order = self._orders[ref]
            st = order.state
            if st.done:
                del self._limit_from[ref]
                continue
            if st.symbol != symbol or bar.time < since or order.mode != "auto":
                continue
            lmt, through = float(st.limit_price or 0.0), (self._limit_ticks or 0.0) * TICK
            if st.side == "BUY" and bar.low <= lmt - through + 1e-9:
                raw = min(bar.open, lmt)
            elif st.side == "SELL" and bar.high >= lmt + through - 1e-9:
                raw = max(bar.open, lmt)
            else:
                continue
            del self._limit_from[ref]
            self._execute(order, st.quantity - st.filled, raw, slippage=True)
            if raw != bar.open:  # filled inside the bar: its children guard from the next bar
                for req, _ in self._children.get(ref, []):
                    self._protect_after[req.order_ref] = bar.time

    def cost_vector(self, symbol: str) -> np.ndarray:
        """The engine's cost vector for ``symbol`` (its own spread if ``costs.spread_bps`` names it)."""
        cfg = self._cfgs.get(symbol)
        if cfg is None:
            cfg = self._cfgs[symbol] = self.sim.to_array(symbol)
        return cfg

    def _book(self, symbol: str, signed: float, price: float, fee: float) -> float | None:
        qty, cost = self._positions.get(symbol, [0.0, 0.0])
        new = qty + signed
        realized = None
        if qty == 0 or (qty > 0) == (signed > 0):
            cost = (abs(qty) * cost + abs(signed) * price) / abs(new) if new else 0.0
        else:
            closed = min(abs(signed), abs(qty))
            realized = (price - cost) * closed * (1 if qty > 0 else -1) - fee
            if abs(new) < 1e-12:
                new, cost = 0.0, 0.0
            elif (new > 0) != (qty > 0):
                cost = price
        self._positions[symbol] = [new, cost]
        return realized


def _row(bar: Bar) -> dict[str, float]:
    return {"open": bar.open, "high": bar.high, "low": bar.low, "close": bar.close, "volume": bar.volume}


class ReplayDriver:
    """Feeds bundled bars through a SimBroker, two updates per bar, at full speed.

    For each bar ``k`` after the warm-up: (1) the clock moves to the bar's start (the
    session open for daily bars) and the bar opens with ``open`` only: that completes bar
    ``k - 1``, the runner decides, and its market orders fill at this open; (2) the bar's
    full values arrive (the price becomes its close). The last bar is never acted on,
    as in the backtest.
    """

    def __init__(
        self,
        broker: SimBroker,
        frames: Mapping[str, pd.DataFrame],
        warmup: int,
        set_clock: Callable[[pd.Timestamp], None],
        open_time: Callable[[pd.Timestamp], pd.Timestamp],
    ) -> None:
        self.broker = broker
        self.frames = {s: f for s, f in frames.items()}
        index = pd.DatetimeIndex(sorted(set().union(*[set(f.index) for f in frames.values()])))
        self.index = index
        self.k = warmup
        self.phase = 0
        self.set_clock = set_clock
        self.open_time = open_time
        for symbol, frame in self.frames.items():
            history = frame.loc[frame.index < index[warmup]] if warmup < len(index) else frame
            broker.load_history(symbol, history.iloc[:-1])
            if len(history):
                last = history.iloc[-1]
                broker.set_forming(
                    symbol,
                    Bar(
                        history.index[-1],
                        float(last["open"]),
                        float(last["high"]),
                        float(last["low"]),
                        float(last["close"]),
                        float(last["volume"]),
                    ),
                )
        broker.driver = self.step

    @property
    def bars_total(self) -> int:
        return len(self.index)

    def step(self) -> bool:
        """Advance one half-bar; False when the data is exhausted."""
        if self.k >= len(self.index):
            return False
        t = self.index[self.k]
        if self.phase == 0:
            self.set_clock(self.open_time(t))
            for symbol, frame in self.frames.items():
                if t in frame.index:
                    o = float(frame.at[t, "open"])
                    self.broker.push_bar(symbol, Bar(t, o, o, o, o, 0.0))
            self.phase = 1
        else:
            for symbol, frame in self.frames.items():
                if t in frame.index:
                    r = frame.loc[t]
                    self.broker.push_bar(
                        symbol,
                        Bar(
                            t,
                            float(r["open"]),
                            float(r["high"]),
                            float(r["low"]),
                            float(r["close"]),
                            float(r["volume"]) if not math.isnan(float(r["volume"])) else 0.0,
                        ),
                    )
            self.phase = 0
            self.k += 1
        return True


def _mark_of(rest: Resting, level: float) -> float:
    """The trailing mark that puts a trailing stop at ``level`` (modify moves the level, not the percent)."""
    pct = (rest.trail_pct or 0.0) / 100.0
    return level / (1 - pct) if rest.side == "SELL" else level / (1 + pct)
