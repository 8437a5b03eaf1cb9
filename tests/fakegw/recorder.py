"""Thread-safe log of everything the fake gateway received, for assertions."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .requests import OrderRequest


@dataclass(frozen=True)
class Received:
    """One client message.

    ``at`` is ``time.time()`` and ``perf`` ``time.perf_counter()`` when its
    bytes arrived (messages from one TCP read share both).
    """

    at: float
    perf: float
    conn_id: int
    client_id: int | None
    msg_id: int
    fields: tuple[str, ...]


@dataclass(frozen=True)
class ReceivedOrder:
    """A placeOrder as received, before the gateway acted on it."""

    at: float
    perf: float
    client_id: int
    order_id: int
    symbol: str
    action: str
    quantity: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    order_ref: str
    parent_id: int
    transmit: bool
    outside_rth: bool
    what_if: bool
    is_modify: bool

    @classmethod
    def from_request(cls, req: OrderRequest, client_id: int, at: float, perf: float, is_modify: bool) -> ReceivedOrder:
        return cls(
            at,
            perf,
            client_id,
            req.order_id,
            req.contract.symbol,
            req.action,
            req.quantity,
            req.order_type,
            req.lmt_price,
            req.aux_price,
            req.tif,
            req.order_ref,
            req.parent_id,
            req.transmit,
            req.outside_rth,
            req.what_if,
            is_modify,
        )


@dataclass(frozen=True)
class Handshake:
    at: float
    conn_id: int
    client_min: int
    client_max: int
    options: str
    negotiated: int


class Recorder:
    """Append-only lists guarded by a lock; readers get copies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._orders: list[ReceivedOrder] = []
        self._handshakes: list[Handshake] = []

    def add_message(self, msg: Received) -> None:
        with self._lock:
            self._messages.append(msg)

    def add_order(self, order: ReceivedOrder) -> None:
        with self._lock:
            self._orders.append(order)

    def add_handshake(self, hs: Handshake) -> None:
        with self._lock:
            self._handshakes.append(hs)

    def messages(self, msg_id: int | None = None, client_id: int | None = None) -> list[Received]:
        with self._lock:
            return [
                m
                for m in self._messages
                if (msg_id is None or m.msg_id == msg_id) and (client_id is None or m.client_id == client_id)
            ]

    def orders(self, order_ref: str | None = None) -> list[ReceivedOrder]:
        with self._lock:
            return [o for o in self._orders if order_ref is None or o.order_ref == order_ref]

    def handshakes(self) -> list[Handshake]:
        with self._lock:
            return list(self._handshakes)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._orders.clear()
            self._handshakes.clear()
