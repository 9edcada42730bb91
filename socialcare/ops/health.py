"""Readiness: can this process reach its database and its Celery broker, within about a second."""

from __future__ import annotations

import functools
import tempfile
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from socialcare.config import Settings

CHECK_TIMEOUT_SECONDS = 1.0
OK = "ok"
_MAX_ERROR_CHARS = 300


class _Check(threading.Thread):
    """One check in a daemon thread, so a hung server cannot hold the caller past its deadline."""

    def __init__(self, name: str, check: Callable[[], None]) -> None:
        super().__init__(name=f"readiness-{name}", daemon=True)
        self._check = check
        self.result: str | None = None

    def run(self) -> None:
        try:
            self._check()
        except Exception as exc:
            self.result = _error(exc)
        else:
            self.result = OK


def _error(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig  # the driver's own message, without SQLAlchemy's statement and links
    detail = " ".join(str(exc).split()) or "no detail"
    return f"error: {type(exc).__name__}: {detail}"[:_MAX_ERROR_CHARS]


@functools.lru_cache(maxsize=4)
def _probe_engine(url: str) -> Engine:
    """A pool-less engine with short driver timeouts, separate from the app's pool."""
    if url.startswith("sqlite"):
        return create_engine(url, poolclass=NullPool, connect_args={"timeout": 1})
    # psycopg waits at least 2 s to connect; the thread deadline bounds the caller anyway.
    connect_args = {"connect_timeout": 2, "options": "-c statement_timeout=1000"}
    return create_engine(url, poolclass=NullPool, connect_args=connect_args)


def check_database(settings: Settings) -> None:
    """SELECT 1 on the settings' database; raises on failure."""
    with _probe_engine(settings.sqlalchemy_url).connect() as conn:
        conn.execute(text("SELECT 1")).scalar_one()


def _check_redis(url: str, timeout: float) -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        if not client.ping():
            raise ConnectionError("PING not answered")
    finally:
        client.close()


def _check_kombu(url: str, timeout: float) -> None:
    from kombu import Connection

    with Connection(url, connect_timeout=timeout) as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)


def _check_folder(settings: Settings) -> None:
    folder = settings.broker_folder / "messages"
    if not folder.is_dir():
        raise FileNotFoundError(f"broker folder {folder} does not exist")
    # The file-system transport only reads files named ID.QUEUE.msg: a dot-file is never taken.
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".readyz-", suffix=".probe") as probe:
        probe.write(b"ok")
        probe.flush()


def check_broker(settings: Settings, timeout: float = CHECK_TIMEOUT_SECONDS) -> None:
    """Reach the Celery broker the workers use; raises on failure."""
    url = settings.celery_broker_url
    scheme = url.partition("://")[0].lower()
    if scheme == "filesystem":
        _check_folder(settings)
    elif scheme in ("redis", "rediss", "unix"):
        _check_redis(url, timeout)
    else:
        _check_kombu(url, timeout)


def _broker_kind(settings: Settings) -> str:
    return settings.celery_broker_url.partition("://")[0].lower() or "unknown"


def readiness(settings: Settings, *, timeout: float = CHECK_TIMEOUT_SECONDS) -> dict[str, str]:
    """{"database": ..., "broker": ...}: "ok" or "error: ..."; both checks share one deadline."""
    checks = {
        "database": _Check("database", functools.partial(check_database, settings)),
        "broker": _Check("broker", functools.partial(check_broker, settings, timeout)),
    }
    deadline = time.monotonic() + timeout
    for check in checks.values():
        check.start()
    for check in checks.values():
        check.join(max(0.0, deadline - time.monotonic()))
    out: dict[str, str] = {}
    for name, check in checks.items():
        result = check.result
        out[name] = result if result is not None else f"error: no answer within {timeout:g} s"
    if out["broker"] != OK:
        out["broker"] = out["broker"].replace("error: ", f"error: {_broker_kind(settings)}: ", 1)
    return out


FAILED = "failed"


def public(result: dict[str, str]) -> dict[str, str]:
    """readiness() as anyone may read it: "ok" or "failed" per check, no error text (which can
    name hosts, paths and accounts)."""
    return {name: OK if value == OK else FAILED for name, value in result.items()}
