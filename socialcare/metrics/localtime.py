"""Local wall-clock time of a UTC timestamp column, in SQL, for any IANA zone.

PostgreSQL converts with timezone(); SQLite knows no zones, so the UTC offsets in force over the
queried span (with their daylight-saving changes) become a CASE over the change instants.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, Integer, case, cast, extract, func
from sqlalchemy.orm import QueryableAttribute

from socialcare.db import at

STEP = timedelta(minutes=15)  # zone changes fall on quarter hours


def zone(tz: str) -> ZoneInfo:
    """The IANA zone; a clear ValueError for a name the zone database does not know."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r}") from None


def offsets(tz: str, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """(from instant, UTC offset in seconds) for each offset in force over [start, end)."""
    place = zone(tz)

    def offset(t: datetime) -> int:
        delta = t.astimezone(place).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    t = start.astimezone(UTC).replace(second=0, microsecond=0)
    t -= timedelta(minutes=t.minute % 15)
    out = [(start, offset(start))]
    while t < end:
        t += STEP
        current = offset(t)
        if current != out[-1][1]:
            out.append((t, current))
    return out


class LocalTime:
    """Local time parts of column in zone tz, valid for values in [start, end)."""

    def __init__(
        self,
        column: ColumnElement[Any] | QueryableAttribute[Any],
        *,
        tz: str,
        start: datetime,
        end: datetime,
        dialect: str,
    ) -> None:
        self.dialect = dialect
        if dialect == "postgresql":
            self.wall: ColumnElement[Any] = func.timezone(tz, column)
            return
        spans = offsets(tz, start, end)
        seconds: ColumnElement[Any]
        if len(spans) == 1:
            seconds = func.coalesce(spans[0][1], 0)
        else:
            seconds = case(
                *[
                    (column < at(since), before)
                    for (since, _), (_, before) in zip(spans[1:], spans[:-1], strict=True)
                ],
                else_=spans[-1][1],
            )
        self.wall = func.datetime(func.julianday(column) + seconds / 86400.0)

    def hour(self) -> ColumnElement[int]:
        if self.dialect == "postgresql":
            return cast(extract("hour", self.wall), Integer)
        return cast(func.strftime("%H", self.wall), Integer)

    def day(self) -> ColumnElement[str]:
        """The local date as 'YYYY-MM-DD' text on every database."""
        if self.dialect == "postgresql":
            return func.to_char(self.wall, "YYYY-MM-DD")
        return func.date(self.wall)

    def isoweekday(self) -> ColumnElement[int]:
        """1 (Monday) to 7 (Sunday)."""
        if self.dialect == "postgresql":
            return cast(extract("isodow", self.wall), Integer)
        return (cast(func.strftime("%w", self.wall), Integer) + 6) % 7 + 1

    def minute_of_day(self) -> ColumnElement[int]:
        if self.dialect == "postgresql":
            return cast(extract("hour", self.wall) * 60 + extract("minute", self.wall), Integer)
        return cast(func.strftime("%H", self.wall), Integer) * 60 + cast(
            func.strftime("%M", self.wall), Integer
        )


def parse_day(text: str) -> date:
    return date.fromisoformat(str(text)[:10])
