"""The audit log as leads read it: every event, filtered by actor, case and time."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import HTTPException
from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare.cases.events import SYSTEM_ACTORS
from socialcare.cases.models import Event

AUDIT_LIMIT = 500


def parse_when(value: str | None) -> datetime | None:
    """An ISO 8601 date or time (UTC when it names no zone); 400 when it is not one."""
    if value is None or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise HTTPException(400, f"not an ISO 8601 time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def audit_rows(
    session: Session,
    *,
    agent: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    case_id: int | None = None,
    limit: int = AUDIT_LIMIT,
) -> list[Event]:
    """Events newest first; agent is a handle (agent:HANDLE) or an actor such as worker."""
    stmt = select(Event)
    if agent:
        actor = agent if ":" in agent or agent in SYSTEM_ACTORS else (f"agent:{agent}")
        stmt = stmt.where(Event.actor == actor)
    if since is not None:
        stmt = stmt.where(Event.at >= since)
    if until is not None:
        stmt = stmt.where(Event.at < until)
    if case_id is not None:
        stmt = stmt.where(Event.case_id == case_id)
    return list(session.scalars(stmt.order_by(Event.at.desc(), Event.id.desc()).limit(limit)))
