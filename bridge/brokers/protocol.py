"""The Broker protocol, in our own vocabulary, and the plain values it exchanges.

Only ``bridge/brokers/ib.py`` knows Interactive Brokers; ``bridge/brokers/sim.py`` simulates a broker for
replay and dry tests. The runner, reconciliation and the CLI talk to this protocol only.

Orders are identified by their **orderRef** (``OrderRequest.order_ref``), never by the
broker's order id: IB's ids do not survive a reconnect, orderRefs do.

Order statuses (our vocabulary):
    pending    sent, not yet acknowledged by the broker
    working    acknowledged; ``filled`` may already be > 0 (partially filled)
    filled     completely filled
    cancelled  cancelled (by us, by the broker, or expired); ``filled`` may be > 0
    rejected   refused by the broker (IB error 201 and the like)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import pandas as pd

from quantlab.engine.intervals import Interval

Side = Literal["BUY", "SELL"]
BrokerStatus = Literal["pending", "working", "filled", "cancelled", "rejected"]
TERMINAL_BROKER = ("filled", "cancelled", "rejected")


@dataclass(frozen=True)
class Bar:
    """One OHLCV bar labelled by its start (tz-aware UTC; daily bars at 00:00 UTC)."""

    time: pd.Timestamp
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0


@dataclass(frozen=True)
class OrderRequest:
    """What the bridge asks the broker to do."""

    order_ref: str
    symbol: str
    side: Side
    quantity: float
    order_type: Literal["MKT", "LMT", "STP", "TRAIL"] = "MKT"
    limit_price: float | None = None
    tif: str = "DAY"
    # protective children of a bracket (issue 12): the STP trigger (IB's auxPrice, the ledger's
    # aux_price), trailing percent, the entry they protect, their OCA group, and IB's transmit
    # flag (only the last child transmits)
    aux_price: float | None = None
    trail_pct: float | None = None
    parent_ref: str | None = None
    oca_group: str | None = None
    transmit: bool = True


@dataclass(frozen=True)
class OrderState:
    """The broker's view of one order."""

    order_ref: str
    symbol: str
    side: Side
    quantity: float
    order_type: str
    status: BrokerStatus
    filled: float = 0.0
    remaining: float = 0.0
    avg_fill_price: float = 0.0
    limit_price: float | None = None
    broker_order_id: int = 0
    perm_id: int = 0
    message: str = ""
    error_code: int = 0
    #: Placed by another API client id (seen through ``reqAllOpenOrders``): this connection
    #: gets no live updates for it and cannot cancel or modify it (IB allows only the
    #: placing client, except a global cancel).
    foreign: bool = False
    client_id: int = 0
    # a bracket's protective child (issue 12): the entry it protects (its orderRef), the STP
    # trigger, the trailing percent and the OCA group, as the broker holds them now (a modify
    # or an OCA reduction may have moved them since the ledger recorded the child)
    parent_ref: str | None = None
    aux_price: float | None = None
    trail_pct: float | None = None
    oca_group: str | None = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_BROKER


@dataclass(frozen=True)
class Fill:
    """One execution with its commission (reported only once the commission is known)."""

    exec_id: str
    order_ref: str
    symbol: str
    side: Side
    quantity: float
    price: float
    time: pd.Timestamp
    commission: float
    realized_pnl: float | None = None
    perm_id: int = 0

    @property
    def signed(self) -> float:
        return self.quantity if self.side == "BUY" else -self.quantity


@dataclass(frozen=True)
class Position:
    symbol: str
    quantity: float
    avg_cost: float


@dataclass(frozen=True)
class Account:
    """Cash and net liquidation value of the trading account.

    ``marks`` maps symbol -> (quantity, market price) as of the same account snapshot as
    ``net_liquidation`` (IB refreshes account values only every few minutes; the runner
    re-marks the snapshot with fresher bar prices for the daily loss check).
    """

    account_id: str
    cash: float
    net_liquidation: float
    currency: str = "USD"
    marks: Mapping[str, tuple[float, float]] = field(default_factory=dict)


# --- events returned by Broker.poll ------------------------------------------------
@dataclass(frozen=True)
class BarEvent:
    """A bar update: ``complete`` bars are final; the others are still forming."""

    symbol: str
    bar: Bar
    complete: bool
    received: float  # time.perf_counter() when the broker got it


@dataclass(frozen=True)
class OrderEvent:
    order: OrderState


@dataclass(frozen=True)
class FillEvent:
    fill: Fill


@dataclass(frozen=True)
class ConnectionEvent:
    """``disconnected`` (socket gone), ``lost`` (IB 1100), ``restored`` (1102),
    ``restored_data_lost`` (1101)."""

    kind: Literal["disconnected", "lost", "restored", "restored_data_lost"]
    message: str = ""


@dataclass(frozen=True)
class ErrorEvent:
    """A broker error or warning not tied to a request the caller is waiting on."""

    code: int
    message: str
    order_ref: str = ""
    symbol: str = ""


Event = BarEvent | OrderEvent | FillEvent | ConnectionEvent | ErrorEvent


@runtime_checkable
class Broker(Protocol):
    """What the runner needs from a broker. Implemented by IBBroker and SimBroker."""

    name: str

    def connect(self) -> None:
        """Connect and synchronise (orders, fills, positions, account). Raises GatewayUnreachable."""

    def disconnect(self) -> None: ...

    def is_connected(self) -> bool: ...

    def account_id(self) -> str:
        """The trading account (the single managed account, or the configured one)."""

    def managed_accounts(self) -> list[str]: ...

    def qualify(self, symbols: Sequence[str]) -> None:
        """Resolve symbols to instruments. Raises UnknownSymbol (IB error 200)."""

    def subscribe_bars(self, symbol: str, interval: Interval, bars: int) -> pd.DataFrame:
        """History of at least ``bars`` bars (the last one may still be forming), then
        streamed updates as BarEvents. Raises StaleData when no data comes back."""

    def place(self, request: OrderRequest) -> OrderState:
        """Send an order; returns at once (status ``pending``). Raises BrokerDisconnected."""

    def place_bracket(self, parent: OrderRequest, children: Sequence[OrderRequest]) -> list[OrderState]:
        """Send an entry with its protective children (``bridge.protection.child_request``) so
        that the broker never works the parent without them: at IB the parent and every child
        but the last go out with ``transmit=False`` and the last child releases the chain.
        Returns the states of the orders placed, parent first (a broker that refuses the
        parent at once may return fewer). Raises like :meth:`place`; after a raise nothing
        was transmitted (IB drops held orders with the connection's gateway)."""

    def modify(self, order_ref: str, *, level: float | None = None, quantity: float | None = None) -> bool:
        """Move a working order's level (a stop's trigger, a limit's price) or its quantity.
        False (and a log line) if this connection cannot: the order is not open, or another
        client id placed it (IB lets only the placing client modify)."""

    def cancel(self, order_ref: str) -> bool:
        """Request cancellation of a working order; False if the broker does not know it."""

    def cancel_all(self) -> None:
        """Cancel every open order of the account (emergency stop)."""

    def sync(self) -> None:
        """Refresh open orders, completed orders and executions from the broker."""

    def open_orders(self) -> list[OrderState]: ...

    def completed_orders(self) -> list[OrderState]: ...

    def executions(self) -> list[Fill]: ...

    def positions(self) -> dict[str, Position]: ...

    def account(self) -> Account: ...

    def poll(self, timeout: float) -> list[Event]:
        """Wait up to ``timeout`` seconds for events; return as soon as there are some."""
