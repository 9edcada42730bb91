"""Logging set-up: one JSON object per line on stdout (or plain text), with context fields.

Context fields (a Celery task's id and name, or any ids bound with `bind`) are added to every
record by `ContextFilter`; fields passed as `extra={...}` to a log call are kept as well.
Post texts are customer data: never log them above DEBUG.
"""

from __future__ import annotations

import contextvars
import json as jsonlib
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

LOG_FORMATS = ("json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"
_HANDLER_NAME = "socialcare"

# Attributes every LogRecord has: anything else on a record came from extra= or the context.
_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "socialcare_log_context", default=None
)
Token = contextvars.Token[dict[str, Any] | None]


def current_context() -> dict[str, Any]:
    """The fields added to every record logged from this thread or task now."""
    return dict(_context.get() or {})


def bind(**fields: Any) -> Token:
    """Add fields to the logging context; `unbind(token)` restores the previous one."""
    return _context.set({**(_context.get() or {}), **fields})


def unbind(token: Token) -> None:
    """Restore the logging context as it was before the matching `bind`."""
    try:
        _context.reset(token)
    except ValueError:  # made in another context: the best we can do is start afresh
        _context.set(None)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Within the block, every record carries fields."""
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


class ContextFilter(logging.Filter):
    """Copies the logging context onto each record (fields given as extra= win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The extra fields of a record: those a plain LogRecord does not have."""
    return {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS and k[0] != "_"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts (ISO 8601 UTC), level, logger, message, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        out: dict[str, Any] = {
            "ts": ts.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record_fields(record).items():
            out.setdefault(key, value)
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack_info"] = self.formatStack(record.stack_info)
        return jsonlib.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The classic one-line format, with extra fields appended as key=value."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = record_fields(record)
        if not fields:
            return line
        head, sep, tail = line.partition("\n")  # keep key=value on the message's own line
        pairs = " ".join(f"{k}={v}" for k, v in sorted(fields.items()))
        return f"{head} [{pairs}]{sep}{tail}"


def configure_logging(level: str, *, json: bool, stream: TextIO | None = None) -> logging.Handler:
    """Send every record at level or above to stdout (or stream), as JSON lines or text.

    Replaces the root logger's handlers, so calling it again (as Celery's child processes do)
    leaves exactly one handler.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if old.get_name() == _HANDLER_NAME:
            old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
