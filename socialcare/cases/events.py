"""The audit log: one append-only row per action."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from socialcare.cases.models import Event


def record(
    session: Session,
    *,
    actor: str,
    kind: str,
    case_id: int | None = None,
    post_id: int | None = None,
    reply_id: int | None = None,
    **data: Any,
) -> None:
    """Append an event; actor is 'agent:<handle>' or 'worker'."""
    session.add(
        Event(
            actor=actor, kind=kind, case_id=case_id, post_id=post_id, reply_id=reply_id, data=data
        )
    )
