"""A fake IB Gateway speaking the TWS API socket protocol, for tests.

Start one with the ``fake_gateway`` fixture (``tests/fakegw/fixtures.py``) or
``FakeGateway().start()``; see ``docs/fake-gateway.md``.
"""

from __future__ import annotations

from ._helpers import until
from .contracts import Instrument
from .policy import FillPolicy
from .recorder import Received, ReceivedOrder
from .server import FakeGateway, OrderView
from .state import CommissionSchedule, Execution

__all__ = [
    "CommissionSchedule",
    "Execution",
    "FakeGateway",
    "FillPolicy",
    "Instrument",
    "OrderView",
    "Received",
    "ReceivedOrder",
    "until",
]
