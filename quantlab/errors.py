"""Exceptions with messages that say what was wrong, the value found, and the fix.

Every error a user can cause derives from :class:`QuantlabError`; the CLI turns it
into a one-paragraph message and a non-zero exit instead of a traceback.
"""

from __future__ import annotations

from typing import Any


class QuantlabError(Exception):
    """Base class: ``what`` went wrong, the value ``found``, and the ``fix``."""

    exit_code = 1

    def __init__(self, what: str, *, found: Any = None, fix: str | None = None) -> None:
        self.what = what
        self.found = found
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        parts = [self.what.rstrip(".") + "."]
        if self.found is not None:
            parts.append(f"Found: {self.found}.")
        if self.fix:
            fix = self.fix.rstrip(".")
            parts.append(f"Fix: {fix}" + ("" if fix.endswith(("?", "!")) else "."))
        return " ".join(parts)


class DataError(QuantlabError):
    """Bad market data: malformed files, NaN prices, unsorted rows."""


class StoreError(QuantlabError):
    """The HDF5 store is missing, corrupt, or lacks the requested series."""


class FetchError(QuantlabError):
    """Downloading market data failed (offline, unknown symbol, provider error)."""


class StrategyError(QuantlabError):
    """Unknown strategy or a strategy module that breaks the kernel contract."""


class ParameterError(QuantlabError):
    """Unknown parameter, malformed grid or constraint, value out of range."""


class ConfigError(QuantlabError):
    """Invalid configuration (costs, sizing, walk-forward windows, ...)."""


class ReportError(QuantlabError):
    """Unknown run id, missing artifacts, unwritable reports folder."""
