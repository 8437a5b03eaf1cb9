"""Parsers for the client-to-server messages the fake acts on.

Each parser takes the full field list (message id at index 0) as split from
one frame. Layouts follow ib_async 2.1.0's ``client.py`` at the negotiated
server version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .contracts import ContractSpec
from .protocol import UNSET_DOUBLE, ProtocolError


class Cursor:
    """Sequential reader over text fields."""

    def __init__(self, fields: list[str], pos: int = 1) -> None:
        self.fields = fields
        self.pos = pos

    def next(self) -> str:
        if self.pos >= len(self.fields):
            raise ProtocolError(f"message too short at field {self.pos}: {self.fields[:3]}")
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def take(self, n: int) -> list[str]:
        return [self.next() for _ in range(n)]

    def int(self, default: int = 0) -> int:
        v = self.next()
        return int(float(v)) if v else default

    def float(self) -> float | None:
        v = self.next()
        if not v:
            return None
        x = float(v)
        return None if x >= UNSET_DOUBLE else x

    def bool(self) -> bool:
        v = self.next()
        return bool(int(v)) if v else False

    def contract(self) -> ContractSpec:
        return ContractSpec.from_fields(self.take(12))


@dataclass
class OrderRequest:
    """The parts of a placeOrder message the fake uses."""

    order_id: int
    contract: ContractSpec
    action: str
    quantity: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    oca_group: str
    account: str
    open_close: str
    origin: int
    order_ref: str
    transmit: bool
    parent_id: int
    outside_rth: bool
    hidden: bool
    good_after_time: str = ""
    good_till_date: str = ""
    oca_type: int = 0
    trail_stop_price: float | None = None
    trailing_percent: float | None = None
    algo_strategy: str = ""
    what_if: bool = False
    #: False when only the head could be parsed (exotic tails: conditions etc.).
    tail_parsed: bool = False
    raw: list[str] = field(default_factory=list, repr=False)


def parse_place_order(fields: list[str], version: int) -> OrderRequest:
    """Parse placeOrder (3) at ``version``: the head always, the tail up to whatIf if possible."""
    c = Cursor(fields)
    order_id = c.int()
    contract = c.contract()
    c.take(2)  # secIdType, secId
    action = c.next()
    quantity = c.float() or 0.0
    order_type = c.next()
    lmt = c.float()
    aux = c.float()
    tif = c.next()
    oca_group = c.next()
    account = c.next()
    open_close = c.next()
    origin = c.int()
    order_ref = c.next()
    transmit = c.bool()
    parent_id = c.int()
    c.take(4)  # blockOrder, sweepToFill, displaySize, triggerMethod
    outside_rth = c.bool()
    hidden = c.bool()
    req = OrderRequest(
        order_id,
        contract,
        action,
        quantity,
        order_type,
        lmt,
        aux,
        tif,
        oca_group,
        account,
        open_close,
        origin,
        order_ref,
        transmit,
        parent_id,
        outside_rth,
        hidden,
        raw=list(fields),
    )
    try:
        _parse_tail(c, req, version)
        req.tail_parsed = True
    except (ProtocolError, ValueError):
        pass
    return req


def _parse_tail(c: Cursor, req: OrderRequest, version: int) -> None:
    if req.contract.sec_type == "BAG":
        c.take(8 * c.int())
        c.take(c.int())
        c.take(2 * c.int())
    c.next()  # deprecated sharesAllocation
    c.next()  # discretionaryAmt
    req.good_after_time = c.next()
    req.good_till_date = c.next()
    c.take(3)  # faGroup, faMethod, faPercentage
    if version < 177:
        c.next()  # faProfile
    block = c.take(24)  # modelCode .. deltaNeutralAuxPrice
    req.oca_type = int(block[4]) if block[4] else 0
    if block[22]:  # deltaNeutralOrderType
        c.take(8)
    c.take(2)  # continuousUpdate, referencePriceType
    req.trail_stop_price = c.float()
    req.trailing_percent = c.float()
    c.take(2)  # scaleInitLevelSize, scaleSubsLevelSize
    increment = c.float()
    if increment is not None and increment > 0:
        c.take(7)
    c.take(3)  # scaleTable, activeStartTime, activeStopTime
    if c.next():  # hedgeType
        c.next()
    c.take(4)  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    if c.bool():  # deltaNeutralContract
        c.take(3)
    req.algo_strategy = c.next()
    if req.algo_strategy:
        c.take(2 * c.int())
    c.next()  # algoId
    req.what_if = c.bool()


@dataclass(frozen=True)
class HistoricalRequest:
    """reqHistoricalData (20)."""

    req_id: int
    contract: ContractSpec
    end: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool


def parse_historical(fields: list[str]) -> HistoricalRequest:
    c = Cursor(fields)
    req_id = c.int()
    contract = c.contract()
    c.next()  # includeExpired
    end = c.next()
    bar_size = c.next()
    duration = c.next()
    use_rth = c.bool()
    what = c.next()
    fmt = c.int(1)
    if contract.sec_type == "BAG":
        c.take(4 * c.int())
    keep = c.bool()
    return HistoricalRequest(req_id, contract, end, bar_size, duration, use_rth, what, fmt, keep)


@dataclass(frozen=True)
class MarketDataRequest:
    """reqMktData (1)."""

    req_id: int
    contract: ContractSpec
    generic_ticks: str
    snapshot: bool


def parse_market_data(fields: list[str]) -> MarketDataRequest:
    c = Cursor(fields, 2)
    req_id = c.int()
    contract = c.contract()
    if contract.sec_type == "BAG":
        c.take(4 * c.int())
    if c.bool():
        c.take(3)
    generic = c.next()
    snapshot = c.bool()
    return MarketDataRequest(req_id, contract, generic, snapshot)


@dataclass(frozen=True)
class ExecutionFilterRequest:
    """reqExecutions (7): reqId and the filter; empty or 0 means no filter."""

    req_id: int
    client_id: int
    account: str
    time: str
    symbol: str
    sec_type: str
    exchange: str
    side: str


def parse_exec_filter(fields: list[str]) -> ExecutionFilterRequest:
    c = Cursor(fields, 2)
    req_id = c.int()
    client_id = c.int()
    account, time, symbol, sec_type, exchange, side = c.take(6)
    return ExecutionFilterRequest(req_id, client_id, account, time, symbol, sec_type, exchange, side)


def parse_contract_details(fields: list[str]) -> tuple[int, ContractSpec]:
    """reqContractDetails (9): ``(reqId, contract)``."""
    c = Cursor(fields, 2)
    return c.int(), c.contract()


def parse_head_timestamp(fields: list[str]) -> tuple[int, ContractSpec, int]:
    """reqHeadTimeStamp (87): ``(reqId, contract, formatDate)``."""
    c = Cursor(fields)
    req_id = c.int()
    contract = c.contract()
    c.take(3)  # includeExpired, useRTH, whatToShow
    return req_id, contract, c.int(1)
