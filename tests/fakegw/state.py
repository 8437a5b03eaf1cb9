"""Gateway-side account state that outlives client connections.

Orders, executions, positions, cash and id counters. Pure bookkeeping: no
sockets, no event loop. The order engine drives it; the server reads it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .contracts import Instrument
from .requests import OrderRequest
from .triggers import trail_level

if TYPE_CHECKING:
    from .policy import FillPolicy

WORKING = ("PendingSubmit", "PreSubmitted", "Submitted")
DONE = ("Filled", "Cancelled", "ApiCancelled", "Inactive")


@dataclass(frozen=True)
class CommissionSchedule:
    """IB fixed pricing for US stocks.

    $0.005 per share, at least ``minimum`` per order, at most ``max_pct`` of
    the order's traded value. Minimum and cap apply per order, so the first
    execution of a partially filled order carries the minimum and later ones
    only the increment.
    """

    per_share: float = 0.005
    minimum: float = 1.0
    max_pct: float | None = 0.01

    def order_total(self, shares: float, value: float) -> float:
        """Commission owed for an order that has traded ``shares`` for ``value``."""
        fee = max(self.per_share * abs(shares), self.minimum)
        if self.max_pct is not None:
            fee = min(fee, self.max_pct * abs(value))
        return round(fee, 6)


@dataclass
class Execution:
    """One fill, as reported by execDetails and commissionReport."""

    exec_id: str
    perm_id: int
    client_id: int
    order_id: int
    account: str
    instrument: Instrument
    side: str  # BOT or SLD
    shares: float
    price: float
    time: dt.datetime
    cum_qty: float
    avg_price: float
    order_ref: str
    commission: float
    realized_pnl: float | None  # None for opening executions
    exchange: str = "ISLAND"


@dataclass
class Order:
    """An order the gateway knows about, keyed by ``(client_id, order_id)``."""

    client_id: int
    order_id: int
    perm_id: int
    instrument: Instrument
    req: OrderRequest
    account: str
    placed_at: dt.datetime
    status: str = "PendingSubmit"
    filled: float = 0.0
    value: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    commission: float = 0.0
    completed_at: dt.datetime | None = None
    completed_status: str = ""
    held: bool = False  # transmit=0 and not yet released
    triggered: bool = False  # stop orders: stop price touched
    trail_anchor: float | None = None  # TRAIL: best price since the order became active
    base_qty: float | None = None  # the client's quantity, once an OCA group has reduced it
    auto_fill: bool = True  # False once a partial-fill policy has run
    manual: bool = False  # placed in TWS, not through the API (see ``visibility``)
    epoch: int = 0  # gateway run it was placed in (order ids restart with a new run)
    policy: FillPolicy | None = None
    timers: list[Any] = field(default_factory=list, repr=False)

    @property
    def key(self) -> tuple[int, int]:
        return (self.client_id, self.order_id)

    @property
    def quantity(self) -> float:
        return self.req.quantity

    @property
    def base(self) -> float:
        """The quantity the client asked for (OCA reductions aside)."""
        return self.base_qty if self.base_qty is not None else self.req.quantity

    @property
    def remaining(self) -> float:
        return max(self.req.quantity - self.filled, 0.0)

    @property
    def is_done(self) -> bool:
        return self.status in DONE

    @property
    def is_buy(self) -> bool:
        return self.req.action.upper() == "BUY"

    @property
    def order_ref(self) -> str:
        return self.req.order_ref

    @property
    def trail_stop(self) -> float | None:
        """The stop a TRAIL order sits at now (the client's trailStopPrice until it is active)."""
        r = self.req
        if self.trail_anchor is None:
            return r.trail_stop_price
        return trail_level(self.is_buy, self.trail_anchor, r.trail_stop_price, r.aux_price, r.trailing_percent)


@dataclass
class Position:
    instrument: Instrument
    qty: float = 0.0
    avg_cost: float = 0.0
    realized: float = 0.0

    def unrealized(self, price: float | None) -> float:
        if price is None or self.qty == 0:
            return 0.0
        return (price - self.avg_cost) * self.qty


@dataclass
class AccountBook:
    """Cash and positions of one account (single currency: USD)."""

    account: str
    cash: float
    positions: dict[str, Position] = field(default_factory=dict)
    realized: float = 0.0

    def position(self, instrument: Instrument) -> Position:
        pos = self.positions.get(instrument.symbol)
        if pos is None:
            pos = self.positions[instrument.symbol] = Position(instrument)
        return pos

    def apply_fill(self, instrument: Instrument, qty: float, price: float, commission: float) -> float | None:
        """Book a signed fill (``qty`` > 0 buys). Returns realized P&L, or None when opening.

        IB conventions: avgCost includes the opening commission, realized
        P&L is net of the closing commission.
        """
        pos = self.position(instrument)
        self.cash -= qty * price + commission
        if qty == 0:
            return None
        sign = 1.0 if qty > 0 else -1.0
        if pos.qty == 0 or (pos.qty > 0) == (qty > 0):
            new_qty = pos.qty + qty
            cost = abs(pos.qty) * pos.avg_cost + abs(qty) * price + sign * commission
            pos.avg_cost = cost / abs(new_qty)
            pos.qty = new_qty
            return None
        close_qty = min(abs(qty), abs(pos.qty))
        close_comm = commission * close_qty / abs(qty)
        direction = 1.0 if pos.qty > 0 else -1.0
        realized = (price - pos.avg_cost) * close_qty * direction - close_comm
        pos.qty += sign * close_qty
        rest = abs(qty) - close_qty
        if rest > 0:
            pos.qty = sign * rest
            pos.avg_cost = price + sign * (commission - close_comm) / rest
        elif abs(pos.qty) < 1e-12:
            pos.qty = 0.0
            pos.avg_cost = 0.0
        pos.realized += realized
        self.realized += realized
        return realized

    def values(self, prices: dict[str, float]) -> list[tuple[str, str, str]]:
        """Account values ``(tag, value, currency)`` as updateAccountValue sends them."""
        smv = gpv = upnl = 0.0
        for sym, pos in self.positions.items():
            px = prices.get(sym, pos.avg_cost)
            smv += pos.qty * px
            gpv += abs(pos.qty) * px
            upnl += pos.unrealized(px)
        nlv = self.cash + smv
        init, maint = 0.5 * gpv, 0.25 * gpv
        avail, excess = nlv - init, nlv - maint
        money = {
            "NetLiquidation": nlv,
            "TotalCashValue": self.cash,
            "SettledCash": self.cash,
            "AccruedCash": 0.0,
            "BuyingPower": max(avail, 0.0) * 2,
            "EquityWithLoanValue": nlv,
            "GrossPositionValue": gpv,
            "InitMarginReq": init,
            "MaintMarginReq": maint,
            "AvailableFunds": avail,
            "ExcessLiquidity": excess,
        }
        out = [(k, f"{v:.2f}", "USD") for k, v in money.items()]
        out.append(("Cushion", f"{(excess / nlv if nlv else 0.0):.6f}", ""))
        out.append(("Leverage-S", f"{(gpv / nlv if nlv else 0.0):.4f}", ""))
        for cur in ("BASE", "USD"):
            out += [
                ("CashBalance", f"{self.cash:.2f}", cur),
                ("TotalCashBalance", f"{self.cash:.2f}", cur),
                ("NetLiquidationByCurrency", f"{nlv:.2f}", cur),
                ("StockMarketValue", f"{smv:.2f}", cur),
                ("UnrealizedPnL", f"{upnl:.2f}", cur),
                ("RealizedPnL", f"{self.realized:.2f}", cur),
            ]
        out += [
            ("AccountCode", self.account, ""),
            ("AccountType", "INDIVIDUAL", ""),
            ("AccountReady", "true", ""),
            ("Currency", "USD", "USD"),
            ("DayTradesRemaining", "-1", ""),
        ]
        return out

    def value_map(self, prices: dict[str, float]) -> dict[str, float]:
        """Numeric USD/BASE account values by tag (first currency wins)."""
        out: dict[str, float] = {}
        for tag, value, _cur in self.values(prices):
            try:
                out.setdefault(tag, float(value))
            except ValueError:
                continue
        return out


@dataclass
class GatewayState:
    """Everything the gateway remembers across connections."""

    accounts: dict[str, AccountBook]
    commission: CommissionSchedule = field(default_factory=CommissionSchedule)
    orders: dict[tuple[int, int], Order] = field(default_factory=dict)
    executions: list[Execution] = field(default_factory=list)
    prices: dict[str, float] = field(default_factory=dict)
    next_order_id: int = 1
    next_perm_id: int = 1_500_000_001
    exec_seq: int = 0
    epoch: int = 0  # bumped by a gateway restart: the order-id sequence starts again
    next_bound_id: int = 0  # manual orders bound to client 0 get -1, -2, ...

    @property
    def default_account(self) -> str:
        return next(iter(self.accounts))

    def book(self, account: str) -> AccountBook:
        return self.accounts.get(account) or self.accounts[self.default_account]

    def new_perm_id(self) -> int:
        perm = self.next_perm_id
        self.next_perm_id += 1
        return perm

    def valid_id(self) -> int:
        """The next order id to offer (above every id used by any client since the gateway started)."""
        used = max((o.order_id for o in self.orders.values() if o.epoch == self.epoch and not o.manual), default=0)
        self.next_order_id = max(self.next_order_id, used + 1)
        return self.next_order_id

    def order_by_perm(self, perm_id: int) -> Order | None:
        return next((o for o in self.orders.values() if o.perm_id == perm_id), None)

    def orders_by_ref(self, order_ref: str) -> list[Order]:
        return [o for o in self.orders.values() if o.order_ref == order_ref]

    def record_fill(
        self,
        order: Order,
        qty: float,
        price: float,
        time: dt.datetime,
        commission: float | None = None,
    ) -> Execution:
        """Book one execution of ``qty`` at ``price`` against ``order``."""
        new_filled = order.filled + qty
        new_value = order.value + qty * price
        if commission is None:
            total = self.commission.order_total(new_filled, new_value)
            commission = max(round(total - order.commission, 6), 0.0)
        book = self.book(order.account)
        signed = qty if order.is_buy else -qty
        realized = book.apply_fill(order.instrument, signed, price, commission)
        order.filled = new_filled
        order.value = new_value
        order.commission = round(order.commission + commission, 6)
        order.avg_fill_price = new_value / new_filled
        order.last_fill_price = price
        self.exec_seq += 1
        ex = Execution(
            exec_id=f"0000{order.perm_id % 0xFFFF:04x}.{self.exec_seq:08x}.01.01",
            perm_id=order.perm_id,
            client_id=order.client_id,
            order_id=order.order_id,
            account=book.account,
            instrument=order.instrument,
            side="BOT" if order.is_buy else "SLD",
            shares=qty,
            price=price,
            time=time,
            cum_qty=new_filled,
            avg_price=order.avg_fill_price,
            order_ref=order.order_ref,
            commission=commission,
            realized_pnl=realized,
        )
        self.executions.append(ex)
        return ex
