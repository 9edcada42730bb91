"""Telling customers the wait: an optional public acknowledgement when a case is queued, with
the wait predicted from the team's queue and its recent answering rate. Sent once per case; it
is never the first response (the customer still waits for an answer)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from socialcare.cases.events import WORKER, record
from socialcare.cases.models import Case, Reply
from socialcare.config import Settings
from socialcare.db import SecondsBetween, utcnow
from socialcare.posts.models import Post
from socialcare.routing.rules import PRIORITY_ORDER

RATE_WINDOW = timedelta(hours=1)  # answers counted to estimate how fast the team clears cases
HISTORY = timedelta(days=7)  # a quiet team's typical first response, when no recent answers
MIN_WAIT, MAX_WAIT = 60.0, 7 * 86400.0


def _ahead(session: Session, case: Case) -> int:
    """Unanswered open cases of the same team that the queue serves before this one."""
    rank = PRIORITY_ORDER.index(case.priority) if case.priority in PRIORITY_ORDER else 9
    more_urgent = [p for p in PRIORITY_ORDER[:rank]]
    stmt = select(func.count()).where(
        Case.id != case.id,
        Case.status.in_(("queued", "claimed")),
        Case.first_response_at.is_(None),
        or_(
            Case.priority.in_(more_urgent),
            and_(Case.priority == case.priority, Case.opened_at < case.opened_at),
        ),
    )
    stmt = stmt.where(
        Case.team_id == case.team_id if case.team_id is not None else Case.team_id.is_(None)
    )
    return int(session.execute(stmt).scalar_one())


def predict_wait(*, session: Session, case: Case, now: datetime, settings: Settings) -> float:
    """Seconds until this case is likely answered: the cases ahead of it (and itself) at the
    rate the team answered in the last hour; without recent answers, the team's median first
    response of the last week; without history, the priority's SLA. Within 1 minute to 7 days."""
    team = Case.team_id == case.team_id if case.team_id is not None else Case.team_id.is_(None)
    answered_lately = session.execute(
        select(func.count()).where(
            team, Case.first_response_at > now - RATE_WINDOW, Case.first_response_at <= now
        )
    ).scalar_one()
    if answered_lately:
        rate = answered_lately / RATE_WINDOW.total_seconds()
        wait = (_ahead(session, case) + 1) / rate
    else:
        recent = session.execute(
            select(SecondsBetween(Case.first_response_at, Case.opened_at))
            .where(team, Case.first_response_at > now - HISTORY, Case.first_response_at <= now)
            .order_by(SecondsBetween(Case.first_response_at, Case.opened_at))
        ).scalars()
        times = [float(t) for t in recent if t is not None]
        wait = times[len(times) // 2] if times else float(settings.sla_seconds[case.priority])
    return min(MAX_WAIT, max(MIN_WAIT, wait))


def describe_wait(seconds: float) -> str:
    """A wait as customers read it: '5 minutes', '2 hours', '1 day'."""
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{max(1, minutes)} minute{'s' if minutes != 1 else ''}"
    hours = round(seconds / 3600)
    if hours < 48:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    days = round(seconds / 86400)
    return f"{days} days"


def queue_ack(*, session: Session, case: Case, now: datetime, settings: Settings) -> Reply | None:
    """Queue the case's acknowledgement with the wait predicted as of now (the source's clock
    when it saw the post), once; None if acknowledgements are off, the case has one already, or
    it was answered before it was queued."""
    if not settings.ack_enabled or case.first_response_at is not None:
        return None
    if session.execute(
        select(Reply.id).where(Reply.case_id == case.id, Reply.kind == "ack")
    ).first():
        return None
    root = session.get(Post, case.root_post_id)
    if root is None:
        return None
    wait = predict_wait(session=session, case=case, now=now, settings=settings)
    text = settings.ack_template.format(handle=case.customer_handle, wait=describe_wait(wait))
    reply = Reply(
        case_id=case.id,
        agent_id=None,
        in_reply_to_post_id=root.id,
        text=text,
        kind="ack",
        state="queued",
        next_attempt_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(reply)
            session.flush()
    except IntegrityError:
        return None  # another worker queued it first (one acknowledgement per case)
    case.ack_predicted_seconds, case.ack_predicted_at = wait, now
    record(session, actor=WORKER, kind="ack_queued", case_id=case.id, reply_id=reply.id)
    return reply


def queued_acks(*, session: Session, case_ids: Sequence[int]) -> list[int]:
    """Ids of the acknowledgements of these cases still waiting to be sent."""
    stmt = select(Reply.id).where(
        Reply.case_id.in_(case_ids), Reply.kind == "ack", Reply.state == "queued"
    )
    return list(session.execute(stmt).scalars())


def is_acknowledgement(session: Session, brand_post: Post) -> bool:
    """The brand post is one of socialcare's acknowledgements: by the id the platform gave it,
    or (seen on the platform before the send was recorded) by its target and text."""
    parent = session.execute(
        select(Post.id).where(
            Post.platform == brand_post.platform,
            Post.external_id == brand_post.in_reply_to_external_id,
        )
    ).scalar_one_or_none()
    match = Reply.external_id == brand_post.external_id
    if parent is not None:
        match = or_(match, and_(Reply.in_reply_to_post_id == parent, Reply.text == brand_post.text))
    found = session.execute(select(Reply.id).where(Reply.kind == "ack", match).limit(1)).first()
    return found is not None
