"""Pytest fixtures for the fake IB Gateway.

Register them for the whole suite with, in ``tests/conftest.py``::

    from tests.fakegw.fixtures import fake_gateway, fake_gateway_factory  # noqa: F401

``client_decode_errors`` is autouse: importing it into a folder's ``conftest.py`` makes
every test there fail when ib_async dropped or could not match a message.

``fake_gateway`` takes an optional indirect parameter: a server version
(``int``) or a dict of ``FakeGateway`` keyword arguments::

    @pytest.mark.parametrize("fake_gateway", [157, 176, 178], indirect=True)
    def test_x(fake_gateway): ...
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ._helpers import ClientLogErrors
from .server import FakeGateway


def _kwargs(param: object) -> dict[str, Any]:
    if param is None:
        return {}
    if isinstance(param, int):
        return {"server_version": param}
    if isinstance(param, dict):
        return dict(param)
    raise TypeError(f"fake_gateway param must be an int version or a dict, not {param!r}")


def _check_clean(gw: FakeGateway) -> None:
    errors = gw.internal_errors
    if errors:
        pytest.fail("fake gateway internal errors:\n" + "\n".join(errors), pytrace=False)


@pytest.fixture(autouse=True)
def client_decode_errors() -> Iterator[ClientLogErrors]:
    """Fail any test in which ib_async dropped or could not match a message."""
    handler = ClientLogErrors()
    logger = logging.getLogger("ib_async")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
    assert not handler.records, f"ib_async could not handle messages: {handler.records}"


@pytest.fixture
def fake_gateway(request: pytest.FixtureRequest) -> Iterator[FakeGateway]:
    """A started ``FakeGateway`` on a free 127.0.0.1 port; stopped afterwards.

    Fails the test at teardown if the fake itself hit an internal error.
    """
    gw = FakeGateway(**_kwargs(getattr(request, "param", None))).start()
    try:
        yield gw
        _check_clean(gw)
    finally:
        gw.stop()


@pytest.fixture
def fake_gateway_factory() -> Iterator[Callable[..., FakeGateway]]:
    """Build extra gateways with custom arguments; all are stopped afterwards."""
    made: list[FakeGateway] = []

    def make(**kwargs: Any) -> FakeGateway:
        gw = FakeGateway(**kwargs).start()
        made.append(gw)
        return gw

    try:
        yield make
        for gw in made:
            _check_clean(gw)
    finally:
        for gw in made:
            gw.stop()
