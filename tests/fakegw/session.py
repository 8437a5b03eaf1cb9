"""One client connection: handshake, request dispatch, subscriptions."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .contracts import Instrument
from .history import HistoryError
from .messages import Fields, MessageBuilder
from .protocol import FrameReader, ProtocolError, encode_message, parse_version_range, split_fields
from .recorder import Handshake, Received, ReceivedOrder
from .requests import (
    HistoricalRequest,
    parse_contract_details,
    parse_exec_filter,
    parse_head_timestamp,
    parse_historical,
    parse_market_data,
    parse_place_order,
)

if TYPE_CHECKING:
    from .core import GatewayCore

log = logging.getLogger("tests.fakegw")

FARM_OK = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)


@dataclass
class HistSub:
    symbol: str
    req: HistoricalRequest


@dataclass
class Subscriptions:
    positions: bool = False
    account: str | None = None
    multi: dict[int, str] = field(default_factory=dict)
    history: dict[int, HistSub] = field(default_factory=dict)
    market: dict[int, str] = field(default_factory=dict)
    pnl: dict[int, str] = field(default_factory=dict)
    pnl_single: dict[int, tuple[str, int]] = field(default_factory=dict)


class Session(asyncio.Protocol):
    """Server side of one TCP connection."""

    def __init__(self, core: GatewayCore, conn_id: int) -> None:
        self.core = core
        self.conn_id = conn_id
        self.transport: asyncio.Transport | None = None
        self.reader = FrameReader()
        self.version = 0
        self.msg = MessageBuilder(0, core.tz)
        self.client_id: int | None = None
        self.subs = Subscriptions()
        self.market_data_type = 1
        self.closed = False
        self._handlers: dict[int, Callable[[list[str]], None]] = {
            71: self._start_api,
            17: self._managed_accounts,
            8: self._req_ids,
            49: self._current_time,
            61: self._positions,
            64: self._cancel_positions,
            74: self._positions_multi,
            6: self._account_updates,
            76: self._account_multi,
            77: self._cancel_account_multi,
            62: self._account_summary,
            92: self._pnl,
            93: self._cancel_pnl,
            94: self._pnl_single,
            95: self._cancel_pnl_single,
            9: self._contract_details,
            20: self._historical,
            25: self._cancel_historical,
            87: self._head_timestamp,
            1: self._market_data,
            2: self._cancel_market_data,
            59: self._market_data_type,
            3: self._place_order,
            4: self._cancel_order,
            58: self._global_cancel,
            5: self._open_orders,
            16: self._all_open_orders,
            99: self._completed_orders,
            7: self._executions,
            15: self._auto_open_orders,
        }
        self.auto_bind = False  # client 0 after reqAutoOpenOrders(True)
        self._arrival = (0.0, 0.0)

    # --- asyncio.Protocol ----------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.core.sessions[self.conn_id] = self

    def data_received(self, data: bytes) -> None:
        self._arrival = (time.time(), time.perf_counter())
        try:
            payloads = self.reader.feed(data)
        except ProtocolError as exc:
            self.core.internal_error(f"conn {self.conn_id}: {exc}")
            self.close()
            return
        for payload in payloads:
            if not self.version:
                self._handshake(payload)
                continue
            fields = split_fields(payload)
            self._dispatch(fields)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.core.sessions.pop(self.conn_id, None)

    # --- plumbing ------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.client_id is not None and not self.closed

    def send(self, fields: Fields) -> None:
        if self.transport is not None and not self.closed and not self.transport.is_closing():
            self.transport.write(encode_message(fields))

    def close(self, abort: bool = False) -> None:
        """Close the socket (flushing queued output unless ``abort``)."""
        if self.transport is None or self.closed:
            return
        self.closed = True
        self.core.sessions.pop(self.conn_id, None)
        if abort:
            self.transport.abort()
        else:
            self.transport.close()

    def _handshake(self, payload: bytes) -> None:
        try:
            low, high, options = parse_version_range(payload)
        except ProtocolError as exc:
            self.core.internal_error(f"conn {self.conn_id}: {exc}")
            self.close()
            return
        self.version = min(high, self.core.max_version)
        self.msg = MessageBuilder(self.version, self.core.tz)
        self.core.recorder.add_handshake(Handshake(self._arrival[0], self.conn_id, low, high, options, self.version))
        self.send(self.msg.handshake(self.core.now()))

    def _dispatch(self, fields: list[str]) -> None:
        try:
            msg_id = int(fields[0])
        except (IndexError, ValueError):
            self.core.internal_error(f"conn {self.conn_id}: bad message {fields[:3]}")
            return
        at, perf = self._arrival
        cid = self.client_id
        if msg_id == 71 and len(fields) > 2 and fields[2].lstrip("-").isdigit():
            cid = int(fields[2])
        self.core.recorder.add_message(Received(at, perf, self.conn_id, cid, msg_id, tuple(fields)))
        handler = self._handlers.get(msg_id)
        if handler is None:
            log.info("fake gateway ignores message %s: %s", msg_id, fields[:6])
            return
        if msg_id != 71 and self.client_id is None:
            log.info("fake gateway ignores message %s before startApi", msg_id)
            return
        if self.core.silenced(msg_id):
            return  # recorded, never answered (a hung gateway or farm)
        try:
            handler(fields)
        except Exception as exc:  # noqa: BLE001 - report, never kill the session
            log.exception("fake gateway failed on message %s", fields[:6])
            self.core.internal_error(f"message {fields[:6]}: {exc!r}")

    def _instrument(self, req_id: int, contract: object) -> Instrument | None:
        inst = self.core.catalogue.resolve(contract)  # type: ignore[arg-type]
        if inst is None:
            self.send(self.msg.error(req_id, 200, "No security definition has been found for the request"))
        return inst

    # --- session -------------------------------------------------------------
    def _start_api(self, f: list[str]) -> None:
        client_id = int(f[2])
        other = self.core.session_for(client_id)
        if other is not None and other is not self:
            self.send(
                self.msg.error(
                    -1, 326, "Unable to connect as the client id is already in use. Retry with a unique client id."
                )
            )
            self.close()
            return
        self.client_id = client_id
        self.send(self.msg.managed_accounts(self.core.account_ids))
        self.send(self.msg.next_valid_id(self.core.state.valid_id()))
        for code, text in FARM_OK:
            self.send(self.msg.error(-1, code, text))

    def _managed_accounts(self, f: list[str]) -> None:
        self.send(self.msg.managed_accounts(self.core.account_ids))

    def _req_ids(self, f: list[str]) -> None:
        self.send(self.msg.next_valid_id(self.core.state.valid_id()))

    def _current_time(self, f: list[str]) -> None:
        self.send(self.msg.current_time(self.core.now()))

    # --- positions and account -----------------------------------------------
    def _positions(self, f: list[str]) -> None:
        self.subs.positions = True
        for book in self.core.state.accounts.values():
            for pos in book.positions.values():
                if pos.qty != 0:
                    self.send(self.msg.position(book.account, pos))
        self.send(self.msg.position_end())

    def _cancel_positions(self, f: list[str]) -> None:
        self.subs.positions = False

    def _positions_multi(self, f: list[str]) -> None:
        req_id, account, model = int(f[2]), f[3], f[4]
        for book in self.core.state.accounts.values():
            if account in ("", book.account):
                for pos in book.positions.values():
                    if pos.qty != 0:
                        self.send(
                            [
                                71,
                                1,
                                req_id,
                                book.account,
                                *pos.instrument.block(pos.instrument.primary_exchange),
                                pos.qty,
                                pos.avg_cost,
                                model,
                            ]
                        )
        self.send([72, 1, req_id])

    def _account_updates(self, f: list[str]) -> None:
        subscribe, account = f[2] == "1", f[3] or self.core.state.default_account
        if not subscribe:
            self.subs.account = None
            return
        self.subs.account = account
        self.send_account_snapshot(account)
        self.send(self.msg.account_download_end(account))

    def send_account_snapshot(self, account: str, symbol: str | None = None) -> None:
        """updateAccountValue for every tag, updatePortfolio (all, or ``symbol``), account time."""
        book = self.core.state.book(account)
        prices = self.core.state.prices
        for tag, value, cur in book.values(prices):
            self.send(self.msg.account_value(tag, value, cur, book.account))
        for sym, pos in book.positions.items():
            if symbol is not None and sym != symbol:
                continue
            if pos.qty != 0 or symbol is not None:
                self.send(self.msg.portfolio(book.account, pos, prices.get(sym, pos.avg_cost)))
        self.send(self.msg.account_time(self.core.now()))

    def _account_multi(self, f: list[str]) -> None:
        req_id, account, model = int(f[2]), f[3], f[4]
        self.subs.multi[req_id] = account
        self.send_multi_values(req_id, account, model)
        self.send(self.msg.account_update_multi_end(req_id))

    def send_multi_values(self, req_id: int, account: str, model: str = "") -> None:
        for book in self.core.state.accounts.values():
            if account in ("", book.account):
                for tag, value, cur in book.values(self.core.state.prices):
                    self.send(self.msg.account_update_multi(req_id, book.account, model, tag, value, cur))

    def _cancel_account_multi(self, f: list[str]) -> None:
        self.subs.multi.pop(int(f[2]), None)

    def _account_summary(self, f: list[str]) -> None:
        req_id, tags = int(f[2]), set(f[4].split(","))
        ledger = any(t.startswith("$LEDGER") for t in tags)
        for book in self.core.state.accounts.values():
            for tag, value, cur in book.values(self.core.state.prices):
                if (tag in tags and cur in ("USD", "")) or (ledger and cur == "BASE"):
                    self.send(self.msg.account_summary(req_id, book.account, tag, value, cur))
        self.send(self.msg.account_summary_end(req_id))

    def _pnl(self, f: list[str]) -> None:
        req_id, account = int(f[1]), f[2] or self.core.state.default_account
        self.subs.pnl[req_id] = account
        self.send_pnl(req_id, account)

    def send_pnl(self, req_id: int, account: str) -> None:
        vals = self.core.state.book(account).value_map(self.core.state.prices)
        unreal, real = vals.get("UnrealizedPnL", 0.0), vals.get("RealizedPnL", 0.0)
        self.send(self.msg.pnl(req_id, unreal + real, unreal, real))

    def _cancel_pnl(self, f: list[str]) -> None:
        self.subs.pnl.pop(int(f[1]), None)

    def _pnl_single(self, f: list[str]) -> None:
        req_id, account, con_id = int(f[1]), f[2] or self.core.state.default_account, int(f[4] or 0)
        self.subs.pnl_single[req_id] = (account, con_id)
        self.send_pnl_single(req_id, account, con_id)

    def send_pnl_single(self, req_id: int, account: str, con_id: int) -> None:
        book = self.core.state.book(account)
        pos = next((p for p in book.positions.values() if p.instrument.con_id == con_id), None)
        if pos is None:
            self.send(self.msg.pnl_single(req_id, 0, 0.0, 0.0, 0.0, 0.0))
            return
        px = self.core.state.prices.get(pos.instrument.symbol, pos.avg_cost)
        unreal = pos.unrealized(px)
        self.send(self.msg.pnl_single(req_id, pos.qty, unreal + pos.realized, unreal, pos.realized, pos.qty * px))

    def _cancel_pnl_single(self, f: list[str]) -> None:
        self.subs.pnl_single.pop(int(f[1]), None)

    # --- contracts and data ----------------------------------------------------
    def _contract_details(self, f: list[str]) -> None:
        req_id, spec = parse_contract_details(f)
        inst = self._instrument(req_id, spec)
        if inst is not None:
            self.send(self.msg.contract_details(req_id, inst))
            self.send(self.msg.contract_details_end(req_id))

    def _historical(self, f: list[str]) -> None:
        req = parse_historical(f)
        inst = self._instrument(req.req_id, req.contract)
        if inst is None:
            return
        try:
            if req.keep_up_to_date and req.end:
                raise HistoryError(
                    321, "Error validating request.-'bX' : cause - End date not supported with live updates"
                )
            start, end, rows = self.core.bars.query(
                inst.symbol, req.bar_size, req.duration, req.end, req.use_rth, req.what_to_show, req.format_date
            )
        except HistoryError as exc:
            if exc.code:  # code 0: HMDS never answers (IB sends nothing; the client times out)
                self.send(self.msg.error(req.req_id, exc.code, exc.message))
            return
        self.send(self.msg.historical_data(req.req_id, start, end, rows))
        if req.keep_up_to_date:
            self.subs.history[req.req_id] = HistSub(inst.symbol, req)

    def _cancel_historical(self, f: list[str]) -> None:
        self.subs.history.pop(int(f[2]), None)

    def _head_timestamp(self, f: list[str]) -> None:
        req_id, spec, fmt = parse_head_timestamp(f)
        inst = self._instrument(req_id, spec)
        if inst is None:
            return
        stamp = self.core.bars.head_timestamp(inst.symbol, fmt)
        if stamp is None:
            self.send(self.msg.error(req_id, 162, "Historical Market Data Service error message:No head time stamp"))
        else:
            self.send(self.msg.head_timestamp(req_id, stamp))

    def _market_data(self, f: list[str]) -> None:
        req = parse_market_data(f)
        inst = self._instrument(req.req_id, req.contract)
        if inst is None:
            return
        self.send(self.msg.market_data_type(req.req_id, self.market_data_type))
        self.send(self.msg.tick_req_params(req.req_id, inst.min_tick))
        self.send_ticks(req.req_id, inst.symbol)
        if req.snapshot:
            self.send(self.msg.tick_snapshot_end(req.req_id))
        else:
            self.subs.market[req.req_id] = inst.symbol

    def send_ticks(self, req_id: int, symbol: str) -> None:
        """bid, ask and last (delayed tick types when delayed data was asked for)."""
        price = self.core.state.prices.get(symbol)
        if price is None:
            return
        delayed = self.market_data_type in (3, 4)
        bid_t, ask_t, last_t = (66, 67, 68) if delayed else (1, 2, 4)
        half, size = self.core.half_spread, self.core.quote_size
        self.send(self.msg.tick_price(req_id, bid_t, round(price - half, 6), size))
        self.send(self.msg.tick_price(req_id, ask_t, round(price + half, 6), size))
        self.send(self.msg.tick_price(req_id, last_t, price, size))

    def _cancel_market_data(self, f: list[str]) -> None:
        self.subs.market.pop(int(f[2]), None)

    def _market_data_type(self, f: list[str]) -> None:
        self.market_data_type = int(f[2] or 1)

    # --- orders and executions -------------------------------------------------
    def _place_order(self, f: list[str]) -> None:
        req = parse_place_order(f, self.version)
        at, perf = self._arrival
        cid = self.client_id or 0
        is_modify = (cid, req.order_id) in self.core.state.orders
        self.core.recorder.add_order(ReceivedOrder.from_request(req, cid, at, perf, is_modify))
        self.core.engine.place(self, req)

    def _cancel_order(self, f: list[str]) -> None:
        self.core.engine.cancel(self, int(f[2]))

    def _global_cancel(self, f: list[str]) -> None:
        self.core.engine.global_cancel()

    def _open_orders(self, f: list[str]) -> None:
        self.core.engine.send_open_orders(self, all_clients=False)

    def _all_open_orders(self, f: list[str]) -> None:
        self.core.engine.send_open_orders(self, all_clients=True)

    def _completed_orders(self, f: list[str]) -> None:
        self.core.engine.send_completed_orders(self, api_only=len(f) > 1 and f[1] == "1")

    def _auto_open_orders(self, f: list[str]) -> None:
        if self.client_id != 0:
            self.send(
                self.msg.error(-1, 321, "Error validating request:-'bn' : cause - Only client id 0 can bind TWS orders")
            )
            return
        self.auto_bind = len(f) > 2 and f[2] == "1"

    def _executions(self, f: list[str]) -> None:
        flt = parse_exec_filter(f)
        side = {"BUY": "BOT", "SELL": "SLD"}.get(flt.side.upper(), flt.side.upper())
        since = flt.time.replace("-", " ").strip()
        for ex in self.core.state.executions:
            if flt.client_id and ex.client_id != flt.client_id:
                continue
            if flt.account and ex.account != flt.account:
                continue
            if flt.symbol and ex.instrument.symbol != flt.symbol.upper():
                continue
            if flt.sec_type and ex.instrument.sec_type != flt.sec_type:
                continue
            if side and ex.side != side:
                continue
            if since and ex.time.astimezone(self.core.tz).strftime("%Y%m%d %H:%M:%S") < since[:17]:
                continue
            self.send(self.msg.exec_details(flt.req_id, ex))
            self.send(self.msg.commission_report(ex))
        self.send(self.msg.exec_details_end(flt.req_id))
