"""Structured JSON logs: one object per line with run id, bar time and event fields.

Use ``log.info("message", extra={"event": "order_sent", "order_ref": ..., ...})``;
every ``extra`` field becomes a JSON key. :class:`RedactFilter` removes every
registered secret value (SMTP password, webhook token) from messages and fields, so
credentials never reach a log line even by accident.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import logging.handlers
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
_SECRETS: set[str] = set()


def register_secret(value: str) -> None:
    """Never print ``value`` in a log line (applied by every bridge handler)."""
    if value and len(value) >= 3:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for s in _SECRETS:
        if s in text:
            text = text.replace(s, "***")
    return text


class ContextFilter(logging.Filter):
    """Adds ``run_id`` (and the current ``bar_time`` when set) to every record."""

    def __init__(self) -> None:
        super().__init__()
        self.run_id = ""
        self.bar_time = ""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "run_id", ""):
            record.run_id = self.run_id
        if not getattr(record, "bar_time", "") and self.bar_time:
            record.bar_time = self.bar_time
        return True


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", "run_id", "bar_time", ...extra}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        text = json.dumps(_finite(out), default=str)
        return redact(text)


def _finite(value: Any) -> Any:
    """NaN and infinities become null (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


CONTEXT = ContextFilter()


#: Log files are private like the ledger: they carry account ids, orders and positions.
PRIVATE_MODE = 0o600
#: ib_async's loggers whose every line is the connection's life (connecting, "API connection
#: failed", "Make sure API port on TWS/IBG is open", "Peer closed connection"): the bridge
#: reports each of these itself, with the fix, so on the console they are noise.
CONNECTION_LOGGERS = ("ib_async.client", "ib_insync.client")


class PrivateRotatingFile(logging.handlers.TimedRotatingFileHandler):
    """A daily-rotated file created 0600 (also each new file after a rotation); an older
    world-readable file is tightened when opened (one owned by another user is left as it is)."""

    def _open(self):  # type: ignore[no-untyped-def]
        path = Path(self.baseFilename)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_MODE))
        with contextlib.suppress(PermissionError):
            if path.stat().st_mode & 0o077:
                path.chmod(PRIVATE_MODE)
        return super()._open()


class QuietConnection(logging.Filter):
    """Keeps ib_async's connection lines (:data:`CONNECTION_LOGGERS`) off the console: the bridge's
    own error says what failed and how to fix it. The log file still gets them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(CONNECTION_LOGGERS)


def rotating_file(file: str | Path, retention_days: int) -> logging.Handler:
    """The log file (0600), rotated at midnight UTC into ``<file>.YYYY-MM-DD``; ``retention_days`` are kept."""
    Path(file).parent.mkdir(parents=True, exist_ok=True)
    return PrivateRotatingFile(file, when="midnight", utc=True, backupCount=retention_days, encoding="utf-8")


def setup(level: str = "INFO", file: str | Path | None = None, stream: Any = None, retention_days: int = 14) -> None:
    """Route the ``bridge`` and ``ib_async`` loggers to JSON lines (stderr and/or a daily-rotated file).
    ib_async's connection lines go to the file only (:class:`QuietConnection`)."""
    console = logging.StreamHandler(stream or sys.stderr)
    console.addFilter(QuietConnection())
    handlers: list[logging.Handler] = [console]
    if file:
        handlers.append(rotating_file(file, retention_days))
    fmt = JsonFormatter()
    for name in ("bridge", "ib_async", "ib_insync"):
        logger = logging.getLogger(name)
        for h in list(logger.handlers):
            if getattr(h, "_bridge", False):
                logger.removeHandler(h)
        for h in handlers:
            h.setFormatter(fmt)
            h.addFilter(CONTEXT)
            h._bridge = True  # type: ignore[attr-defined]
            logger.addHandler(h)
        logger.setLevel(level.upper() if name == "bridge" else "WARNING")
        logger.propagate = False


@contextlib.contextmanager
def console_logs(level: str = "WARNING") -> Iterator[None]:
    """:func:`setup` on the console only, for a short command (``bridge stop``); the loggers are
    put back as they were afterwards (a command run in-process leaves no handler on a closed stream)."""
    names = ("bridge", "ib_async", "ib_insync")
    saved = {n: (lg.handlers[:], lg.level, lg.propagate) for n in names for lg in [logging.getLogger(n)]}
    setup(level)
    try:
        yield
    finally:
        for n, (handlers, lvl, propagate) in saved.items():
            lg = logging.getLogger(n)
            lg.handlers[:] = handlers
            lg.setLevel(lvl)
            lg.propagate = propagate
