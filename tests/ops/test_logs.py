"""Structured logs: JSON lines with extra ids, the text format, and task ids from Celery."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from celery import Celery

from socialcare import config
from socialcare.config import load_settings
from socialcare.errors import ConfigError
from socialcare.logs import (
    JsonFormatter,
    TextFormatter,
    configure_logging,
    current_context,
    log_context,
)
from workers import logging_setup

log = logging.getLogger("socialcare.test_logs")


def _ours(handler: logging.Handler) -> bool:
    return not type(handler).__module__.startswith("_pytest")


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    """Put the root logger back as it was (pytest's own capture handlers aside)."""
    root = logging.getLogger()
    level, saved = root.level, [h for h in root.handlers if _ours(h)]
    yield
    for handler in [h for h in root.handlers if _ours(h)]:
        root.removeHandler(handler)
    for handler in saved:
        root.addHandler(handler)
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_with_extra_ids() -> None:
    out = io.StringIO()
    configure_logging("info", json=True, stream=out)
    log.info("case %s routed", 7, extra={"case_id": 7, "post_id": 12, "account_id": 3})
    log.debug("not shown at INFO")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("reply failed", extra={"reply_id": 5})
    first, second = _lines(out)
    assert first["message"] == "case 7 routed"
    assert first["level"] == "INFO"
    assert first["logger"] == "socialcare.test_logs"
    assert (first["case_id"], first["post_id"], first["account_id"]) == (7, 12, 3)
    assert first["ts"].endswith("Z")
    assert datetime.fromisoformat(first["ts"]).utcoffset() is not None
    assert second["level"] == "ERROR" and second["reply_id"] == 5
    assert "RuntimeError: boom" in second["exc_info"]
    assert "args" not in first and "msg" not in first


def test_configure_twice_keeps_one_handler() -> None:
    configure_logging("INFO", json=True, stream=io.StringIO())
    configure_logging("WARNING", json=False, stream=io.StringIO())
    handlers = [h for h in logging.getLogger().handlers if _ours(h)]
    assert len(handlers) == 1
    assert isinstance(handlers[0].formatter, TextFormatter)
    assert logging.getLogger().level == logging.WARNING


def test_text_format_appends_fields() -> None:
    out = io.StringIO()
    configure_logging("INFO", json=False, stream=out)
    with log_context(task_id="abc"):
        log.warning("account %s failing", 4, extra={"account_id": 4})
    line = out.getvalue().strip()
    assert "WARNING" in line and "socialcare.test_logs: account 4 failing" in line
    assert line.endswith("[account_id=4 task_id=abc]")


def test_log_format_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert load_settings().log_format == "json"
    monkeypatch.setenv("LOG_FORMAT", "TEXT")
    assert load_settings().log_format == "text"
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load_settings()


def test_context_fields_do_not_override_extra() -> None:
    out = io.StringIO()
    configure_logging("INFO", json=True, stream=out)
    with log_context(case_id=1, task_id="t"):
        log.info("x", extra={"case_id": 2})
    assert current_context() == {}
    (line,) = _lines(out)
    assert line["case_id"] == 2 and line["task_id"] == "t"


def test_task_ids_on_records_logged_in_a_task() -> None:
    app = Celery("logtest", set_as_current=False)
    app.conf.update(task_always_eager=True, task_store_eager_result=False)
    logging_setup.install(app)
    logging_setup.install(app)  # idempotent
    out = io.StringIO()
    configure_logging("INFO", json=True, stream=out)

    @app.task(name="socialcare.test_step")
    def step(post_id: int) -> int:
        log.info("scoring", extra={"post_id": post_id})
        return post_id

    result = step.apply(args=[42])
    log.info("after the task")
    lines = _lines(out)
    inside = next(line for line in lines if line["message"] == "scoring")
    assert inside["task_id"] == result.id
    assert inside["task_name"] == "socialcare.test_step"
    assert inside["post_id"] == 42
    after = next(line for line in lines if line["message"] == "after the task")
    assert "task_id" not in after and "task_name" not in after
    assert current_context() == {}


def test_signal_handlers_bind_and_unbind() -> None:
    class Task:
        name = "socialcare.score_posts"

    logging_setup.on_task_prerun(task_id="id-1", task=Task())
    assert current_context() == {"task_id": "id-1", "task_name": "socialcare.score_posts"}
    logging_setup.on_task_postrun(task_id="id-1", task=Task())
    assert current_context() == {}
    logging_setup.on_task_postrun(task_id="never-started")  # harmless


def test_celery_setup_logging_installs_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    config.get_settings.cache_clear()
    monkeypatch.setattr("celery.app.log.Logging._setup", False)
    app = Celery("logtest2", set_as_current=False)
    logging_setup.install(app)
    try:
        handled = app.log.setup_logging_subsystem(loglevel="INFO")
    finally:
        config.get_settings.cache_clear()
    receivers = [receiver for receiver, _ in handled]
    assert logging_setup.on_setup_logging in receivers  # so Celery added no handler of its own
    handlers = [h for h in logging.getLogger().handlers if _ours(h)]
    assert len(handlers) == 1 and isinstance(handlers[0].formatter, JsonFormatter)
    assert logging.getLogger().level == logging.WARNING
