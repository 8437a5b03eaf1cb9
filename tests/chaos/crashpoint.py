"""``python -m tests.chaos.crashpoint run ...``: the real ``bridge`` CLI with a test-only crash point.

With ``CHAOS_KILL_AFTER_WRITE=N`` the process SIGKILLs itself right after its N-th committed
ledger write transaction (heartbeats are not counted: they are timed, not caused by events),
so a schedule can stop the runner *between any two ledger writes* without touching bridge
code. Without the variable this is exactly ``python -m bridge``.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

ENV = "CHAOS_KILL_AFTER_WRITE"


def install(after: int) -> None:
    """Patch ``Ledger.tx`` so the process dies right after its ``after``-th outermost commit."""
    from bridge.ledger.store import Ledger

    original_tx = Ledger.tx
    original_heartbeat = Ledger.heartbeat
    count = {"writes": 0, "beating": False}

    @contextlib.contextmanager
    def tx(self: Ledger) -> Iterator[object]:
        outer = self._depth == 0
        with original_tx(self) as db:
            yield db
        if outer and not count["beating"]:
            count["writes"] += 1
            if count["writes"] >= after:
                os.kill(os.getpid(), signal.SIGKILL)

    def heartbeat(self: Ledger, *args: object, **kwargs: object) -> None:
        count["beating"] = True
        try:
            original_heartbeat(self, *args, **kwargs)  # type: ignore[arg-type]
        finally:
            count["beating"] = False

    Ledger.tx = tx  # type: ignore[method-assign,assignment]
    Ledger.heartbeat = heartbeat  # type: ignore[method-assign]


def main() -> None:
    after = os.environ.get(ENV, "")
    if after:
        install(int(after))
    from bridge.cli import main as bridge_main

    bridge_main()


if __name__ == "__main__":
    main()
