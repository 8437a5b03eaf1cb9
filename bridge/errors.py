"""Bridge exceptions: what went wrong, the value found, and the fix.

They derive from :class:`quantlab.errors.QuantlabError`, so they render the same way
(``what. Found: ... Fix: ...``). The CLI prints the message and exits with ``exit_code``
without a traceback; nothing is sent to the broker after one of these is raised.
"""

from __future__ import annotations

from quantlab.errors import QuantlabError

API_PORT_HINT = (
    "start IB Gateway or TWS, log in, and enable the API: Configure > Settings > API > Settings: "
    "tick 'Enable ActiveX and Socket Clients', set the socket port (IB Gateway 4002 paper / 4001 live; "
    "TWS 7497 paper / 7496 live), add 127.0.0.1 to 'Trusted IPs' and untick 'Read-Only API'; "
    "then pass --host/--port (or [gateway] in bridge.toml)"
)


class BridgeError(QuantlabError):
    """Base class of every bridge error."""

    exit_code = 2


class BridgeConfigError(BridgeError):
    """Missing or invalid configuration: unknown keys, negative limits, bad values."""


class GatewayUnreachable(BridgeError):
    """No API connection to IB Gateway/TWS (refused, timed out, or API disabled)."""

    exit_code = 3


class BrokerDisconnected(BridgeError):
    """The broker connection dropped while a request was in flight."""

    exit_code = 3


class OrderUnconfirmed(BrokerDisconnected):
    """An order was written into a socket the gateway had already closed: it may or may not
    have arrived. It stays ``intent`` and the reconnect resolves it (adopted if the broker has
    it, voided only when proven absent)."""


class BrokerError(BridgeError):
    """The broker refused a request (error code and text in ``found``)."""


class UnknownSymbol(BridgeError):
    """IB has no security definition for a symbol (error 200)."""


class AccountError(BridgeError):
    """Wrong account: live without confirmation, a paper id in live mode, or a mismatch."""

    exit_code = 4


class StaleData(BridgeError):
    """Bars are too old, missing, or from the future: never trade on them."""


class LedgerError(BridgeError):
    """The SQLite ledger is unreadable, from a newer version, or locked."""


class DuplicateOrder(LedgerError):
    """An orderRef the ledger already knows: it is never placed twice."""


class ReconcileMismatch(BridgeError):
    """The broker's orders, fills or positions disagree with the ledger."""


class ControlError(BridgeError):
    """A control action (approve, reject, dashboard) that cannot be done; nothing was changed."""
