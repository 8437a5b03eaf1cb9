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

from bridge.errors import BridgeError, BrokerDisconnected, BrokerError, StaleData
from bridge.runtime.context import Context

log = logging.getLogger("bridge.runner")
#: Errors a live runner survives by retrying (a dropped connection has its own path).
TRANSIENT = (StaleData, BrokerError)


def transient(ctx: Context, err: BridgeError, during: str) -> None:
    """A transient error while (re)building the session: enter ``resubscribing`` and schedule
    a retry (``PeriodicTasks.retry``) with backoff; never exit."""
    st = ctx.state
    if isinstance(err, BrokerDisconnected) or not ctx.broker.is_connected():
        ctx.disconnected(err.what)
        return
    first = st.phase != "resubscribing"
    if first:
        st.retry_attempt = 0
        # voiding needs a fresh connection's proof; keep the episode's reason across retries
        st.retry_why = during if during in ("start", "reconnect") else "restored"
    g = ctx.cfg.gateway
    delay = min(g.backoff_initial * 2**st.retry_attempt, g.backoff_max)
    st.retry_attempt += 1
    st.retry_at = time.monotonic() + delay
    st.phase = "resubscribing"
    log.warning(
        "transient error: retrying",
        extra={
            "event": "transient_retry",
            "during": during,
            "attempt": st.retry_attempt,
            "delay_s": delay,
            "detail": err.render(),
        },
    )
    if first:
        kind = "history_unavailable" if isinstance(err, StaleData) else "transient_error"
        ctx.ledger.risk_event(ctx.clock.now(), kind, f"{during}: {err.render()}", ctx.run_id)
        ctx.alert(
            kind,
            f"{during}: {err.render()} -- not trading until it is back; retrying with backoff "
            "(bridge stop still works)",
            "error",
        )
