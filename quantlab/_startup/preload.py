"""Import a heavy module on a background thread while the main thread computes.

vectorbt's import (which pulls in quantstats, matplotlib, scipy.stats, IPython) takes
about two seconds. The sweep and CSCV kernels release the GIL, so importing vectorbt
meanwhile hides most of that time. Python's import locks make this safe: a main-thread
import of the same module simply waits for the background one to finish.
"""

from __future__ import annotations

import importlib
import sys
import threading

#: Optional imports the preload may skip. vectorbt imports quantstats (and through it
#: matplotlib, seaborn and scipy.stats, ~1 s) only for its ``pf.qs`` adapter. The CLI sets
#: this (``quantlab.cli.main``): it never uses that adapter, and it writes tearsheets with
#: quantstats itself, which then imports normally. Library users keep ``pf.qs``.
SKIP_OPTIONAL: tuple[str, ...] = ()


class Preload:
    """A module import running on a daemon thread; :meth:`join` waits for it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if name not in sys.modules:
            self._thread = threading.Thread(target=self._run, name=f"preload-{name}", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        blocked = [m for m in SKIP_OPTIONAL if m not in sys.modules]
        for module in blocked:
            sys.modules[module] = None  # type: ignore[assignment]  # makes `import module` raise ImportError
        try:
            importlib.import_module(self.name)
        except BaseException as err:  # re-raised in the caller's thread by join()
            self._error = err
        finally:
            for module in blocked:
                if sys.modules.get(module) is None:
                    del sys.modules[module]

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error
