"""What agents do with cases: claim (never two at once), resolve, dismiss, escalate."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy import case as sql_case
from sqlalchemy.orm import Session, aliased

from socialcare.cases.events import WORKER, record
from socialcare.cases.models import OPEN_STATUSES, Case
from socialcare.db import changed_rows, utcnow
from socialcare.errors import Conflict, NotFound
from socialcare.ids import in_range
from socialcare.people.models import Agent
from socialcare.people.service import agent_by_handle
from socialcare.posts.models import Post
from socialcare.routing.rules import PRIORITY_ORDER, raise_priority
from socialcare.routing.service import UNKNOWN_LANGUAGE, team_by_name

CLAIM_RETRIES = 8

priority_rank = sql_case({p: i for i, p in enumerate(PRIORITY_ORDER)}, value=Case.priority, else_=9)


def get_agent(*, session: Session, handle: str) -> Agent:
    """The active person with this handle, found as the login finds them; NotFound otherwise."""
    agent = agent_by_handle(session=session, handle=handle)
    if agent is None or not agent.active:
        raise NotFound(f"no active agent {handle!r}")
    return agent


def get_case(*, session: Session, case_id: int) -> Case:
    """The case with this id; NotFound for an id no case can have, never a database error."""
    case = session.get(Case, case_id) if in_range(case_id) else None
    if case is None:
        raise NotFound(f"no case {case_id}")
    return case


def queue_order() -> tuple[object, ...]:
    """Most urgent priority first; within it, whoever has waited longest: since the case opened,
    or since the customer wrote again after the brand's reply (not since the case's first post)."""
    return (priority_rank, Case.waiting_since, Case.id)


def _try_claim(session: Session, case_id: int, agent: Agent, lease_seconds: float) -> bool:
    now = utcnow()
    changed = changed_rows(
        session.execute(
            update(Case)
            .where(Case.id == case_id, Case.status == "queued")
            .values(
                status="claimed",
                claimed_by=agent.id,
                claimed_at=now,
                claim_expires_at=now + timedelta(seconds=lease_seconds),
            )
            .execution_options(synchronize_session=False)
        )
    )
    if changed:
        record(session, actor=f"agent:{agent.handle}", kind="claimed", case_id=case_id)
    return bool(changed)


def agent_reads(agent: Agent) -> list[str]:
    """The languages an agent declared (ISO 639-1 codes); empty: they take a case in any."""
    return sorted({str(code) for code in agent.languages or []})


def _root_language_in(languages: list[str]) -> ColumnElement[bool]:
    """The case's first post is in one of languages, or its language is unknown ("und", or
    not detected): the same post the queue's language filter looks at."""
    root = aliased(Post)
    return (
        exists()
        .where(
            root.id == Case.root_post_id,
            or_(root.language.in_([*languages, UNKNOWN_LANGUAGE]), root.language.is_(None)),
        )
        .correlate_except(root)
    )


def _queued(agent: Agent, team_id: int | None) -> list[ColumnElement[bool]]:
    """Queued cases of team_id, else of the agent's teams (all if they have none)."""
    team_ids = [team_id] if team_id is not None else [t.id for t in agent.teams]
    where = [Case.status == "queued"]
    if team_ids:
        where.append(Case.team_id.in_(team_ids))
    return where


def claim_next(
    *, session: Session, agent: Agent, team_id: int | None = None, lease_seconds: float = 900.0
) -> Case | None:
    """Atomically claim the top queued case of the agent's teams (or team_id) in a language the
    agent reads (any, if they declared none; a case of unknown language always counts); None
    when no such case waits (waiting_unread says whether others do)."""
    languages = agent_reads(agent)
    for _ in range(CLAIM_RETRIES):
        stmt = select(Case.id).where(*_queued(agent, team_id))
        if languages:
            stmt = stmt.where(_root_language_in(languages))
        stmt = stmt.order_by(*queue_order()).limit(1)  # type: ignore[arg-type]
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=Case)
        case_id = session.execute(stmt).scalar_one_or_none()
        if case_id is None:
            return None
        if _try_claim(session, case_id, agent, lease_seconds):
            session.expire_all()
            return session.get(Case, case_id)
    return None


def waiting_unread(*, session: Session, agent: Agent, team_id: int | None = None) -> dict[str, int]:
    """How many queued cases of the agent's teams (or team_id) wait in each language the agent
    does not read (none for an agent who declared no languages)."""
    languages = agent_reads(agent)
    if not languages:
        return {}
    root = aliased(Post)
    stmt = (
        select(root.language, func.count())
        .select_from(Case)
        .join(root, root.id == Case.root_post_id)
        .where(*_queued(agent, team_id), root.language.not_in([*languages, UNKNOWN_LANGUAGE]))
        .group_by(root.language)
        .order_by(root.language)
    )
    return {str(code): int(n) for code, n in session.execute(stmt).tuples()}


def claim(*, session: Session, case_id: int, agent: Agent, lease_seconds: float = 900.0) -> Case:
    """Claim one case; Conflict if someone else holds it or it is not waiting."""
    case = get_case(session=session, case_id=case_id)
    if case.status == "claimed" and case.claimed_by == agent.id:
        return case
    if not _try_claim(session, case_id, agent, lease_seconds):
        session.refresh(case)
        holder = session.get(Agent, case.claimed_by) if case.status == "claimed" else None
        if holder is not None:  # the agent who lost a race is told who won it
            raise Conflict(f"case {case_id} is already claimed by {holder.handle}")
        raise Conflict(f"case {case_id} is {case.status}, not queued")
    session.refresh(case)
    return case


def _require_holder(case: Case, agent: Agent) -> None:
    if case.status == "claimed" and case.claimed_by != agent.id and agent.role == "agent":
        raise Conflict(f"case {case.id} is claimed by another agent")
    if case.status not in OPEN_STATUSES:
        raise Conflict(f"case {case.id} is already {case.status}")


def close(*, session: Session, case_id: int, agent: Agent, status: str, reason: str) -> Case:
    """Resolve or dismiss an open case, with a reason."""
    if status not in ("resolved", "dismissed"):
        raise ValueError("status must be resolved or dismissed")
    case = get_case(session=session, case_id=case_id)
    _require_holder(case, agent)
    case.status = status
    case.closed_at = utcnow()
    case.close_reason = reason
    case.claim_expires_at = None
    record(session, actor=f"agent:{agent.handle}", kind=status, case_id=case_id, reason=reason)
    session.flush()
    return case


def escalate(*, session: Session, case_id: int, agent: Agent, team: str, reason: str) -> Case:
    """Send an open case to another team's queue, one priority higher, with a reason."""
    case = get_case(session=session, case_id=case_id)
    _require_holder(case, agent)
    target = team_by_name(session=session, name=team)
    case.team_id = target.id
    case.priority = raise_priority(case.priority)
    case.escalated = True
    case.status = "queued"
    case.claimed_by = None
    case.claim_expires_at = None
    case.queued_at = utcnow()
    record(
        session,
        actor=f"agent:{agent.handle}",
        kind="escalated",
        case_id=case_id,
        team=team,
        reason=reason,
        priority=case.priority,
    )
    session.flush()
    return case


def release_expired_claims(*, session: Session, now: datetime) -> int:
    """Claims whose lease ran out go back to the queue."""
    ids = list(
        session.execute(
            select(Case.id).where(Case.status == "claimed", Case.claim_expires_at < now)
        ).scalars()
    )
    for case_id in ids:
        changed = changed_rows(
            session.execute(
                update(Case)
                .where(Case.id == case_id, Case.status == "claimed", Case.claim_expires_at < now)
                .values(status="queued", claimed_by=None, claim_expires_at=None, queued_at=now)
                .execution_options(synchronize_session=False)
            )
        )
        if changed:
            record(session, actor=WORKER, kind="claim_expired", case_id=case_id)
    return len(ids)


def age_overdue(*, session: Session, now: datetime) -> int:
    """Cases that sat in the queue longer than their SLA rise one priority level, once: an
    unanswered case against its first-response SLA, a customer who wrote again after the
    brand's reply against the next-reply SLA (reply_due_at).

    Measured from queued_at on the wall clock, so replayed history ages like live traffic.
    """
    cases = session.execute(
        select(Case).where(
            Case.status.in_(("queued", "claimed")),
            Case.escalated.is_(False),
            Case.priority != "P1",
            Case.queued_at.is_not(None),
            or_(
                and_(Case.first_response_at.is_(None), Case.sla_due_at.is_not(None)),
                and_(Case.reply_due_at.is_not(None), Case.waiting_since.is_not(None)),
            ),
        )
    ).scalars()
    count = 0
    for case in cases:
        assert case.queued_at is not None
        if case.first_response_at is None and case.sla_due_at is not None:
            allowed, kind = case.sla_due_at - case.opened_at, "sla_breached"
        elif case.reply_due_at is not None and case.waiting_since is not None:
            allowed, kind = case.reply_due_at - case.waiting_since, "next_reply_breached"
        else:
            continue
        if case.queued_at + allowed >= now:
            continue
        case.priority = raise_priority(case.priority)
        case.escalated = True
        record(session, actor=WORKER, kind=kind, case_id=case.id, priority=case.priority)
        count += 1
    return count
