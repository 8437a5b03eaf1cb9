"""Handshake, startup synchronisation and account state through the real ib_async client."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from ib_async import IB

from .conftest import VERSIONS
from .server import FakeGateway


@pytest.mark.parametrize("fake_gateway", VERSIONS, indirect=True)
def test_connect_negotiates_version_and_syncs_fast(fake_gateway: FakeGateway, ib_factory: Callable[..., IB]) -> None:
    fake_gateway.set_price("SPY", 400.0)
    fake_gateway.set_position("SPY", 10, 390.0)
    t0 = time.perf_counter()
    ib = ib_factory(fake_gateway, client_id=3)
    elapsed = time.perf_counter() - t0

    assert elapsed < 1.0  # every startup request answered: no 4 s timeouts
    assert ib.client.serverVersion() == fake_gateway.server_version
    assert ib.managedAccounts() == ["DU1234567"]
    [hs] = fake_gateway.handshakes()
    assert (hs.client_min, hs.client_max, hs.negotiated) == (157, 178, fake_gateway.server_version)

    [pos] = ib.positions()
    assert (pos.account, pos.contract.symbol, pos.position, pos.avgCost) == ("DU1234567", "SPY", 10.0, 390.0)
    [item] = ib.portfolio()
    assert (item.marketPrice, item.marketValue, item.unrealizedPNL) == (400.0, 4000.0, 100.0)
    values = {(v.tag, v.currency): v.value for v in ib.accountValues() if not v.modelCode}
    assert float(values[("TotalCashValue", "USD")]) == 1_000_000.0
    assert float(values[("NetLiquidation", "USD")]) == 1_004_000.0
    assert values[("AccountCode", "")] == "DU1234567"

    # every startup request the client made got its answer; nothing unknown was sent
    got = {m.msg_id for m in fake_gateway.received(client_id=3)}
    assert {71, 61, 5, 99, 6, 76, 7} <= got


def test_live_account_id_and_server_time(
    fake_gateway_factory: Callable[..., FakeGateway], ib_factory: Callable[..., IB]
) -> None:
    gw = fake_gateway_factory(accounts="U7654321", server_version=176)
    ib = ib_factory(gw)
    assert ib.managedAccounts() == ["U7654321"]
    assert ib.client.serverVersion() == 176
    assert abs(ib.reqCurrentTime().timestamp() - time.time()) < 5
    assert ib.client.getReqId() >= 1  # nextValidId arrived


def test_two_accounts_sync_via_account_updates_multi(
    fake_gateway_factory: Callable[..., FakeGateway], ib_factory: Callable[..., IB]
) -> None:
    gw = fake_gateway_factory(accounts=["DU111", "DU222"], cash=5_000.0)
    t0 = time.perf_counter()
    ib = ib_factory(gw)
    assert time.perf_counter() - t0 < 1.0
    assert ib.managedAccounts() == ["DU111", "DU222"]
    nlv = {v.account: float(v.value) for v in ib.accountValues() if v.tag == "NetLiquidation"}
    assert nlv == {"DU111": 5000.0, "DU222": 5000.0}
    assert not gw.received(msg_id=6)  # several accounts and no account=: no reqAccountUpdates


def test_duplicate_client_id_gets_326_and_connect_times_out(
    fake_gateway: FakeGateway, ib_factory: Callable[..., IB]
) -> None:
    first = ib_factory(fake_gateway, client_id=5)
    errors: list[int] = []
    second = IB()
    second.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    with pytest.raises(TimeoutError):
        second.connect("127.0.0.1", fake_gateway.port, clientId=5, timeout=0.5)
    assert errors == [326]
    assert not second.isConnected()
    assert first.isConnected() and fake_gateway.connected_clients() == [5]
    second.disconnect()


def test_refused_while_paused_then_accepts_again(fake_gateway: FakeGateway, ib_factory: Callable[..., IB]) -> None:
    fake_gateway.pause_accepting()
    with pytest.raises(ConnectionRefusedError):
        IB().connect("127.0.0.1", fake_gateway.port, clientId=1, timeout=1)
    fake_gateway.resume_accepting()
    ib = ib_factory(fake_gateway)
    assert ib.isConnected()


def test_unknown_request_is_logged_not_fatal(ib: IB, fake_gateway: FakeGateway) -> None:
    ib.client.send(65, 1, "unknown-api", "1.0")  # verifyRequest: not implemented by the fake
    ib.client.reqRealTimeBars(ib.client.getReqId(), ib_async_contract(), 5, "TRADES", True, [])
    assert ib.reqCurrentTime() is not None  # socket still alive and answering
    assert {65, 50} <= {m.msg_id for m in fake_gateway.received()}


def ib_async_contract() -> object:
    from ib_async import Stock

    return Stock("SPY", "SMART", "USD")
