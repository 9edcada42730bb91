"""What a lead watches on the floor page and /api/floor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from socialcare.web import queries
from socialcare.web.languages import open_by_language

BREACH_WINDOW_SECONDS = 900


def floor(session: Session, *, now: datetime) -> dict[str, Any]:
    """What a lead watches: claims held (longest first), cases about to breach or already late,
    cases whose agent asked for a lead, and how many cases each person holds."""
    held, _ = queries.queue_rows(
        session, now=now, limit=queries.QUEUE_LIMIT, where=queries.QueueFilter(status="claimed")
    )
    held.sort(key=lambda r: r.claimed_at or now)
    waiting, _ = queries.queue_rows(
        session, now=now, limit=queries.QUEUE_LIMIT, where=queries.QueueFilter()
    )
    soon = [
        r
        for r in waiting
        if r.first_response_at is None
        and r.sla_due_at is not None
        and (r.sla_due_at - now).total_seconds() <= BREACH_WINDOW_SECONDS
    ]
    soon.sort(key=lambda r: r.sla_due_at or now)
    asked = [r for r in waiting if r.needs_lead]
    per_agent: dict[str, int] = {}
    for r in held:
        if r.claimed_by:
            per_agent[r.claimed_by] = per_agent.get(r.claimed_by, 0) + 1
    return {
        "held": held,
        "soon": soon,
        "asked": asked,
        "per_agent": sorted(per_agent.items()),
        "by_language": open_by_language(session),
        "now": now,
    }
