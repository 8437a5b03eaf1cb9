"""Exceptions with messages that say what was wrong, the value found, and the fix.

Every error a user can cause derives from :class:`QuantlabError`; the CLI turns it
into a one-paragraph message and a non-zero exit instead of a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
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


def suggest(word: str, choices: Iterable[str], *, otherwise: str = "", then: str = "", cutoff: float = 0.6) -> str:
    """The "did you mean" part of a ``fix``: up to three known names that look like ``word``.

    The one copy of this hint for quantlab and bridge (a typo'd strategy, parameter,
    metric, symbol, run id or config key all read the same way).

    Args:
        word: what the user typed.
        choices: the known names, in the order to list them.
        otherwise: said instead of the suggestion when nothing is close (e.g. "use one of a, b").
        then: said after either (e.g. "known: a, b", or the next step).
        cutoff: difflib's similarity ratio a name needs to be suggested (0..1).

    Returns:
        ``"did you mean a, b? <then>"``, or ``"<otherwise> <then>"`` (empty parts left out).
    """
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=cutoff)
    head = f"did you mean {', '.join(close)}?" if close else otherwise
    return " ".join(part for part in (head, then) if part)


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
