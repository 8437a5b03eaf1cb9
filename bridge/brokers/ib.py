"""IBBroker: the Broker protocol over Interactive Brokers (ib_async, ib_insync fallback).

The ONLY module in the project that imports the IB library. camelCase stays here;
everything leaves as the plain values of :mod:`bridge.brokers.protocol`.

Behaviours this adapter relies on (see ``../shared/docs/tws-protocol-notes.md``):

- ``RaiseRequestErrors`` is on: a failed request raises instead of returning empty
  (error 200 on qualify -> :class:`UnknownSymbol`, 162 on history -> :class:`StaleData`).
- A server-side drop surfaces in the blocking API as ``ConnectionError`` from whatever
  call is running, plus ``disconnectedEvent``; both become one ``ConnectionEvent``.
- ``IB.connect`` resets the client's caches, so Trade objects from before a reconnect
  are dead: orders are matched by **orderRef** (and fills by execId), never by orderId.
- Commissions arrive in ``commissionReportEvent`` after the fill; fills are reported
  from there so every Fill carries its commission.
- 1100 (IB connectivity lost), 1101 (restored, data lost: resubscribe) and 1102
  (restored, data kept) become ``ConnectionEvent`` kinds ``lost``/``restored_data_lost``/
  ``restored``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import math
import select
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd

from bridge.brokers.protocol import (
    Account,
    Bar,
    BarEvent,
    BrokerStatus,
    ConnectionEvent,
    ErrorEvent,
    Event,
    Fill,
    FillEvent,
    OrderEvent,
    OrderRequest,
    OrderState,
    Position,
)
from bridge.config import GatewayConfig
from bridge.errors import (
    API_PORT_HINT,
    AccountError,
    BrokerDisconnected,
    BrokerError,
    GatewayUnreachable,
    OrderUnconfirmed,
    StaleData,
    UnknownSymbol,
)
from bridge.protection import split_ref
from quantlab.engine.intervals import Interval

try:  # the maintained fork first, the archived original as a fallback
    import ib_async as _ib
except ImportError:  # pragma: no cover - exercised only where ib_insync is installed
    import ib_insync as _ib  # type: ignore[no-redef]

log = logging.getLogger("bridge.ib")
LIBRARY = _ib.__name__
BAR_SIZES = {"1d": "1 day", "1h": "1 hour", "30m": "30 mins", "15m": "15 mins", "5m": "5 mins", "1m": "1 min"}
_PENDING = {"PendingSubmit", "ApiPending"}
_WORKING = {"PreSubmitted", "Submitted", "PendingCancel", "ValidationError"}
_CANCELLED = {"Cancelled", "ApiCancelled", "Inactive"}
_INFO_CODES = {2104, 2106, 2107, 2108, 2119, 2158}
_REQUEST_CODES = {162, 200, 321, 322, 354}
#: ocaType of a bracket's children: 2 = "remaining orders are proportionately reduced in size
#: with block". The children cover one position, so a partial fill of one must shrink the
#: others (type 1 would cancel the stop at the target's first partial execution and leave
#: the rest of the position unprotected); "with block" keeps IB from routing two of them at
#: once, so they cannot both fill and overshoot the position.
OCA_TYPE = 2


class IBBroker:
    """Interactive Brokers through IB Gateway/TWS over the TWS socket API."""

    name = "ib"

    def __init__(self, gateway: GatewayConfig, *, use_rth: bool = True, what_to_show: str = "TRADES") -> None:
        self.cfg = gateway
        self.use_rth = use_rth
        self.what_to_show = what_to_show
        self.ib = _ib.IB()
        self.ib.RaiseRequestErrors = True
        # blocking requests wait forever by default: a hung gateway would freeze the loop (and
        # `bridge stop`); a timeout is a transient error the runner retries (bridge.runtime.recovery)
        self.ib.RequestTimeout = gateway.request_timeout
        self._events: list[Event] = []
        self._wake: asyncio.Future[None] | None = None
        self._contracts: dict[str, Any] = {}
        self._subs: dict[int, str] = {}  # id(BarDataList) -> symbol
        self._sub_lists: dict[str, Any] = {}  # symbol -> live BarDataList (to cancel on resubscribe)
        self._sub_reqs: dict[int, str] = {}  # reqId of a keepUpToDate request -> symbol
        self._account = gateway.account
        self._all_open: list[Any] = []  # every client's open orders at the last sync (reqAllOpenOrders)
        self._completed: list[Any] = []  # every client's completed orders at the last sync
        self._top_id = 0  # highest order id this process placed (ids must never repeat: see _skip_used_ids)
        self._closing = False
        self._down_reported = False
        self.ib.barUpdateEvent += self._on_bar
        self.ib.orderStatusEvent += self._on_status
        self.ib.commissionReportEvent += self._on_commission
        self.ib.errorEvent += self._on_error
        self.ib.disconnectedEvent += self._on_disconnected
        self._completed_status: dict[int, str] = {}  # permId -> completedStatus of completed orders
        self._wrap_completed_order()

    # --- connection ----------------------------------------------------------
    def connect(self) -> None:
        """One connection attempt (the runner retries with backoff)."""
        g = self.cfg
        self._closing = False
        try:
            self.ib.connect(g.host, g.port, clientId=g.client_id, timeout=g.connect_timeout, account=self._account)
        except (ConnectionRefusedError, OSError, ConnectionError, TimeoutError) as err:
            timed_out = isinstance(err, (asyncio.TimeoutError, TimeoutError))
            raise GatewayUnreachable(
                f"cannot connect to IB Gateway/TWS at {g.host}:{g.port} (clientId {g.client_id})",
                found=(
                    "timed out: the API port may be closed to API clients, the client id "
                    f"{g.client_id} may already be in use, or the gateway is not logged in"
                )
                if timed_out
                else repr(err),
                fix=API_PORT_HINT,
            ) from None
        self._down_reported = False
        accounts = self.managed_accounts()
        if self._account and self._account not in accounts:
            self.disconnect()
            raise AccountError(
                "the configured account is not managed by this gateway login",
                found=f"configured {self._account}, gateway offers {', '.join(accounts)}",
                fix="set gateway.account (or --confirm-account) to one of the listed accounts",
            )
        if not self._account:
            if len(accounts) != 1:
                self.disconnect()
                raise AccountError(
                    "the gateway manages several accounts",
                    found=", ".join(accounts),
                    fix="set gateway.account in bridge.toml",
                )
            self._account = accounts[0]
        self._subs.clear()
        self._sub_lists.clear()
        self._sub_reqs.clear()
        self._skip_used_ids()
        log.info(
            "connected",
            extra={
                "event": "connected",
                "host": g.host,
                "port": g.port,
                "client_id": g.client_id,
                "account": self._account,
                "library": LIBRARY,
                "server_version": self.ib.client.serverVersion(),
            },
        )

    def _skip_used_ids(self) -> None:
        """Move the order-id sequence past every id this client id used today.

        A restarted gateway offers ids from its start value again, and IB answers an id
        one of our completed orders holds with error 103 (the order is lost). ib_async skips
        the ids of open orders it is shown; completed orders carry no id, but executions do,
        and this process remembers the ids it placed.
        """
        used = [
            int(f.execution.orderId or 0)
            for f in self.ib.fills()
            if int(f.execution.clientId or 0) == self.cfg.client_id
        ]
        top = max(used + [self._top_id])
        if top > 0:
            self.ib.client.updateReqId(top + 1)

    def disconnect(self) -> None:
        self._closing = True
        try:
            self.ib.disconnect()
        finally:
            self._subs.clear()

    def is_connected(self) -> bool:
        return bool(self.ib.isConnected())

    def account_id(self) -> str:
        return self._account

    def managed_accounts(self) -> list[str]:
        return list(self.ib.managedAccounts())

    def qualify(self, symbols: Sequence[str]) -> None:
        for symbol in symbols:
            if symbol in self._contracts:
                continue
            contract = _ib.Stock(symbol, "SMART", "USD")
            try:
                done = self._blocking(self.ib.qualifyContracts, contract)
            except _ib.RequestError as err:
                if err.code == 200:
                    raise UnknownSymbol(
                        f"IB does not know the symbol {symbol!r} (error 200: no security definition)",
                        found=err.message,
                        fix="check the ticker (US stocks and ETFs on SMART, USD)",
                    ) from None
                raise BrokerError(f"qualifying {symbol} failed", found=f"IB error {err.code}: {err.message}") from None
            if not done or not getattr(done[0], "conId", 0):
                raise UnknownSymbol(
                    f"IB could not qualify the symbol {symbol!r}", found="no unique contract", fix="check the ticker"
                )
            self._contracts[symbol] = done[0]

    # --- market data -------------------------------------------------------------
    def subscribe_bars(self, symbol: str, interval: Interval, bars: int) -> pd.DataFrame:
        self.qualify([symbol])
        contract = self._contracts[symbol]
        for key, sym in list(self._subs.items()):
            if sym == symbol:
                del self._subs[key]
        old = self._sub_lists.pop(symbol, None)
        if old is not None and self.is_connected():
            self._sub_reqs.pop(getattr(old, "reqId", -1), None)
            try:
                self.ib.cancelHistoricalData(old)  # same connection (1101): stop the old stream
            except Exception:  # noqa: BLE001 - best effort, the new subscription replaces it
                log.debug("cancelHistoricalData failed", extra={"event": "cancel_history_failed", "symbol": symbol})
        try:
            data = self._blocking(
                self.ib.reqHistoricalData,
                contract,
                endDateTime="",
                durationStr=_duration(interval, bars),
                barSizeSetting=BAR_SIZES[interval.name],
                whatToShow=self.what_to_show,
                useRTH=self.use_rth,
                formatDate=2,
                keepUpToDate=True,
                timeout=self.cfg.request_timeout,
            )
        except _ib.RequestError as err:
            if err.code == 200:
                raise UnknownSymbol(f"IB does not know the symbol {symbol!r} (error 200)", found=err.message) from None
            raise StaleData(
                f"no historical bars for {symbol}",
                found=f"IB error {err.code}: {err.message}",
                fix="check market-data permissions and the bar size",
            ) from None
        except BrokerError as err:  # no answer within request_timeout (HMDS farm down, hung gateway)
            raise StaleData(
                f"no historical bars for {symbol} (no answer)",
                found=err.what,
                fix="check market-data permissions and the gateway's data farms (2105/2106)",
            ) from None
        if not data:
            raise StaleData(
                f"no historical bars for {symbol} (empty answer or timeout)",
                found=f"{BAR_SIZES[interval.name]} bars",
                fix="check market-data permissions; never trade without history",
            )
        self._subs[id(data)] = symbol
        self._sub_lists[symbol] = data
        self._sub_reqs[int(getattr(data, "reqId", -1))] = symbol
        rows = [(_bar_time(b.date), b.open, b.high, b.low, b.close, max(float(b.volume), 0.0)) for b in data]
        frame = pd.DataFrame(rows, columns=["time", "open", "high", "low", "close", "volume"]).set_index("time")
        frame.index = pd.DatetimeIndex(frame.index)
        return frame

    # --- orders --------------------------------------------------------------------
    def _contract(self, symbol: str) -> Any:
        contract = self._contracts.get(symbol)
        if contract is None:
            self.qualify([symbol])
            contract = self._contracts[symbol]
        return contract

    def _order(self, request: OrderRequest, **extra: Any) -> Any:
        """The ib_async order of ``request`` (MKT, LMT, STP with auxPrice, TRAIL with trailingPercent).
        A protective child carries its OCA group (``OCA_TYPE``); its parentId is set by the caller."""
        kw: dict[str, Any] = dict(
            orderRef=request.order_ref, tif=request.tif, account=self._account, outsideRth=False, **extra
        )
        if request.oca_group:
            kw.setdefault("ocaGroup", request.oca_group)
            kw.setdefault("ocaType", OCA_TYPE)
        kind = request.order_type
        if kind == "LMT":
            return _ib.LimitOrder(request.side, request.quantity, float(request.limit_price or 0.0), **kw)
        if kind == "STP":
            return _ib.StopOrder(request.side, request.quantity, float(request.aux_price or 0.0), **kw)
        if kind == "TRAIL":
            return _ib.Order(
                action=request.side,
                totalQuantity=request.quantity,
                orderType="TRAIL",
                trailingPercent=float(request.trail_pct or 0.0),
                **kw,
            )
        return _ib.MarketOrder(request.side, request.quantity, **kw)

    def _check_up(self, order_ref: str) -> None:
        if not self.is_connected() or self._socket_dead():
            self._report_down("the gateway closed the socket")
            raise BrokerDisconnected("not connected to IB: order not sent", found=order_ref)

    def place(self, request: OrderRequest) -> OrderState:
        """Place one order. The socket itself is checked before and after the write: ib_async
        notices a server-side close only when its loop runs, and meanwhile writes orders into
        the dead socket without error (they are lost).

        Raises:
            BrokerDisconnected: the connection is down; nothing was written.
            OrderUnconfirmed: the gateway closed the socket around the write; outcome unknown.
        """
        self._check_up(request.order_ref)
        check_request(request)
        contract = self._contract(request.symbol)
        # a lone protective order (no parentId: the entry it protects has filled, possibly in
        # another gateway session whose order ids mean nothing now) still joins its OCA group
        trade = self.ib.placeOrder(contract, self._order(request))
        self._top_id = max(self._top_id, int(trade.order.orderId or 0))
        if self._socket_dead():
            self._report_down("the gateway closed the socket during placeOrder")
            raise OrderUnconfirmed(
                "order written into a socket the gateway had closed: it may not have arrived",
                found=request.order_ref,
                fix="nothing to do: the reconnect resolves it",
            ) from None
        return self._state(trade)

    def place_bracket(self, parent: OrderRequest, children: Sequence[OrderRequest]) -> list[OrderState]:
        """Place an entry with its protective children as IB documents brackets: the parent and
        every child but the last with ``transmit=False`` (held at the gateway, never routed),
        each child with ``parentId`` = the parent's order id, its ``ocaGroup`` (``OCA_TYPE``)
        and its deterministic orderRef; the last child's ``transmit=True`` releases the chain.
        The socket is checked after every write: a gateway that went away mid-bracket took the
        held orders with it, so nothing was transmitted.

        Raises:
            BridgeError: a child that is not this parent's (checked before anything is written).
            BrokerDisconnected: the connection is down; nothing was written.
            OrderUnconfirmed: the gateway closed the socket during the writes; outcome unknown
                (nothing was transmitted unless the last child had been written).
        """
        if not children:
            return [self.place(parent)]
        for child in children:
            check_request(child, parent)
        self._check_up(parent.order_ref)
        contract = self._contract(parent.symbol)
        head = self._order(parent, transmit=False)
        head.orderId = self.ib.client.getReqId()
        orders = [head] + [
            self._order(child, parentId=head.orderId, transmit=i == len(children) - 1)
            for i, child in enumerate(children)
        ]
        trades = []
        for order in orders:
            trades.append(self.ib.placeOrder(contract, order))
            self._top_id = max(self._top_id, int(order.orderId or 0))
            if self._socket_dead():
                self._report_down("the gateway closed the socket during a bracket")
                raise OrderUnconfirmed(
                    f"bracket written into a socket the gateway had closed after {len(trades)} of "
                    f"{len(orders)} orders: held orders die with the connection to the gateway",
                    found=order.orderRef,
                    fix="nothing to do: the reconnect resolves it (voided if the broker never got it)",
                )
        log.info(
            "bracket placed",
            extra={
                "event": "bracket_placed",
                "order_ref": parent.order_ref,
                "children": [c.order_ref for c in children],
                "parent_id": head.orderId,
            },
        )
        return [self._state(t) for t in trades]

    def modify(self, order_ref: str, *, level: float | None = None, quantity: float | None = None) -> bool:
        """Re-send one of this client's open orders with the same orderId and a new level
        (``auxPrice`` of a STP, ``lmtPrice`` of a LMT) or quantity. The order is found by its
        orderRef among this connection's open trades (Trade objects die with a reconnect and
        order ids with a gateway restart: the id is the one the gateway reports now).

        False, with a log line saying why, for an order another client id placed (IB lets only
        the placing client modify it), an order that is not open, or a level the order type has
        not; nothing is sent then.
        """
        if not self.is_connected() or self._socket_dead():
            self._report_down("the gateway closed the socket")
            return self._refuse_modify(order_ref, "not connected to IB")
        trade = next((t for t in self.ib.openTrades() if t.order.orderRef == order_ref and self._own(t)), None)
        if trade is None:
            other = next((t for t in self._all_open if t.order.orderRef == order_ref and not self._own(t)), None)
            why = (
                f"placed by client id {other.order.clientId}, not this one ({self.cfg.client_id}): "
                "IB lets only the placing client modify an order"
                if other is not None
                else "not open at the broker (filled, cancelled, or never placed)"
            )
            return self._refuse_modify(order_ref, why)
        # a plain Order copy (StopOrder & co. take other __init__ arguments than their fields)
        order = _ib.Order(**{f.name: getattr(trade.order, f.name) for f in dataclasses.fields(_ib.Order)})
        order.transmit = True
        if level is not None:
            if order.orderType == "STP":
                order.auxPrice = float(level)
            elif order.orderType == "LMT":
                order.lmtPrice = float(level)
            else:
                return self._refuse_modify(order_ref, f"a {order.orderType} order has no level to move")
        if quantity is not None:
            order.totalQuantity = float(quantity)
        try:
            self.ib.placeOrder(trade.contract, order)
        except AssertionError:  # ib_async sent it, then saw the trade is done (filled meanwhile): IB answers 104
            return self._refuse_modify(order_ref, "it completed while the modify was sent")
        log.info(
            "order modified",
            extra={"event": "order_modified", "order_ref": order_ref, "level": level, "quantity": quantity},
        )
        return True

    def _refuse_modify(self, order_ref: str, why: str) -> bool:
        log.warning(
            f"modify of {order_ref} refused: {why}",
            extra={"event": "modify_refused", "order_ref": order_ref, "detail": why},
        )
        return False

    def _socket_dead(self) -> bool:
        """True if the gateway hung up (or the socket errored), whether or not the loop saw it yet."""
        transport = self.ib.client.conn.transport
        if transport is None or transport.is_closing():
            return True
        sock = transport.get_extra_info("socket")
        if sock is None:
            return True
        hangup = select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0)
        poller = select.poll()
        poller.register(sock.fileno(), hangup)
        return any(ev & hangup for _, ev in poller.poll(0))

    def wait_acknowledged(self, order_ref: str, timeout: float) -> bool:
        """Run the loop until the gateway acknowledged ``order_ref`` (test hook for the crash window)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t in self.ib.trades():
                if t.order.orderRef == order_ref and t.orderStatus.status not in _PENDING:
                    return True
            self.ib.sleep(0.01)
        return False

    def cancel(self, order_ref: str) -> bool:
        """Cancel one of this client's orders. False for an order another client id placed:
        IB cancels by (clientId, orderId), so sending its id would cancel our own order
        with the same id, if any."""
        if not self.is_connected():
            raise BrokerDisconnected("not connected to IB: cancel not sent", found=order_ref)
        for trade in self.ib.openTrades():
            if trade.order.orderRef == order_ref and self._own(trade):
                self.ib.cancelOrder(trade.order)
                return True
        return False

    def cancel_all(self) -> None:
        if not self.is_connected():
            raise BrokerDisconnected("not connected to IB: global cancel not sent")
        self.ib.reqGlobalCancel()

    def sync(self) -> None:
        """Every client's open and completed orders and executions (see ``bridge.reconcile``).

        The replies are kept: ib_async keeps its cache of another client's order as it was
        when listed (no updates follow), so only the latest reply says what is still open.
        """
        self._all_open = list(self._blocking(self.ib.reqAllOpenOrders) or [])
        self._completed = list(self._blocking(self.ib.reqCompletedOrders, False) or [])
        self._blocking(self.ib.reqExecutions)

    def open_orders(self) -> list[OrderState]:
        """This client's open orders (kept current), then other clients' as of the last sync."""
        own = [t for t in self.ib.openTrades() if t.order.orderRef and self._own(t)]
        seen = {t.order.permId for t in own}
        done = {t.order.permId for t in self._completed}
        others = [
            t
            for t in self._all_open
            if t.order.orderRef
            and not self._own(t)
            and not t.isDone()
            and t.order.permId not in seen
            and t.order.permId not in done
        ]
        return [self._state(t) for t in own + others]

    def completed_orders(self) -> list[OrderState]:
        mine = [t for t in self.ib.trades() if t.isDone() and t.order.orderRef]
        seen = {t.order.permId for t in mine}
        return [
            self._state(t)
            for t in mine + [t for t in self._completed if t.order.orderRef and t.order.permId not in seen]
        ]

    def _own(self, trade: Any) -> bool:
        return int(trade.order.clientId or 0) == self.cfg.client_id

    def executions(self) -> list[Fill]:
        return [self._fill(f) for f in self.ib.fills()]

    def positions(self) -> dict[str, Position]:
        out: dict[str, Position] = {}
        for p in self.ib.positions(self._account):
            if p.contract.secType == "STK" and p.position:
                out[p.contract.symbol] = Position(p.contract.symbol, float(p.position), float(p.avgCost))
        return out

    def account(self) -> Account:
        values: dict[str, float] = {}
        for v in self.ib.accountValues(self._account):
            if v.currency in ("USD", "BASE") and not v.modelCode and v.tag in ("TotalCashValue", "NetLiquidation"):
                try:
                    values.setdefault(v.tag, float(v.value))
                except ValueError:
                    continue
        marks = {
            item.contract.symbol: (float(item.position), float(item.marketPrice))
            for item in self.ib.portfolio(self._account)
            if item.contract.secType == "STK" and item.position
        }
        return Account(
            self._account, values.get("TotalCashValue", math.nan), values.get("NetLiquidation", math.nan), marks=marks
        )

    # --- events ------------------------------------------------------------------------
    def poll(self, timeout: float) -> list[Event]:
        """Run the client's loop until an event arrives or ``timeout`` passes.

        ``IB.waitOnUpdate`` can miss data already buffered when it is called (its waiter
        registers one loop iteration late) and then sleeps the whole timeout; waiting on a
        future that our own handlers complete has no such window.
        """
        if not self._events and timeout > 0:
            try:
                if self.is_connected():
                    self._wake = _ib.util.getLoop().create_future()
                    _ib.util.run(self._wake, timeout=timeout)
                else:
                    self.ib.sleep(timeout)
            except ConnectionError:
                self._report_down("socket disconnect")
            except (TimeoutError, asyncio.CancelledError):
                pass
            finally:
                self._wake = None
        events, self._events = self._events, []
        return events

    def _push(self, event: Event) -> None:
        self._events.append(event)
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _blocking(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.is_connected():
            raise BrokerDisconnected("not connected to IB", found=getattr(fn, "__name__", "request"))
        try:
            return fn(*args, **kwargs)
        except ConnectionError as err:
            self._report_down(str(err))
            raise BrokerDisconnected("the IB connection dropped during a request", found=repr(err)) from None
        except TimeoutError:
            raise BrokerError(
                "IB request timed out",
                found=getattr(fn, "__name__", "request"),
                fix="check the gateway; the bridge retries after reconnecting",
            ) from None

    def _report_down(self, why: str) -> None:
        if not self._down_reported and not self._closing:
            self._down_reported = True
            self._push(ConnectionEvent("disconnected", why))

    def _on_disconnected(self) -> None:
        self._report_down("disconnectedEvent")

    def _on_bar(self, bars: Any, has_new_bar: bool) -> None:
        symbol = self._subs.get(id(bars))
        if symbol is None:
            return
        now = time.perf_counter()
        # the new bar first: the decision on the completed one then knows the open it trades at
        # (``fill_est``), so a bracket is measured from it as research measures it from the fill
        if len(bars):
            self._push(BarEvent(symbol, _bar(bars[-1]), False, now))
        if has_new_bar and len(bars) >= 2:
            self._push(BarEvent(symbol, _bar(bars[-2]), True, now))

    def _on_status(self, trade: Any) -> None:
        if trade.order.orderRef:
            self._push(OrderEvent(self._state(trade)))

    def _on_commission(self, trade: Any, fill: Any, report: Any) -> None:
        self._push(FillEvent(self._fill(fill)))

    def _on_error(self, req_id: int, code: int, message: str, contract: Any) -> None:
        if code == 1100:
            self._push(ConnectionEvent("lost", message))
        elif code == 1101:
            self._push(ConnectionEvent("restored_data_lost", message))
        elif code == 1102:
            self._push(ConnectionEvent("restored", message))
        elif req_id in self._sub_reqs and code not in _INFO_CODES and not 2100 <= code < 2200:
            # a live bar subscription failed (e.g. 10182 after a data-farm outage): resubscribe
            symbol = self._sub_reqs.pop(req_id)
            self._push(ErrorEvent(code, message, "", symbol))
            self._push(
                ConnectionEvent("restored_data_lost", f"bar subscription for {symbol} failed ({code}): resubscribing")
            )
        elif code in _INFO_CODES:
            log.debug("gateway info", extra={"event": "gateway_info", "code": code, "detail": message})
        else:
            trade = self.ib.wrapper.trades.get((self.cfg.client_id, req_id)) if req_id > 0 else None
            ref = trade.order.orderRef if trade is not None else ""
            if not ref and code in _REQUEST_CODES:
                return  # raised to the caller of the request (RaiseRequestErrors)
            symbol = trade.contract.symbol if trade is not None else getattr(contract, "symbol", "") or ""
            self._push(ErrorEvent(code, message, ref, symbol))

    def _wrap_completed_order(self) -> None:
        """Keep each completed order's ``completedStatus`` (e.g. "Rejected: ..."): ib_async builds the
        Trade from ``orderState.status`` alone ("Cancelled"), so after a reconnect a rejection the
        runner missed live would look like a cancel, and its target would stay "acted on"."""
        original = self.ib.wrapper.completedOrder

        def completed_order(contract: _ib.Contract, order: _ib.Order, order_state: _ib.OrderState) -> None:
            if order.permId:
                self._completed_status[int(order.permId)] = str(getattr(order_state, "completedStatus", "") or "")
            original(contract, order, order_state)

        # ib_async has no hook for completedStatus: wrap its handler (the one method patched)
        self.ib.wrapper.completedOrder = completed_order  # type: ignore[assignment]

    # --- conversions ---------------------------------------------------------------------
    def _state(self, trade: Any) -> OrderState:
        o, s = trade.order, trade.orderStatus
        fills = sum(float(f.execution.shares) for f in trade.fills)
        filled_qty = getattr(o, "filledQuantity", 0.0)
        filled_qty = float(filled_qty) if isinstance(filled_qty, (int, float)) and filled_qty < 1e300 else 0.0
        filled = max(float(s.filled or 0.0), fills, filled_qty)
        qty = float(o.totalQuantity)
        codes = [e.errorCode for e in trade.log if getattr(e, "errorCode", 0)]
        status = _status(s.status, codes, filled, qty)
        avg = float(s.avgFillPrice or 0.0)
        if not avg and trade.fills:
            avg = sum(float(f.execution.shares) * float(f.execution.price) for f in trade.fills) / max(fills, 1e-12)
        message = next((e.message for e in reversed(trade.log) if getattr(e, "errorCode", 0)), "")
        completed = self._completed_status.get(int(o.permId or 0), "")
        if status == "cancelled" and filled == 0 and completed.lower().startswith("rejected"):
            status, message = "rejected", message or completed
        lmt = float(o.lmtPrice) if o.orderType == "LMT" and _set(o.lmtPrice) else None
        return OrderState(
            order_ref=o.orderRef,
            symbol=trade.contract.symbol,
            side="BUY" if o.action.upper() == "BUY" else "SELL",
            quantity=qty,
            order_type=o.orderType,
            status=status,
            filled=filled,
            remaining=max(qty - filled, 0.0)
            if status in ("filled", "cancelled", "rejected")
            else float(s.remaining or max(qty - filled, 0.0)),
            avg_fill_price=avg,
            limit_price=lmt,
            broker_order_id=int(o.orderId or 0),
            perm_id=int(o.permId or 0),
            message=message,
            error_code=codes[-1] if codes else 0,
            foreign=not self._own(trade),
            client_id=int(o.clientId or 0),
            parent_ref=self._parent_ref(o),
            aux_price=float(o.auxPrice) if o.orderType == "STP" and _set(o.auxPrice) else None,
            trail_pct=float(o.trailingPercent) if o.orderType == "TRAIL" and _set(o.trailingPercent) else None,
            oca_group=str(o.ocaGroup or "") or None,
        )

    def _parent_ref(self, order: Any) -> str | None:
        """The orderRef of ``order``'s parent: read from the child's own deterministic ref
        (``bridge.protection.split_ref``), else looked up by parentId among this client's trades."""
        parsed = split_ref(str(order.orderRef or ""))
        if parsed is not None:
            return parsed[0]
        pid = int(getattr(order, "parentId", 0) or 0)
        if not pid:
            return None
        parent = self.ib.wrapper.trades.get((int(order.clientId or 0), pid))
        return str(parent.order.orderRef) if parent is not None and parent.order.orderRef else None

    def _fill(self, fill: Any) -> Fill:
        e, r = fill.execution, fill.commissionReport
        known = bool(r.execId) and r.execId == e.execId
        when = e.time if e.time else fill.time
        return Fill(
            exec_id=e.execId,
            order_ref=e.orderRef or "",
            symbol=fill.contract.symbol,
            side="BUY" if e.side == "BOT" else "SELL",
            quantity=float(e.shares),
            price=float(e.price),
            time=pd.Timestamp(when).tz_convert("UTC")
            if pd.Timestamp(when).tz is not None
            else pd.Timestamp(when, tz="UTC"),
            commission=float(r.commission) if known else math.nan,
            realized_pnl=float(r.realizedPNL) if known and r.realizedPNL else None,
            perm_id=int(e.permId or 0),
        )


def check_request(request: OrderRequest, parent: OrderRequest | None = None) -> None:
    """Refuse, before anything is written, an order IB would reject for a missing price, or a
    bracket child that is not ``parent``'s (another parent_ref or symbol)."""
    missing = {
        "LMT": ("limit_price", request.limit_price),
        "STP": ("aux_price", request.aux_price),
        "TRAIL": ("trail_pct", request.trail_pct),
    }.get(request.order_type)
    if missing is not None and not (missing[1] is not None and math.isfinite(missing[1]) and missing[1] > 0):
        raise BrokerError(
            f"a {request.order_type} order needs a positive {missing[0]}",
            found=f"{request.order_ref}: {missing[0]}={missing[1]!r}",
            fix="build protective orders with bridge.protection.child_request",
        )
    if parent is not None and (request.parent_ref != parent.order_ref or request.symbol != parent.symbol):
        raise BrokerError(
            "a bracket child must name its parent's orderRef and symbol",
            found=f"{request.order_ref} ({request.symbol}) -> {request.parent_ref}, "
            f"parent {parent.order_ref} ({parent.symbol})",
            fix="build child requests with bridge.protection.child_request",
        )


def _set(value: Any) -> bool:
    """True for a price IB actually set (ib_async leaves UNSET_DOUBLE, 1.8e308, in the others)."""
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value) and abs(value) < 1e300


def _status(ib_status: str, codes: list[int], filled: float, qty: float) -> BrokerStatus:
    if ib_status == "Filled" or (qty > 0 and filled >= qty - 1e-9):
        return "filled"
    if ib_status in _CANCELLED:
        rejected = [c for c in codes if c not in (202, 10148, 161)]
        return "rejected" if rejected and filled == 0 else "cancelled"
    if ib_status in _PENDING:
        return "pending"
    return "working"


def _bar(b: Any) -> Bar:
    return Bar(_bar_time(b.date), float(b.open), float(b.high), float(b.low), float(b.close), max(float(b.volume), 0.0))


def _bar_time(value: Any) -> pd.Timestamp:
    if isinstance(value, dt.datetime):
        ts = pd.Timestamp(value)
        return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    return pd.Timestamp(value).tz_localize("UTC")


def _duration(interval: Interval, bars: int) -> str:
    """IB duration (a calendar span) that covers at least ``bars`` bars."""
    if interval.minutes == 0:
        days = math.ceil(bars * 7 / 5) + 10
        return f"{math.ceil(days / 365)} Y" if days > 365 else f"{days} D"
    sessions = math.ceil(bars * interval.minutes / 390) + 1
    return f"{math.ceil(sessions * 7 / 5) + 3} D"
