"""The JSON API: every workspace action, for the pages' scripts and for integrations (bearer
tokens). Described by /openapi.json; errors are {"detail": "..."} with 400, 401, 403, 404 or
409, and 422 for input that cannot be used, as {"detail": [{"loc", "msg", "type"}]} whether the
request's shape or a service refused it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare.auth.roles import LEAST_ROLE, Permission
from socialcare.cases import actions
from socialcare.cases.lengths import rule_for
from socialcare.cases.models import Case, Reply
from socialcare.errors import Conflict, NotFound
from socialcare.people.models import Agent, Team
from socialcare.posts.models import Account, Post
from socialcare.web import api_models as m
from socialcare.web import floor_view, queries
from socialcare.web.audit import audit_rows, parse_when
from socialcare.web.deps import SessionDep, request_now
from socialcare.web.pages import queue_filter
from socialcare.web.params import RowId, RowIdQuery
from socialcare.web.security import (
    AuditReader,
    CannedManager,
    CaseWorker,
    FloorReader,
    QueueReader,
    SourcesReader,
)

log = logging.getLogger(__name__)
ERROR_TEXT = {
    400: "a body that is not JSON, or a query parameter with a value it cannot have",
    401: "not logged in and no valid token",
    403: "the role may not do this, or the CSRF token is missing",
    404: "no such case, reply, team, person, token or canned reply",
    409: "the row is not in the state the action needs (claimed by someone else, closed...)",
}


def fails(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error answers an operation may give, for its OpenAPI description."""
    return {code: {"model": m.ErrorOut, "description": ERROR_TEXT[code]} for code in codes}


router = APIRouter(prefix="/api", responses=fails(400, 401, 403))


@contextmanager
def api_errors() -> Iterator[None]:
    """Service errors as HTTP errors: NotFound 404, Conflict 409, ValueError 422."""
    try:
        yield
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    except ValueError as exc:
        raise unusable(str(exc)) from None


def unusable(message: str) -> RequestValidationError:
    """A 422 in the same shape as FastAPI's own, so clients read one kind of 422."""
    return RequestValidationError([{"loc": ["body"], "msg": message, "type": "value_error"}])


def enqueue_send(request: Request, reply_id: int) -> None:
    """Ask a worker to send the reply (after commit). If the broker is away, the sweep sends it
    later: the reply is queued in the database either way."""
    try:
        request.app.state.enqueue("send_reply", reply_id)
    except Exception as exc:  # the broker being down must not fail the agent's request
        log.warning("could not enqueue reply %s now (the sweep will): %s", reply_id, exc)


def reply_url(reply: Reply, case: Case, handle: str | None) -> str | None:
    """The public address of a sent reply, built by socialcare.sources.urls (as on the case
    page and in digests); handle is the brand account's."""
    return queries.reply_link(None, reply, case.platform, handle)


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


def event_out(e: Any) -> m.EventOut:
    return m.EventOut(
        id=e.id,
        at=e.at,
        actor=e.actor,
        kind=e.kind,
        case_id=e.case_id,
        reply_id=e.reply_id,
        data=dict(e.data or {}),
    )


@router.get("/me", response_model=m.Me)
def me(actor: QueueReader) -> m.Me:
    """Who this token or session is, and what they may do."""
    a = actor.agent
    return m.Me(
        handle=a.handle,
        display_name=a.display_name,
        role=a.role,
        teams=sorted(t.name for t in a.teams),
        permissions=sorted(p.value for p in LEAST_ROLE if actor.can(p)),
    )


@router.get("/queue", response_model=list[queries.QueueRow])
def queue(
    request: Request,
    session: SessionDep,
    actor: QueueReader,
    f: queries.QueueFilter = Depends(queue_filter),
    limit: Annotated[int, Query(ge=1, le=queries.QUEUE_LIMIT)] = queries.QUEUE_PAGE,
    offset: Annotated[int, Query(ge=0, le=queries.QUEUE_MAX_OFFSET)] = 0,
) -> Any:
    """Open cases, most urgent first then longest waiting, limit of them after offset;
    X-Total-Count has how many match in all."""
    now = request_now(request)
    rows, total = queries.queue_rows(session, now=now, where=f, limit=limit, offset=offset)
    seen = actions.viewers(session=session, case_ids=[r.id for r in rows], now=now)
    body = [replace(row, viewers=seen.get(row.id, [])).to_json() for row in rows]
    return JSONResponse(body, headers={"X-Total-Count": str(total)})


def _detail(request: Request, session: Session, actor: Any, case_id: int) -> m.CaseDetailOut:
    detail = queries.case_detail(session, case_id)
    if detail is None:
        raise HTTPException(404, f"no case {case_id}")
    handle = detail.account.handle if detail.account else None
    now = request_now(request)
    history = None
    if actor.can(Permission.AUDIT_READ):
        history = [event_out(e) for e in detail.events]
    return m.CaseDetailOut(
        case=case_out(session, detail.case),
        posts=[
            m.PostOut(
                id=p.id,
                external_id=p.external_id,
                author_handle=p.author_handle,
                is_brand=bool(p.is_brand),
                text=p.text,
                created_at=p.created_at,
                in_reply_to_external_id=p.in_reply_to_external_id,
                language=p.language,
            )
            for p in detail.posts
        ],
        replies=[reply_out(r, detail.case, handle) for r in detail.replies],
        notes=[event_out(e) for e in detail.events if e.kind == "note"],
        earlier=[case_out(session, c) for c in detail.earlier],
        reasons=detail.reasons,
        viewers=actions.viewers(session=session, case_ids=[case_id], now=now).get(case_id, []),
        reply_limit=rule_for(detail.case.platform).limit,
        history=history,
    )


@router.get("/cases/{case_id}", response_model=m.CaseDetailOut, responses=fails(404))
def get_case(request: Request, session: SessionDep, actor: QueueReader, case_id: RowId) -> Any:
    """A case with its thread, replies (outbox states), notes, the customer's earlier cases."""
    return _detail(request, session, actor, case_id)


def _lease(request: Request) -> float:
    settings = request.app.state.settings
    return float(min(settings.claim_lease_seconds, settings.claim_idle_seconds))


@router.post("/cases/next", response_model=m.CaseOut | None, responses=fails(404, 409))
def claim_next(
    request: Request, session: SessionDep, actor: CaseWorker, body: m.NextIn | None = None
) -> Any:
    """Claim the top queued case (of a team, else of one's teams) in a language one reads; null
    when none waits; 409, naming the languages, when only cases in others wait."""
    with api_errors():
        case = actions.claim_next(
            session=session,
            agent=actor.agent,
            team=body.team if body else None,
            lease_seconds=_lease(request),
        )
    session.commit()
    return case_out(session, case) if case is not None else None


@router.post("/cases/{case_id}/claim", response_model=m.CaseOut, responses=fails(404, 409))
def claim(request: Request, session: SessionDep, actor: CaseWorker, case_id: RowId) -> Any:
    """Claim a case; 409 when someone else holds it or it is not waiting."""
    with api_errors():
        case = actions.claim(
            session=session, agent=actor.agent, case_id=case_id, lease_seconds=_lease(request)
        )
    session.commit()
    return case_out(session, case)


@router.post("/cases/{case_id}/release", response_model=m.CaseOut, responses=fails(404, 409))
def release(session: SessionDep, actor: CaseWorker, case_id: RowId) -> Any:
    """Give a claimed case back to the queue."""
    with api_errors():
        case = actions.release(session=session, agent=actor.agent, case_id=case_id)
    session.commit()
    return case_out(session, case)


@router.post("/cases/{case_id}/heartbeat", response_model=m.CaseOut, responses=fails(404))
def heartbeat(
    request: Request, session: SessionDep, actor: QueueReader, case_id: RowId, body: m.HeartbeatIn
) -> Any:
    """The page is open (and the agent active): presence, and the claim's lease extended."""
    with api_errors():
        case = actions.heartbeat(
            session=session,
            agent=actor.agent,
            case_id=case_id,
            active=body.active,
            now=request_now(request),
            idle_seconds=_lease(request),
        )
    session.commit()
    return case_out(session, case)


@router.post(
    "/cases/{case_id}/replies",
    response_model=m.ReplyOut,
    status_code=201,
    responses=fails(404, 409),
)
def create_reply(
    request: Request, session: SessionDep, actor: CaseWorker, case_id: RowId, body: m.TextIn
) -> Any:
    """Queue a public reply on a case one holds; a worker sends it, exactly once."""
    with api_errors():
        reply = actions.reply(session=session, agent=actor.agent, case_id=case_id, text=body.text)
    session.commit()
    enqueue_send(request, reply.id)
    case = session.get(Case, case_id)
    assert case is not None
    return reply_out(reply, case, None)


@router.post("/replies/{reply_id}/retry", response_model=m.ReplyOut, responses=fails(404, 409))
def retry_reply(request: Request, session: SessionDep, actor: CaseWorker, reply_id: RowId) -> Any:
    """Send a failed reply again (409 for any other state: a sent or unknown one never is)."""
    with api_errors():
        reply = actions.retry_reply(session=session, agent=actor.agent, reply_id=reply_id)
    session.commit()
    enqueue_send(request, reply.id)
    case = session.get(Case, reply.case_id)
    assert case is not None
    return reply_out(reply, case, None)


@router.post(
    "/cases/{case_id}/notes", status_code=201, response_model=m.CaseOut, responses=fails(404)
)
def add_note(session: SessionDep, actor: CaseWorker, case_id: RowId, body: m.TextIn) -> Any:
    """An internal note (never public)."""
    with api_errors():
        actions.add_note(session=session, agent=actor.agent, case_id=case_id, text=body.text)
        case = actions.work.get_case(session=session, case_id=case_id)
    session.commit()
    return case_out(session, case)


@router.post("/cases/{case_id}/escalate", response_model=m.CaseOut, responses=fails(404, 409))
def escalate(session: SessionDep, actor: CaseWorker, case_id: RowId, body: m.EscalateIn) -> Any:
    """To another team's queue (one priority higher), or to a lead, with a reason."""
    with api_errors():
        case = actions.escalate(
            session=session,
            agent=actor.agent,
            case_id=case_id,
            reason=body.reason,
            team=body.team,
            to_lead=body.to_lead,
        )
    session.commit()
    return case_out(session, case)


def _close(session: Session, actor: Any, case_id: int, status: str, reason: str) -> m.CaseOut:
    with api_errors():
        case = actions.close(
            session=session, agent=actor.agent, case_id=case_id, status=status, reason=reason
        )
    session.commit()
    return case_out(session, case)


@router.post("/cases/{case_id}/resolve", response_model=m.CaseOut, responses=fails(404, 409))
def resolve(session: SessionDep, actor: CaseWorker, case_id: RowId, body: m.ReasonIn) -> Any:
    """Close the case as resolved, with a reason."""
    return _close(session, actor, case_id, "resolved", body.reason)


@router.post("/cases/{case_id}/dismiss", response_model=m.CaseOut, responses=fails(404, 409))
def dismiss(session: SessionDep, actor: CaseWorker, case_id: RowId, body: m.ReasonIn) -> Any:
    """Close the case as needing no answer, with a reason."""
    return _close(session, actor, case_id, "dismissed", body.reason)


@router.get("/canned", response_model=list[m.CannedOut], responses=fails(404))
def canned(session: SessionDep, actor: QueueReader, case_id: RowIdQuery = None) -> Any:
    """Canned replies (for a case: its team's and everyone's, with the variables filled)."""
    case = session.get(Case, case_id) if case_id is not None else None
    if case_id is not None and case is None:
        raise HTTPException(404, f"no case {case_id}")
    rows = actions.canned_replies(session=session, team_id=case.team_id if case else None)
    return [
        m.CannedOut(
            id=c.id,
            name=c.name,
            text=c.text,
            team=c.team,
            filled=actions.fill_canned(c.text, handle=case.customer_handle, agent=actor.agent)
            if case
            else None,
        )
        for c in rows
    ]


@router.post("/canned", response_model=m.CannedOut, status_code=201, responses=fails(404))
def save_canned(session: SessionDep, actor: CannedManager, body: m.CannedIn) -> Any:
    """Create or update a canned reply by name."""
    with api_errors():
        row = actions.save_canned(
            session=session, agent=actor.agent, name=body.name, text=body.text, team=body.team
        )
    session.commit()
    return m.CannedOut(id=row.id, name=row.name, text=row.text, team=body.team or None)


@router.delete("/canned/{canned_id}", status_code=204, responses=fails(404))
def delete_canned(session: SessionDep, actor: CannedManager, canned_id: RowId) -> None:
    with api_errors():
        actions.delete_canned(session=session, agent=actor.agent, canned_id=canned_id)
    session.commit()


@router.get("/floor", response_model=m.FloorOut)
def floor(request: Request, session: SessionDep, actor: FloorReader) -> Any:
    """Who holds what, what is about to breach, who asked for a lead."""
    data = floor_view.floor(session, now=request_now(request))
    return m.FloorOut(
        held=data["held"],
        soon=data["soon"],
        asked=data["asked"],
        per_agent=dict(data["per_agent"]),
        by_language=dict(data["by_language"]),
    )


@router.get("/sources", response_model=m.SourcesOut)
def sources(request: Request, session: SessionDep, actor: SourcesReader) -> Any:
    """Ingestion health per polled account and the recent ingestion incidents."""
    return queries.sources(session, now=request_now(request), settings=request.app.state.settings)


@router.get("/audit", response_model=list[m.EventOut])
def audit(
    session: SessionDep,
    actor: AuditReader,
    agent: str | None = None,
    since: str | None = None,
    until: str | None = None,
    case_id: RowIdQuery = None,
) -> Any:
    """Events newest first (at most 500), by actor, case and time."""
    rows = audit_rows(
        session,
        agent=agent or None,
        since=parse_when(since),
        until=parse_when(until),
        case_id=case_id,
    )
    return [event_out(e) for e in rows]


def account_handle(session: Session, case: Case) -> str | None:
    account = session.get(Account, case.account_id)
    return account.handle if account else None
