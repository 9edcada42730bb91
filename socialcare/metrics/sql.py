"""SQL building blocks the latency figures share: seconds between timestamps, bound instants."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from socialcare.db import UTCDateTime


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


def at(value: datetime) -> ColumnElement[datetime]:
    """A datetime as a bound SQL value stored the way the columns are."""
    return bindparam(None, value, type_=UTCDateTime())
