"""The runner's one mutable state object.

Everything the runtime changes while it runs lives here, in one dataclass, so that the
session, the decision path and the periodic tasks share it explicitly (they receive the
``Context`` that holds it) instead of through attributes of a shared base class. Wiring
that never changes after start-up (config, broker, ledger, windows) stays on ``Context``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

#: Counters published in the status (and the replay summary).
METRICS = ("bars", "decisions", "orders_sent", "fills", "rejected", "refused_stale", "reconnects", "disconnects")


def _metrics() -> dict[str, float]:
    return {k: 0 for k in METRICS}


@dataclasses.dataclass
class RunnerState:
    """What the runner knows beyond the ledger; lost (and rebuilt by reconciling) on a restart."""

    #: init -> ready; lost (IB 1100), disconnected, resyncing, resubscribing (``recovery``).
    phase: str = "init"
    working: dict[str, float] = dataclasses.field(default_factory=dict)  # LMT orderRef -> clock.monotonic() when placed
    cancel_reason: dict[str, str] = dataclasses.field(default_factory=dict)
    adopted: dict[str, int] = dataclasses.field(default_factory=dict)  # orderRef -> client id of another client's order
    metrics: dict[str, float] = dataclasses.field(default_factory=_metrics)
    latencies_ms: list[float] = dataclasses.field(default_factory=list)
    last_update: dict[str, pd.Timestamp] = dataclasses.field(default_factory=dict)
    stale: dict[str, str] = dataclasses.field(default_factory=dict)  # symbol -> why its last completed bar was refused
    stop: bool = False
    next_control: float = 0.0
    next_heartbeat: float = 0.0
    next_equity: float = 0.0
    reconnect_at: float = 0.0
    reconnect_attempt: int = 0
    eod_done: str | None = None
    was_open: bool = False
    positions_dirty: bool = True
    deferred: set[str] = dataclasses.field(default_factory=set)  # symbols whose bar arrived while the runner waited
    stop_pending: dict[str, Any] | None = None  # a `bridge stop` received while disconnected
    # recovery (the ``resubscribing`` episode)
    retry_why: str = "restored"
    retry_at: float = 0.0
    retry_attempt: int = 0
    # oversight: loaded from the ledger at the first reconciliation (``Oversight.load``)
    foreign_refs: set[str] | None = None
    next_check: float = 0.0
    adopted_blocks: dict[str, int] = dataclasses.field(default_factory=dict)
    #: symbol -> why its position lacks protective orders (``protecting``): entries refused until a
    #: reconcile re-protects it; rebuilt by the first reconcile after a restart
    unprotected: dict[str, str] = dataclasses.field(default_factory=dict)
    # issue-13 hooks (``ops_hook.OpsState``), created at their first use
    ops: Any = None
