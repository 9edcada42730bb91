"""The API's answers built from rows: a case, a reply and an event as the response models."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare.cases.models import Case, Event, Reply
from socialcare.people.models import Agent, Team
from socialcare.posts.models import Post
from socialcare.web import api_models as m
from socialcare.web import case_query


def reply_url(reply: Reply, case: Case, handle: str | None) -> str | None:
    """The public address of a sent reply, built by socialcare.sources.urls (as on the case
    page and in digests); handle is the brand account's."""
    return case_query.reply_link(None, reply, case.platform, handle)


def reply_out(reply: Reply, case: Case, handle: str | None) -> m.ReplyOut:
    return m.ReplyOut(
        id=reply.id,
        case_id=reply.case_id,
        kind=reply.kind,
        state=reply.state,
        text=reply.text,
        attempts=reply.attempts,
        last_error=reply.last_error,
        external_id=reply.external_id,
        url=reply_url(reply, case, handle),
        sent_at=reply.sent_at,
        created_at=reply.created_at,
    )


def case_out(session: Session, case: Case) -> m.CaseOut:
    team = session.get(Team, case.team_id) if case.team_id is not None else None
    holder = session.get(Agent, case.claimed_by) if case.claimed_by is not None else None
    return m.CaseOut(
        id=case.id,
        platform=case.platform,
        status=case.status,
        priority=case.priority,
        urgency=float(case.urgency or 0.0),
        topic=case.topic,
        team=team.name if team else None,
        customer_handle=case.customer_handle,
        claimed_by=holder.handle if holder else None,
        claim_expires_at=case.claim_expires_at,
        opened_at=case.opened_at,
        sla_due_at=case.sla_due_at,
        first_response_at=case.first_response_at,
        first_response_via=case.first_response_via,
        needs_lead=bool(case.needs_lead),
        escalated=bool(case.escalated),
        closed_at=case.closed_at,
        close_reason=case.close_reason,
        language=session.scalar(select(Post.language).where(Post.id == case.root_post_id)),
        waiting_since=case.waiting_since,
        reply_due_at=case.reply_due_at,
    )


def event_out(e: Event) -> m.EventOut:
    return m.EventOut(
        id=e.id,
        at=e.at,
        actor=e.actor,
        kind=e.kind,
        case_id=e.case_id,
        reply_id=e.reply_id,
        data=dict(e.data or {}),
    )
