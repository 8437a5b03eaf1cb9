"""Wire-level checks: framing, and every builder decoded by ib_async's own Decoder."""

from __future__ import annotations

import datetime as dt
import struct
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from ib_async.decoder import Decoder

from .contracts import Catalogue, ContractSpec
from .messages import MessageBuilder, WhatIfInfo
from .protocol import (
    UNSET_DOUBLE,
    FrameReader,
    ProtocolError,
    encode_message,
    encode_payload,
    encode_value,
    parse_version_range,
    split_fields,
)
from .requests import OrderRequest
from .state import AccountBook, Execution, Order

TZ = ZoneInfo("US/Eastern")
SPY = Catalogue.default().instruments["SPY"]

# Field counts (message id included) from the protocol notes, plain stock order.
OPEN_ORDER = {
    157: 120,
    159: 121,
    160: 122,
    162: 123,
    163: 123,
    164: 123,
    166: 123,
    170: 128,
    176: 128,
    177: 127,
    178: 127,
}
COMPLETED = {157: 92, 162: 92, 166: 92, 170: 97, 176: 97, 177: 96, 178: 96}
ALL_VERSIONS = sorted(OPEN_ORDER)


class StubWrapper:
    """Records every wrapper call the Decoder makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.ib = SimpleNamespace(TimezoneTWS="")
        self.defaultTimezone = dt.UTC

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record


def decode(version: int, fields: list[object]) -> tuple[str, tuple[Any, ...]]:
    """Encode like the fake, split like the client, decode with ib_async; return the one wrapper call."""
    wire = split_fields(encode_payload(fields))
    stub = StubWrapper()
    Decoder(stub, version).handlers[int(wire[0])](wire)  # type: ignore[arg-type]
    assert len(stub.calls) >= 1, f"decoder made no wrapper call for {wire[:4]}"
    return stub.calls[-1]


def sample_order(order_type: str = "LMT") -> Order:
    req = OrderRequest(
        order_id=42,
        contract=ContractSpec(symbol="SPY", sec_type="STK", exchange="SMART", currency="USD"),
        action="BUY",
        quantity=100.0,
        order_type=order_type,
        lmt_price=450.5,
        aux_price=None,
        tif="DAY",
        oca_group="",
        account="DU1234567",
        open_close="O",
        origin=0,
        order_ref="strat-1|abc",
        transmit=True,
        parent_id=0,
        outside_rth=False,
        hidden=False,
    )
    o = Order(7, 42, 1_500_000_123, SPY, req, "DU1234567", dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.UTC))
    o.status, o.filled, o.value, o.avg_fill_price = "Filled", 100.0, 45050.0, 450.5
    o.completed_at = o.placed_at
    return o


def sample_execution() -> Execution:
    return Execution(
        "0000abcd.00000001.01.01",
        1_500_000_123,
        7,
        42,
        "DU1234567",
        SPY,
        "BOT",
        100.0,
        450.5,
        dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.UTC),
        100.0,
        450.5,
        "strat-1|abc",
        1.0,
        None,
    )


# --- framing -------------------------------------------------------------------


def test_frame_reader_handles_byte_by_byte_and_coalesced_input() -> None:
    stream = b"API\0" + struct.pack(">I", 9) + b"v157..178" + encode_message([71, 2, 5, ""]) + encode_message([61, 1])
    reader = FrameReader()
    one_by_one = [p for i in range(len(stream)) for p in reader.feed(stream[i : i + 1])]
    assert FrameReader().feed(stream) == one_by_one
    assert one_by_one[0] == b"v157..178"
    assert [split_fields(p) for p in one_by_one[1:]] == [["71", "2", "5", ""], ["61", "1"]]


def test_frame_reader_rejects_missing_api_prefix() -> None:
    with pytest.raises(ProtocolError):
        FrameReader().feed(b"GET / HTTP/1.1\r\n")


def test_version_range_with_connect_options() -> None:
    assert parse_version_range(b"v157..178") == (157, 178, "")
    assert parse_version_range(b"v100..176 +PACEAPI") == (100, 176, "+PACEAPI")
    with pytest.raises(ProtocolError):
        parse_version_range(b"hello")


def test_encode_value_follows_gateway_conventions() -> None:
    assert [encode_value(v) for v in (None, True, False, 5, 100.0, -0.0, UNSET_DOUBLE)] == [
        "",
        "1",
        "0",
        "5",
        "100.0",
        "0.0",
        "1.7976931348623157E308",
    ]
    assert float(encode_value(0.1 + 0.2)) == 0.1 + 0.2  # floats round-trip exactly
    assert encode_payload([9, 1, 3]) == b"9\x001\x003\x00"


# --- builders vs ib_async's decoder -------------------------------------------------


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_open_order_field_count_and_decoding(version: int) -> None:
    msg = MessageBuilder(version, TZ).open_order(sample_order())
    assert len(msg) == OPEN_ORDER[version]
    name, (order_id, contract, order, state) = decode(version, msg)
    assert name == "openOrder"
    assert (order_id, order.clientId, order.permId, order.orderRef) == (42, 7, 1_500_000_123, "strat-1|abc")
    assert (order.action, order.totalQuantity, order.orderType, order.lmtPrice) == ("BUY", 100.0, "LMT", 450.5)
    assert (contract.conId, contract.symbol, state.status) == (756733, "SPY", "Filled")


@pytest.mark.parametrize("version", sorted(COMPLETED))
def test_completed_order_field_count_and_decoding(version: int) -> None:
    msg = MessageBuilder(version, TZ).completed_order(sample_order(), "20261120 10:00:00 US/Eastern")
    assert len(msg) == COMPLETED[version]
    name, (contract, order, state) = decode(version, msg)
    assert name == "completedOrder"
    assert (order.permId, order.orderRef, order.filledQuantity, state.status) == (
        1_500_000_123,
        "strat-1|abc",
        100.0,
        "Filled",
    )
    assert state.completedStatus == "Filled" and contract.conId == 756733


@pytest.mark.parametrize("version", [157, 177, 178])
def test_exec_details_and_commission_report(version: int) -> None:
    b = MessageBuilder(version, TZ)
    msg = b.exec_details(-1, sample_execution())
    assert len(msg) == (32 if version >= 178 else 31)
    name, (req_id, contract, ex) = decode(version, msg)
    assert (name, req_id, contract.conId) == ("execDetails", -1, 756733)
    assert (ex.execId, ex.permId, ex.clientId, ex.orderId, ex.orderRef) == (
        "0000abcd.00000001.01.01",
        1_500_000_123,
        7,
        42,
        "strat-1|abc",
    )
    assert ex.time == dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.UTC)
    name, (report,) = decode(version, b.commission_report(sample_execution()))
    assert (report.execId, report.commission, report.currency) == ("0000abcd.00000001.01.01", 1.0, "USD")
    assert report.realizedPNL == UNSET_DOUBLE  # the wrapper, not the decoder, maps it to 0.0


@pytest.mark.parametrize("version", [157, 165, 166, 178])
def test_error_gains_reject_json_at_166(version: int) -> None:
    msg = MessageBuilder(version, TZ).error(12, 201, "Order rejected - reason:test")
    assert len(msg) == (6 if version >= 166 else 5)
    assert decode(version, msg) == ("error", (12, 201, "Order rejected - reason:test", ""))


@pytest.mark.parametrize("version", [157, 163, 164, 178])
def test_contract_details_decodes_at_every_layout(version: int) -> None:
    name, (req_id, cd) = decode(version, MessageBuilder(version, TZ).contract_details(3, SPY))
    assert (name, req_id) == ("contractDetails", 3)
    assert (cd.contract.conId, cd.contract.symbol, cd.contract.primaryExchange, cd.longName) == (
        756733,
        "SPY",
        "ARCA",
        "SPDR S&P 500 ETF TRUST",
    )
    assert cd.minTick == 0.01 and cd.stockType == "ETF"


def test_fixed_count_messages_decode_exactly() -> None:
    b = MessageBuilder(178, TZ)
    book = AccountBook("DU1", 0.0)
    book.apply_fill(SPY, 10, 400.0, 1.0)
    pos = book.positions["SPY"]
    msg = b.position("DU1", pos)
    assert len(msg) == 16
    name, (account, contract, qty, avg) = decode(178, msg)
    assert (name, account, contract.exchange, qty, avg) == ("position", "DU1", "ARCA", 10.0, 400.1)
    msg = b.portfolio("DU1", pos, 410.0)
    assert len(msg) == 20
    name, args = decode(178, msg)
    assert name == "updatePortfolio" and args[0].primaryExchange == "ARCA"
    assert args[1:] == (10.0, 410.0, 4100.0, 400.1, pytest.approx(99.0), 0.0, "DU1")
    assert len(b.order_status(sample_order())) == 12
    assert len(b.commission_report(sample_execution())) == 8
    assert decode(178, b.tick_price(5, 4, 450.25, 100.0)) == ("priceSizeTick", (5, 4, 450.25, 100.0))


def test_historical_messages_decode() -> None:
    b = MessageBuilder(178, TZ)
    rows = [("20240102", 1.0, 2.0, 0.5, 1.5, 1000.0, 1.4, 12), ("20240103", 1.5, 2.5, 1.0, 2.0, 2000.0, 1.9, 20)]
    stub = StubWrapper()
    wire = split_fields(encode_payload(b.historical_data(9, "20240101", "20240103", rows)))
    Decoder(stub, 178).handlers[17](wire)  # type: ignore[arg-type]
    bars = [args[1] for name, args in stub.calls if name == "historicalData"]
    assert [(x.date, x.open, x.high, x.low, x.close, x.volume, x.average, x.barCount) for x in bars] == rows
    assert stub.calls[-1] == ("historicalDataEnd", (9, "20240101", "20240103"))
    name, (req_id, bar) = decode(178, b.historical_update(9, rows[1]))
    assert (bar.date, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.barCount) == (
        "20240103",
        1.5,
        2.5,
        1.0,
        2.0,
        2000.0,
        20,
    )


def test_what_if_reply_has_numeric_margins() -> None:
    info = WhatIfInfo(
        init_change=22525.0,
        maint_change=11262.5,
        equity_after=999_000.0,
        init_after=22525.0,
        maint_after=11262.5,
        commission=1.0,
    )
    name, (_oid, _c, order, state) = decode(
        178, MessageBuilder(178, TZ).open_order(sample_order(), "PreSubmitted", info)
    )
    assert order.whatIf is True and float(state.initMarginChange) == 22525.0 and state.commission == 1.0
