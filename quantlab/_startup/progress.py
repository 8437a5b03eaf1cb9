"""Progress bars (tqdm): on in terminals and notebooks, silent in pipes and tests."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any


class Progress:
    """A bar over ``total`` items that reports items per second; ``update_to(done)``."""

    def __init__(self, total: int, desc: str, unit: str, enabled: bool | None = None) -> None:
        from tqdm.auto import tqdm

        disable = (not sys.stderr.isatty()) if enabled is None else not enabled
        # k/M suffixes only for big counts: a 3-step bar reads 2/3, not 2.00/3.00
        self._bar: Any = tqdm(
            total=total, desc=desc, unit=unit, unit_scale=total >= 10_000, disable=disable, leave=True
        )
        self._done = 0
        self._start = time.perf_counter()

    def update_to(self, done: int) -> None:
        if done > self._done:
            self._bar.update(done - self._done)
            self._done = done

    def callback(self) -> Callable[[int], None]:
        return self.update_to

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
