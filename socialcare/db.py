"""Database plumbing: declarative Base, engine from settings, session_scope, after-commit hooks."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    ColumnElement,
    CursorResult,
    DateTime,
    Engine,
    Float,
    Result,
    bindparam,
    create_engine,
    event,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from socialcare.config import Settings, get_settings

JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; socialcare stores aware UTC datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONType, list[Any]: JSONType}


def utcnow() -> datetime:
    return datetime.now(UTC)


def dialect_insert(dialect: str) -> Any:
    """The insert of a dialect, by name (on_conflict_do_* on SQLite and PostgreSQL alike)."""
    return (postgresql if dialect == "postgresql" else sqlite).insert


def insert_for(session: Session) -> Any:
    """The session's dialect's insert (on_conflict_do_* on SQLite and PostgreSQL alike)."""
    return dialect_insert(session.get_bind().dialect.name)


def on_postgresql(session: Session) -> bool:
    """Whether the session's database is PostgreSQL (where one statement may do more)."""
    return bool(session.get_bind().dialect.name == "postgresql")


def changed_rows(result: Result[Any]) -> int:
    """Rows an UPDATE changed: how a compare-and-set learns whether it won."""
    return int(cast(CursorResult[Any], result).rowcount)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # The driver must not open transactions itself: _sqlite_begin does, as BEGIN IMMEDIATE.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # WAL lets the web page read while a worker writes; busy_timeout waits instead of failing.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # A deferred transaction that reads, then writes after another process wrote, fails at once
    # with "database is locked" (the busy timeout cannot help it). Taking the write lock at
    # BEGIN makes concurrent workers wait their turn instead.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """An engine for url; SQLite gets WAL and a busy timeout, PostgreSQL pre-ping."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


@functools.lru_cache(maxsize=4)
def _engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine(settings: Settings | None = None) -> Engine:
    return _engine_for((settings or get_settings()).sqlalchemy_url)


def get_sessionmaker(settings: Settings | None = None) -> sessionmaker[Session]:
    return sessionmaker(get_engine(settings), expire_on_commit=False)


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run callback once the session's current transaction commits; never if it rolls back."""
    session.info.setdefault("after_commit", []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    callbacks = session.info.pop("after_commit", [])
    for callback in callbacks:
        callback()


@event.listens_for(Session, "after_rollback")
def _drop_after_commit(session: Session) -> None:
    session.info.pop("after_commit", None)


@contextmanager
def session_scope(settings: Settings | None = None) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error, always close."""
    session = get_sessionmaker(settings)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# SQL building blocks the latency figures and the acknowledgements share.
class SecondsBetween(FunctionElement[float]):
    """SQL expression: seconds from start to end (two timestamp columns), NULL if either is."""

    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(SecondsBetween, "postgresql")
def _seconds_pg(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    end, start = list(element.clauses)
    return f"EXTRACT(EPOCH FROM ({compiler.process(end, **kw)} - {compiler.process(start, **kw)}))"


@compiles(SecondsBetween, "sqlite")
def _seconds_sqlite(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    end, start = list(element.clauses)
    # julianday() is a double of days: round to the millisecond to drop float noise.
    return (
        f"ROUND((julianday({compiler.process(end, **kw)}) - "
        f"julianday({compiler.process(start, **kw)})) * 86400.0, 3)"
    )


class JSONText(FunctionElement[Any]):
    """SQL expression: a JSON value as it compares (PostgreSQL's jsonb compares by value as it
    is; SQLite compares texts, so json() minifies them first and spacing never differs)."""

    type = JSON()
    inherit_cache = True
    name = "json_text"


@compiles(JSONText, "postgresql")
def _json_text_pg(element: JSONText, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = list(element.clauses)
    return str(compiler.process(value, **kw))


@compiles(JSONText, "sqlite")
def _json_text_sqlite(element: JSONText, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = list(element.clauses)
    return f"json({compiler.process(value, **kw)})"


def same_json(left: ColumnElement[Any], right: ColumnElement[Any]) -> ColumnElement[bool]:
    """SQL condition: two JSON values (a column, a bound dict) are equal on either database."""
    return JSONText(left).op("=", is_comparison=True)(JSONText(right))


def at(value: datetime) -> ColumnElement[datetime]:
    """A datetime as a bound SQL value stored the way the columns are."""
    return bindparam(None, value, type_=UTCDateTime())
