"""The API's reply endpoints: queue a reply on a case, retry a failed one, and the canned
replies (list, filled for a case; save by name; delete)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from socialcare.cases import actions
from socialcare.cases.models import Case
from socialcare.web import api_models as m
from socialcare.web.api import api_errors, enqueue_send, fails
from socialcare.web.api_out import reply_out
from socialcare.web.deps import SessionDep
from socialcare.web.params import RowId, RowIdQuery
from socialcare.web.security import CannedManager, CaseWorker, QueueReader

router = APIRouter(prefix="/api", responses=fails(400, 401, 403))


@router.post(
    "/cases/{case_id}/replies",
    response_model=m.ReplyOut,
    status_code=201,
    responses=fails(404, 409),
)
def create_reply(
    request: Request, session: SessionDep, actor: CaseWorker, case_id: RowId, body: m.TextIn
) -> m.ReplyOut:
    """Queue a public reply on a case one holds; a worker sends it, exactly once."""
    with api_errors():
        reply = actions.reply(session=session, agent=actor.agent, case_id=case_id, text=body.text)
    session.commit()
    enqueue_send(request, reply.id)
    case = session.get(Case, case_id)
    assert case is not None
    return reply_out(reply, case, None)


@router.post("/replies/{reply_id}/retry", response_model=m.ReplyOut, responses=fails(404, 409))
def retry_reply(
    request: Request, session: SessionDep, actor: CaseWorker, reply_id: RowId
) -> m.ReplyOut:
    """Send a failed reply again (409 for any other state: a sent or unknown one never is)."""
    with api_errors():
        reply = actions.retry_reply(session=session, agent=actor.agent, reply_id=reply_id)
    session.commit()
    enqueue_send(request, reply.id)
    case = session.get(Case, reply.case_id)
    assert case is not None
    return reply_out(reply, case, None)


@router.get("/canned", response_model=list[m.CannedOut], responses=fails(404))
def canned(
    session: SessionDep, actor: QueueReader, case_id: RowIdQuery = None
) -> list[m.CannedOut]:
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
def save_canned(session: SessionDep, actor: CannedManager, body: m.CannedIn) -> m.CannedOut:
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
