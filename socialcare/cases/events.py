"""The audit log: one append-only row per action."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from socialcare.cases.models import Event

# The actors of events no person made: the workers' flows, the command line (run by an operator
# without --agent), the web app itself (e.g. a lockout) and first-run seeding.
WORKER = "worker"
CLI = "cli"
WEB = "web"
SETUP = "setup"
SYSTEM_ACTORS = (WORKER, CLI, WEB, SETUP)


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
    """Append an event; actor is 'agent:<handle>' or one of SYSTEM_ACTORS."""
    session.add(
        Event(
            actor=actor, kind=kind, case_id=case_id, post_id=post_id, reply_id=reply_id, data=data
        )
    )
