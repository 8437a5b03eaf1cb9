"""Small helpers for tests that drive ``ib_async.IB`` against the fake gateway."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ib_async import IB


def until(ib: IB, predicate: Callable[[], object], timeout: float = 2.0, step: float = 0.005) -> bool:
    """Run the client's loop until ``predicate()`` is truthy; False on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        ib.sleep(step)
    return True


class ClientLogErrors(logging.Handler):
    """Collects ib_async log records that mean a message was dropped or mis-decoded."""

    MARKERS = ("Error handling fields", "Error for ", "No order found", "Unknown reqId")

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if any(m in text for m in self.MARKERS):
            self.records.append(text)
