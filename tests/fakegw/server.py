"""``FakeGateway``: the thread-safe control surface of the fake IB Gateway.

The asyncio server runs on its own event loop in a daemon thread, so
synchronous ``ib_async.IB`` code in the test's main thread can talk to it
over 127.0.0.1. Every control method runs on the server loop and returns
once the resulting messages have been written to the sockets.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pandas as pd

from .contracts import Catalogue, Instrument
from .core import GatewayCore
from .farms import farm_down, farm_up
from .history import HistoryError
from .policy import FillPolicy, PolicyRule
from .protocol import MAX_SERVER_VERSION
from .recorder import Handshake, Received, ReceivedOrder
from .state import AccountBook, CommissionSchedule, Execution, GatewayState, Order
from .triggers import INTRABAR
from .visibility import manual_order

T = TypeVar("T")


@dataclass(frozen=True)
class OrderView:
    """Read-only snapshot of a gateway-side order."""

    client_id: int
    order_id: int
    perm_id: int
    symbol: str
    action: str
    quantity: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    order_ref: str
    parent_id: int
    status: str
    filled: float
    remaining: float
    avg_fill_price: float
    commission: float
    account: str
    oca_group: str = ""
    trail_stop: float | None = None  # TRAIL: the stop it sits at now

    @classmethod
    def of(cls, o: Order) -> OrderView:
        r = o.req
        return cls(
            o.client_id,
            o.order_id,
            o.perm_id,
            o.instrument.symbol,
            r.action,
            r.quantity,
            r.order_type,
            r.lmt_price,
            r.aux_price,
            r.order_ref,
            r.parent_id,
            o.status,
            o.filled,
            o.remaining,
            o.avg_fill_price,
            o.commission,
            o.account,
            r.oca_group,
            o.trail_stop,
        )


class FakeGateway:
    """A fake IB Gateway speaking the TWS socket protocol on 127.0.0.1.

    Args:
        accounts: managed account ids (``DU...`` paper, ``U...`` live).
        server_version: highest server version offered (157..178); the
            negotiated one is ``min(client max, this)``.
        cash: starting cash of every account (USD).
        port: TCP port, 0 for a free one.
        timezone: the gateway's zone for bar and execution time stamps.
        clock: returns "now" (aware datetime); fixes execution times.
        instruments: the symbols it qualifies (default: common US stocks/ETFs).
        commission: commission schedule (IB fixed by default).
        default_policy: fill policy for orders no script matches.
        next_order_id: first nextValidId.
        half_spread, quote_size: bid/ask around the last price for ticks.
    """

    def __init__(
        self,
        accounts: Sequence[str] | str = ("DU1234567",),
        *,
        server_version: int = MAX_SERVER_VERSION,
        cash: float = 1_000_000.0,
        host: str = "127.0.0.1",
        port: int = 0,
        timezone: str = "US/Eastern",
        clock: Callable[[], dt.datetime] | None = None,
        instruments: Iterable[Instrument] | None = None,
        commission: CommissionSchedule | None = None,
        default_policy: FillPolicy | None = None,
        next_order_id: int = 1,
        half_spread: float = 0.01,
        quote_size: float = 100.0,
    ) -> None:
        ids = [accounts] if isinstance(accounts, str) else list(accounts)
        if not ids:
            raise ValueError("a gateway needs at least one managed account")
        self.host = host
        self._port = port
        self.tz = ZoneInfo(timezone)
        catalogue = Catalogue.default() if instruments is None else Catalogue({i.symbol: i for i in instruments})
        state = GatewayState(
            accounts={a: AccountBook(a, float(cash)) for a in ids},
            commission=commission or CommissionSchedule(),
            next_order_id=next_order_id,
        )
        self._core_args: dict[str, Any] = dict(
            state=state,
            catalogue=catalogue,
            tz=self.tz,
            max_version=server_version,
            clock=clock or (lambda: dt.datetime.now(dt.UTC)),
            default_policy=default_policy or FillPolicy(),
            half_spread=half_spread,
            quote_size=quote_size,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self.core: GatewayCore | None = None

    # --- lifecycle -----------------------------------------------------------
    def start(self) -> FakeGateway:
        """Start the loop thread and listen; returns once the port is bound."""
        if self._thread is not None:
            return self
        self._loop = asyncio.new_event_loop()
        self.core = GatewayCore(loop=self._loop, **self._core_args)
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-ib-gateway", daemon=True)
        self._thread.start()
        self._submit(self._listen()).result(5)
        return self

    def stop(self) -> None:
        """Close every connection, stop listening and end the loop thread."""
        if self._loop is None or self._thread is None:
            return
        try:
            self._submit(self._shutdown()).result(5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()
            self._thread = None
            self._loop = None

    def __enter__(self) -> FakeGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def server_version(self) -> int:
        return int(self._core_args["max_version"])

    @property
    def accounts(self) -> list[str]:
        return list(self._core_args["state"].accounts)

    async def _listen(self) -> None:
        assert self._loop is not None and self.core is not None
        core = self.core
        self._server = await self._loop.create_server(core.new_session, self.host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        assert self.core is not None
        self.core.drop()

    def _submit(self, coro: Any) -> concurrent.futures.Future[Any]:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the server loop and return its result (re-raising its error)."""
        if self._loop is None or self.core is None:
            raise RuntimeError("FakeGateway is not started")
        try:
            on_server_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_server_loop = False
        if on_server_loop:
            return fn(*args, **kwargs)
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - hand it to the caller
                fut.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return fut.result(5)

    # --- connections ------------------------------------------------------------
    def drop_connections(self, client_id: int | None = None, abort: bool = False) -> int:
        """Close client sockets (all, or one clientId); gateway state survives. Returns how many."""
        return self._call(lambda: self._core.drop(client_id, abort))

    def pause_accepting(self) -> None:
        """Stop listening: new connects are refused until ``resume_accepting``."""

        async def pause() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None

        self._submit(pause()).result(5)

    def resume_accepting(self) -> None:
        """Listen again on the same port."""
        if self._server is None:
            self._submit(self._listen()).result(5)

    def connected_clients(self) -> list[int]:
        return self._call(lambda: sorted(s.client_id for s in self._core.ready_sessions() if s.client_id is not None))

    def inject_error(
        self, code: int, message: str | None = None, req_id: int = -1, client_id: int | None = None
    ) -> int:
        """Send error/status ``code`` to connected clients; returns how many got it."""
        text = message or _STATUS_TEXT.get(code, f"Simulated error {code}")
        return self._call(lambda: self._core.inject_error(code, text, req_id, client_id))

    def connectivity_lost(self) -> int:
        """1100: connectivity between IB and the gateway lost (socket stays open)."""
        return self.inject_error(1100)

    def connectivity_restored(self, data_lost: bool = False) -> int:
        """1101 (data lost) or 1102 (data maintained)."""
        return self.inject_error(1101 if data_lost else 1102)

    def silence(self, msg_id: int, times: int | None = None) -> None:
        """Requests with this message id (e.g. 7 reqExecutions, 16 reqAllOpenOrders) are recorded
        but never answered: every one, or the next ``times``. The socket stays open (a hung gateway)."""
        self._call(lambda: self._core.silent.__setitem__(msg_id, times))

    def unsilence(self, msg_id: int | None = None) -> None:
        """Answer requests with ``msg_id`` (or all) again."""
        self._call(lambda: self._core.silent.clear() if msg_id is None else self._core.silent.pop(msg_id, None))

    def data_farm_down(self, farm: str = "hmds") -> None:
        """2103 (``market``) or 2105 (``hmds``) to every client; HMDS down also silences history
        requests and kills live bar subscriptions with 10182 (see ``farms.py``)."""
        self._call(lambda: farm_down(self._core, farm))

    def data_farm_up(self, farm: str = "hmds") -> None:
        """2104 / 2106: the farm is back; history requests are answered again."""
        self._call(lambda: farm_up(self._core, farm))

    # --- market and history ------------------------------------------------------
    def set_price(self, symbol: str, price: float) -> None:
        """Set the reference/last price: ticks out, resting orders checked, portfolio marked."""
        self._call(lambda: self._core.set_price(symbol, price))

    def price(self, symbol: str) -> float | None:
        return self._call(lambda: self._core.state.prices.get(symbol.upper()))

    def seed_bars(self, symbol: str, frame: pd.DataFrame, set_price: bool = True) -> None:
        """Seed historical bars (see ``BarStore.seed``); the last close becomes the price."""

        def run() -> None:
            core = self._core
            core.bars.seed(symbol, frame)
            close = core.bars.last_close(symbol)
            if set_price and close is not None:
                core.set_price(symbol, close)

        self._call(run)

    def bars(self, symbol: str) -> pd.DataFrame:
        """The stored bars (normalised) of ``symbol``."""
        return self._call(lambda: self._core.bars.frame(symbol))

    def push_bar(
        self, symbol: str, bar: Mapping[str, object] | pd.Series, time: object = None, ticks: list[float] | None = None
    ) -> None:
        """Add a bar (or update the forming one if the stamp exists): keepUpToDate
        subscribers get historicalDataUpdate, then the price walks the bar's intrabar
        path (``set_intrabar``, or ``ticks``: open first, close last) and resting orders
        trigger where the path crosses them."""
        self._call(lambda: self._core.push_bar(symbol, bar, time, ticks))

    def set_intrabar(self, mode: str) -> None:
        """Path of pushed bars: ``auto`` (O-L-H-C if the bar closes at or above its open,
        else O-H-L-C), ``low_first`` or ``high_first``."""
        if mode not in INTRABAR:
            raise ValueError(f"intrabar mode {mode!r} is not one of {INTRABAR}")
        self._call(lambda: setattr(self._core, "intrabar", mode))

    def walk_path(self, symbol: str, points: list[float], gap: bool = True) -> None:
        """Trade ``symbol`` through ``points`` without a bar: the first point is a gap from
        the current price (or continuous with ``gap=False``), then continuous segments."""
        self._call(lambda: self._core.walk_path(symbol, points, gap))

    def fail_history(self, symbol: str, code: int = 162, message: str | None = None, times: int | None = None) -> None:
        """Make reqHistoricalData for ``symbol`` fail with ``code`` (every request, or the next ``times``).

        IB's transient history failures: 162 (HMDS query returned no data / pacing / farm
        down), 321 (validation: ib_async logs it as a warning and waits for its timeout),
        366 (no historical data query found), and ``code=0``: no answer at all, as when the
        HMDS farm is down (ushmds, 2105); the client's request times out.
        """
        text = message or _HISTORY_TEXT.get(
            code,
            f"Historical Market Data Service error message:HMDS query returned no data: {symbol.upper()}@SMART Trades",
        )
        self._call(lambda: self._core.bars.failures.__setitem__(symbol.upper(), HistoryError(code, text, times)))

    def clear_history_failure(self, symbol: str) -> None:
        self._call(lambda: self._core.bars.failures.pop(symbol.upper(), None))

    def add_instrument(self, symbol: str, con_id: int, primary_exchange: str = "NASDAQ", long_name: str = "") -> None:
        inst = Instrument(symbol.upper(), con_id, primary_exchange, long_name or symbol.upper())
        self._call(lambda: self._core.catalogue.add(inst))

    def instrument(self, symbol: str) -> Instrument | None:
        return self._call(lambda: self._core.catalogue.by_symbol(symbol))

    # --- orders and fills -----------------------------------------------------------
    def set_default_policy(self, policy: FillPolicy) -> None:
        self._call(lambda: setattr(self._core, "default_policy", policy))

    def script(
        self,
        policy: FillPolicy,
        *,
        order_ref: str | None = None,
        symbol: str | None = None,
        action: str | None = None,
        order_type: str | None = None,
        once: bool = True,
    ) -> None:
        """Apply ``policy`` to the next order (or every order if ``once=False``) matching all criteria."""
        rule = PolicyRule(policy, order_ref, symbol, action, order_type, once)
        self._call(lambda: self._core.rules.append(rule))

    def clear_scripts(self) -> None:
        self._call(lambda: self._core.rules.clear())

    def set_commission(self, schedule: CommissionSchedule) -> None:
        self._call(lambda: setattr(self._core.state, "commission", schedule))

    def fill_order(
        self,
        order_ref: str | None = None,
        *,
        client_id: int | None = None,
        order_id: int | None = None,
        perm_id: int | None = None,
        qty: float | None = None,
        price: float | None = None,
        commission: float | None = None,
    ) -> Execution:
        """Execute (part of) a working order now, connected client or not.

        Args:
            order_ref / client_id+order_id / perm_id: which order (must be unique).
            qty: shares (default: all remaining).
            price: default: the order's policy price, else the reference price,
                else its limit price.

        Raises:
            LookupError: no (unique) working order matches.
        """

        def run() -> Execution:
            order = self._find(order_ref, client_id, order_id, perm_id)
            if order.is_done:
                raise LookupError(f"order {order.key} is already {order.status}")
            policy = order.policy or self._core.default_policy
            px = next(
                (
                    p
                    for p in (
                        price,
                        policy.price,
                        self._core.state.prices.get(order.instrument.symbol),
                        order.req.lmt_price,
                        order.req.aux_price,
                    )
                    if p is not None
                ),
                None,
            )
            if px is None:
                raise LookupError(f"no price to fill {order.key} at; pass price=")
            ex = self._core.engine.execute(order, qty or order.remaining, px, commission)
            assert ex is not None
            return dataclasses.replace(ex)

        return self._call(run)

    def fill_order_while_disconnected(self, order_ref: str | None = None, **kwargs: Any) -> Execution:
        """``fill_order``, asserting the owning client is not connected right now."""

        def owner_connected() -> bool:
            order = self._find(order_ref, kwargs.get("client_id"), kwargs.get("order_id"), kwargs.get("perm_id"))
            return self._core.session_for(order.client_id) is not None

        if self._call(owner_connected):
            raise AssertionError("the order's client is still connected")
        return self.fill_order(order_ref, **kwargs)

    def cancel_order(
        self,
        order_ref: str | None = None,
        *,
        client_id: int | None = None,
        order_id: int | None = None,
        perm_id: int | None = None,
        reason: str = "",
    ) -> None:
        """Cancel a working order from the gateway side (orderStatus Cancelled + 202)."""
        self._call(lambda: self._core.engine.cancel_order(self._find(order_ref, client_id, order_id, perm_id), reason))

    def expire_day_orders(self) -> list[OrderView]:
        """The session ends: every working DAY order (IB's default TIF, also an empty one) is
        cancelled at the broker (orderStatus Cancelled + 202), a parent's children with it.
        GTC orders keep working. Returns the orders that expired."""

        def run() -> list[OrderView]:
            engine = self._core.engine
            gone = [
                o
                for o in self._core.state.orders.values()
                if not o.is_done and not o.held and o.req.tif.upper() in ("", "DAY")
            ]
            for o in gone:
                engine.cancel_order(o, "")
            return [OrderView.of(o) for o in gone]

        return self._call(run)

    def _find(self, order_ref: str | None, client_id: int | None, order_id: int | None, perm_id: int | None) -> Order:
        orders = list(self._core.state.orders.values())
        if order_ref is not None:
            orders = [o for o in orders if o.order_ref == order_ref]
        if client_id is not None:
            orders = [o for o in orders if o.client_id == client_id]
        if order_id is not None:
            orders = [o for o in orders if o.order_id == order_id]
        if perm_id is not None:
            orders = [o for o in orders if o.perm_id == perm_id]
        working = [o for o in orders if not o.is_done] or orders
        if len(working) != 1:
            raise LookupError(
                f"{len(working)} orders match ref={order_ref} client={client_id} id={order_id} perm={perm_id}"
            )
        return working[0]

    def place_manual_order(
        self,
        symbol: str,
        action: str,
        quantity: float,
        *,
        order_type: str = "MKT",
        lmt_price: float | None = None,
        order_ref: str = "",
        policy: FillPolicy | None = None,
    ) -> OrderView:
        """An order typed into TWS (not through the API): owned by no API client until client 0
        binds it (``reqOpenOrders`` from client 0, or at once after ``reqAutoOpenOrders(True)``)."""
        return self._call(
            lambda: OrderView.of(
                manual_order(self._core, symbol, action, quantity, order_type, lmt_price, order_ref, policy)
            )
        )

    def restart(self, next_order_id: int = 1) -> None:
        """A gateway restart: every connection drops, orders and executions survive at IB,
        and the order-id sequence starts again at ``next_order_id`` (permIds stay unique).
        Orders held with ``transmit=0`` never reached IB and are lost."""

        def run() -> None:
            core = self._core
            core.drop()
            for key, order in list(core.state.orders.items()):
                if order.held:  # transmit=0: never left the gateway, so it dies with it
                    del core.state.orders[key]
            core.state.epoch += 1
            core.state.next_order_id = next_order_id

        self._call(run)

    # --- account ---------------------------------------------------------------------
    def set_cash(self, amount: float, account: str | None = None) -> None:
        def run() -> None:
            self._core.state.book(account or self._core.state.default_account).cash = float(amount)

        self._call(run)

    def set_position(self, symbol: str, qty: float, avg_cost: float, account: str | None = None) -> None:
        """Preload a position (no cash change), e.g. before the first connect."""

        def run() -> None:
            inst = self._core.catalogue.by_symbol(symbol)
            if inst is None:
                raise LookupError(f"unknown symbol {symbol}; add_instrument first")
            pos = self._core.state.book(account or self._core.state.default_account).position(inst)
            pos.qty, pos.avg_cost = float(qty), float(avg_cost)
            self._core.on_account_change(account or self._core.state.default_account, inst.symbol)

        self._call(run)

    def position(self, symbol: str, account: str | None = None) -> tuple[float, float]:
        """``(qty, avg_cost)`` held in ``symbol`` (zeros if none)."""

        def run() -> tuple[float, float]:
            book = self._core.state.book(account or self._core.state.default_account)
            pos = book.positions.get(symbol.upper())
            return (pos.qty, pos.avg_cost) if pos else (0.0, 0.0)

        return self._call(run)

    def cash(self, account: str | None = None) -> float:
        return self._call(lambda: self._core.state.book(account or self._core.state.default_account).cash)

    def account_values(self, account: str | None = None) -> dict[str, float]:
        """Numeric account values as the gateway would send them now."""
        return self._call(
            lambda: self._core.state.book(account or self._core.state.default_account).value_map(
                self._core.state.prices
            )
        )

    # --- recording ---------------------------------------------------------------------
    def orders(self, order_ref: str | None = None) -> list[OrderView]:
        """Gateway-side orders (snapshots), optionally by orderRef."""
        return self._call(
            lambda: [
                OrderView.of(o)
                for o in self._core.state.orders.values()
                if order_ref is None or o.order_ref == order_ref
            ]
        )

    def executions(self, order_ref: str | None = None) -> list[Execution]:
        return self._call(
            lambda: [
                dataclasses.replace(e)
                for e in self._core.state.executions
                if order_ref is None or e.order_ref == order_ref
            ]
        )

    def received(self, msg_id: int | None = None, client_id: int | None = None) -> list[Received]:
        """Every parsed client message (after the handshake), optionally filtered."""
        return self._core.recorder.messages(msg_id, client_id)

    def orders_received(self, order_ref: str | None = None) -> list[ReceivedOrder]:
        """Every placeOrder received (including modifies and whatIf), optionally by orderRef."""
        return self._core.recorder.orders(order_ref)

    def handshakes(self) -> list[Handshake]:
        return self._core.recorder.handshakes()

    @property
    def internal_errors(self) -> list[str]:
        """Failures inside the fake itself (should stay empty)."""
        return list(self._core.errors)

    @property
    def _core(self) -> GatewayCore:
        if self.core is None:
            raise RuntimeError("FakeGateway is not started")
        return self.core


_HISTORY_TEXT = {
    0: "(no answer)",
    321: "Error validating request.-'bN' : cause - Historical Market Data Service query message:HMDS server disconnect",
    366: "No historical data query found for ticker id",
}

_STATUS_TEXT = {
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
    2103: "Market data farm connection is broken:usfarm",
    2105: "HMDS data farm connection is broken:ushmds",
    2104: "Market data farm connection is OK:usfarm",
    2106: "HMDS data farm connection is OK:ushmds",
    2158: "Sec-def data farm connection is OK:secdefnj",
    2157: "Sec-def data farm connection is broken:secdefnj",
    2107: "HMDS data farm connection is inactive but should be available upon demand.ushmds",
    2108: "Market data farm connection is inactive but should be available upon demand.usfarm",
    10182: "Failed to request live updates (disconnected).",
}
