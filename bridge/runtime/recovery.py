"""Transient broker and data errors never end a live runner.

IB answers a history request with 162 (no data, pacing, farm trouble), 321 (which ib_async
treats as a warning, so the request just times out), or nothing at all while the HMDS farm
is down; any request can time out. These are transient: after a reconnect or a 1101 resync
the runner must not exit (positions would be unmanaged and the kill switch unwatched).

Instead it enters state ``resubscribing``: connected, orders and fills still recorded,
``bridge stop`` still cancels and flattens, but no decisions (there is no history to decide
on). It retries the reconciliation and the subscriptions with exponential backoff
(``gateway.backoff_initial`` .. ``backoff_max``), alerts once per episode
(``history_unavailable``, ``transient_error``) and once when trading resumes
(``history_restored``). A dropped connection during the retries falls back to the
reconnect path. Only a command (``bridge stop --shutdown``, SIGTERM) ends the runner.
"""

from __future__ import annotations

import logging
import time

from bridge.brokers.protocol import ConnectionEvent
from bridge.errors import BridgeError, BrokerDisconnected, BrokerError, StaleData
from bridge.runtime.decision import DecisionMixin

log = logging.getLogger("bridge.runner")
#: Errors a live runner survives by retrying (a dropped connection has its own path).
TRANSIENT = (StaleData, BrokerError)


class RecoveryMixin(DecisionMixin):
    """The ``resubscribing`` state: retry reconcile + subscriptions until they succeed."""

    _retry_why = "restored"
    _retry_at = 0.0
    _retry_attempt = 0

    def _transient(self, err: BridgeError, during: str) -> None:
        """A transient error while (re)building the session: retry later, never exit."""
        if isinstance(err, BrokerDisconnected) or not self.broker.is_connected():
            self._on_connection(ConnectionEvent("disconnected", err.what))
            return
        first = self.state != "resubscribing"
        if first:
            self._retry_attempt = 0
            # voiding needs a fresh connection's proof; keep the episode's reason across retries
            self._retry_why = during if during in ("start", "reconnect") else "restored"
        g = self.cfg.gateway
        delay = min(g.backoff_initial * 2 ** self._retry_attempt, g.backoff_max)
        self._retry_attempt += 1
        self._retry_at = time.monotonic() + delay
        self.state = "resubscribing"
        log.warning("transient error: retrying", extra={"event": "transient_retry", "during": during, "attempt": self._retry_attempt,
                                                          "delay_s": delay, "detail": err.render()})
        if first:
            kind = "history_unavailable" if isinstance(err, StaleData) else "transient_error"
            self.ledger.risk_event(self.clock.now(), kind, f"{during}: {err.render()}", self.run_id)
            self._alert(kind, f"{during}: {err.render()} -- not trading until it is back; retrying with backoff "
                              "(bridge stop still works)", "error")

    def _maybe_retry(self) -> None:
        """Called by the loop in state ``resubscribing``."""
        if time.monotonic() < self._retry_at:
            return
        try:
            self._reconcile(self._retry_why)
            self._subscribe_all()
        except TRANSIENT as err:
            self._transient(err, "retry")
            return
        except BrokerDisconnected as err:
            self._on_connection(ConnectionEvent("disconnected", err.what))
            return
        attempts = self._retry_attempt
        self._retry_attempt = 0
        self.state = "ready"
        self._alert("history_restored", f"history and reconciliation back after {attempts} retries: trading resumed", "warning")
        self._decide_pending()
