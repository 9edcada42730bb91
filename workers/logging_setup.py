"""Celery logging: socialcare's handlers instead of Celery's, and the task id on every record."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import setup_logging, task_postrun, task_prerun

from socialcare.config import get_settings
from socialcare.logs import Token, bind, configure_logging, unbind
from socialcare.ops.errors import init_error_reporting

_tokens: dict[str, Token] = {}


def on_setup_logging(**_: Any) -> None:
    """Configure logging from LOG_LEVEL and LOG_FORMAT (connected: Celery adds no handlers)."""
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_format == "json")
    init_error_reporting(settings, component="worker")


def on_task_prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    """Bind the task's id and name to the logging context while it runs."""
    if task_id is None:
        return
    name = getattr(task, "name", None)
    _tokens[task_id] = bind(task_id=task_id, task_name=name)


def on_task_postrun(task_id: str | None = None, **_: Any) -> None:
    """Restore the logging context the task started with."""
    token = _tokens.pop(task_id, None) if task_id is not None else None
    if token is not None:
        unbind(token)


def install(app: Celery) -> None:
    """Connect the handlers (once per process, whatever the number of calls)."""
    del app  # Celery's signals are process-wide; app is taken to make the call site explicit
    setup_logging.connect(on_setup_logging, weak=False, dispatch_uid="socialcare.logging")
    task_prerun.connect(on_task_prerun, weak=False, dispatch_uid="socialcare.log_prerun")
    task_postrun.connect(on_task_postrun, weak=False, dispatch_uid="socialcare.log_postrun")
