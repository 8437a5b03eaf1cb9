"""Structured JSON logs: one object per line with run id, bar time and event fields.

Use ``log.info("message", extra={"event": "order_sent", "order_ref": ..., ...})``;
every ``extra`` field becomes a JSON key. :class:`RedactFilter` removes every
registered secret value (SMTP password, webhook token) from messages and fields, so
credentials never reach a log line even by accident.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers
import math
import sys
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


def rotating_file(file: str | Path, retention_days: int) -> logging.Handler:
    """The log file, rotated at midnight UTC into ``<file>.YYYY-MM-DD``; ``retention_days`` are kept."""
    Path(file).parent.mkdir(parents=True, exist_ok=True)
    return logging.handlers.TimedRotatingFileHandler(
        file, when="midnight", utc=True, backupCount=retention_days, encoding="utf-8"
    )


def setup(level: str = "INFO", file: str | Path | None = None, stream: Any = None, retention_days: int = 14) -> None:
    """Route the ``bridge`` and ``ib_async`` loggers to JSON lines (stderr and/or a daily-rotated file)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(stream or sys.stderr)]
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
