"""Fixtures for the fake gateway's own tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from ib_async import IB

from .fixtures import client_decode_errors, fake_gateway, fake_gateway_factory  # noqa: F401
from .server import FakeGateway

VERSIONS = [157, 176, 178]


@pytest.fixture
def ib_factory() -> Iterator[Callable[..., IB]]:
    """Connect real ``ib_async.IB`` clients; all are disconnected afterwards."""
    clients: list[IB] = []

    def connect(
        gw: FakeGateway, client_id: int = 1, timeout: float = 2.0, raise_errors: bool = True, **kw: object
    ) -> IB:
        ib = IB()
        ib.RaiseRequestErrors = raise_errors
        clients.append(ib)
        ib.connect("127.0.0.1", gw.port, clientId=client_id, timeout=timeout, **kw)  # type: ignore[arg-type]
        return ib

    yield connect
    for ib in clients:
        ib.disconnect()


@pytest.fixture
def ib(fake_gateway: FakeGateway, ib_factory: Callable[..., IB]) -> IB:  # noqa: F811
    """One connected client (clientId 1) on ``fake_gateway``."""
    return ib_factory(fake_gateway)
