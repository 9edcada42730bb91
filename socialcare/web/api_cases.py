"""The API's queue and case endpoints: list, read, claim (next or one), release, heartbeat, note,
escalate, resolve and dismiss, each through the one service layer (socialcare.cases.actions)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from socialcare.auth.roles import Permission
from socialcare.cases import actions, work
from socialcare.cases.lengths import rule_for
from socialcare.web import api_models as m
from socialcare.web import case_query, queries
from socialcare.web.api import api_errors, fails
from socialcare.web.api_out import case_out, event_out, reply_out
from socialcare.web.deps import SessionDep, request_now
from socialcare.web.pages import queue_filter
from socialcare.web.params import RowId
from socialcare.web.security import Actor, CaseWorker, QueueReader

router = APIRouter(prefix="/api", responses=fails(400, 401, 403))


@router.get("/queue", response_model=list[queries.QueueRow])
def queue(
    request: Request,
    session: SessionDep,
    actor: QueueReader,
    f: queries.QueueFilter = Depends(queue_filter),
    limit: Annotated[int, Query(ge=1, le=queries.QUEUE_LIMIT)] = queries.QUEUE_PAGE,
    offset: Annotated[int, Query(ge=0, le=queries.QUEUE_MAX_OFFSET)] = 0,
) -> JSONResponse:
    """Open cases, most urgent first then longest waiting, limit of them after offset;
    X-Total-Count has how many match in all."""
    now = request_now(request)
    rows, total = queries.queue_rows(session, now=now, where=f, limit=limit, offset=offset)
    seen = actions.viewers(session=session, case_ids=[r.id for r in rows], now=now)
    body = [replace(row, viewers=seen.get(row.id, [])).to_json() for row in rows]
    return JSONResponse(body, headers={"X-Total-Count": str(total)})


def _detail(request: Request, session: Session, actor: Actor, case_id: int) -> m.CaseDetailOut:
    detail = case_query.case_detail(session, case_id)
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
def get_case(
    request: Request, session: SessionDep, actor: QueueReader, case_id: RowId
) -> m.CaseDetailOut:
    """A case with its thread, replies (outbox states), notes, the customer's earlier cases."""
    return _detail(request, session, actor, case_id)


def _lease(request: Request) -> float:
    settings = request.app.state.settings
    return float(min(settings.claim_lease_seconds, settings.claim_idle_seconds))


@router.post("/cases/next", response_model=m.CaseOut | None, responses=fails(404, 409))
def claim_next(
    request: Request, session: SessionDep, actor: CaseWorker, body: m.NextIn | None = None
) -> m.CaseOut | None:
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
def claim(request: Request, session: SessionDep, actor: CaseWorker, case_id: RowId) -> m.CaseOut:
    """Claim a case; 409 when someone else holds it or it is not waiting."""
    with api_errors():
        case = actions.claim(
            session=session, agent=actor.agent, case_id=case_id, lease_seconds=_lease(request)
        )
    session.commit()
    return case_out(session, case)


@router.post("/cases/{case_id}/release", response_model=m.CaseOut, responses=fails(404, 409))
def release(session: SessionDep, actor: CaseWorker, case_id: RowId) -> m.CaseOut:
    """Give a claimed case back to the queue."""
    with api_errors():
        case = actions.release(session=session, agent=actor.agent, case_id=case_id)
    session.commit()
    return case_out(session, case)


@router.post("/cases/{case_id}/heartbeat", response_model=m.CaseOut, responses=fails(404))
def heartbeat(
    request: Request, session: SessionDep, actor: QueueReader, case_id: RowId, body: m.HeartbeatIn
) -> m.CaseOut:
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
    "/cases/{case_id}/notes", status_code=201, response_model=m.CaseOut, responses=fails(404)
)
def add_note(session: SessionDep, actor: CaseWorker, case_id: RowId, body: m.TextIn) -> m.CaseOut:
    """An internal note (never public)."""
    with api_errors():
        actions.add_note(session=session, agent=actor.agent, case_id=case_id, text=body.text)
        case = work.get_case(session=session, case_id=case_id)
    session.commit()
    return case_out(session, case)


@router.post("/cases/{case_id}/escalate", response_model=m.CaseOut, responses=fails(404, 409))
def escalate(
    session: SessionDep, actor: CaseWorker, case_id: RowId, body: m.EscalateIn
) -> m.CaseOut:
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


def _close(session: Session, actor: Actor, case_id: int, status: str, reason: str) -> m.CaseOut:
    with api_errors():
        case = actions.close(
            session=session, agent=actor.agent, case_id=case_id, status=status, reason=reason
        )
    session.commit()
    return case_out(session, case)


@router.post("/cases/{case_id}/resolve", response_model=m.CaseOut, responses=fails(404, 409))
def resolve(session: SessionDep, actor: CaseWorker, case_id: RowId, body: m.ReasonIn) -> m.CaseOut:
    """Close the case as resolved, with a reason."""
    return _close(session, actor, case_id, "resolved", body.reason)


@router.post("/cases/{case_id}/dismiss", response_model=m.CaseOut, responses=fails(404, 409))
def dismiss(session: SessionDep, actor: CaseWorker, case_id: RowId, body: m.ReasonIn) -> m.CaseOut:
    """Close the case as needing no answer, with a reason."""
    return _close(session, actor, case_id, "dismissed", body.reason)
