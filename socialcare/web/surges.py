"""The surge pages and their JSON: the incidents, one incident (its cases, posts, timeline),
and what leads do with it: acknowledge, one answer to everyone (previewed), resolve.

Pages read; every action goes through the JSON API (as the case page's do), which calls the
permission-checked services of socialcare.surge.answer and socialcare.surge.incidents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from socialcare.auth.roles import Permission
from socialcare.errors import NotFound
from socialcare.ids import in_range
from socialcare.surge import answer, answer_text, incidents
from socialcare.surge.models import SURGE_STATUSES
from socialcare.surge.rate_chart import rate_png
from socialcare.web import surge_view as view
from socialcare.web.api import api_errors, enqueue_send, fails, unusable
from socialcare.web.deps import SessionDep, request_now, templates
from socialcare.web.params import RowId
from socialcare.web.security import Actor
from socialcare.web.security import require as needs

router = APIRouter()
SurgeReader = Annotated[Actor, Depends(needs(Permission.SURGE_READ))]
SurgeManager = Annotated[Actor, Depends(needs(Permission.SURGE_MANAGE))]
RATE_CACHE = "private, max-age=30"  # an open surge's chart grows while the page is read


class AnswerIn(BaseModel):
    text: str = Field(max_length=answer_text.TEMPLATE_LIMIT * 2)
    after_send: str = "wait"


class PreviewIn(BaseModel):
    text: str = Field(max_length=answer_text.TEMPLATE_LIMIT * 2)


class PreviewOut(BaseModel):
    previews: list[dict[str, Any]]
    to_answer: int
    answered_before: int
    skipped: int


class AnswerOut(BaseModel):
    surge: view.SurgeOut
    queued: int
    reply_ids: list[int]
    answered_before: int
    skipped: int


class ResolvedOut(BaseModel):
    surge: view.SurgeOut
    closed_cases: list[int]


def _status(status: str | None) -> str | None:
    status = (status or "").strip() or None
    if status is not None and status not in SURGE_STATUSES:
        raise unusable(f"status must be one of {', '.join(SURGE_STATUSES)}")
    return status


def _one(session: Any, surge_id: int, request: Request) -> view.SurgeOut:
    found = view.detail(session, surge_id, now=request_now(request))
    assert found is not None
    return found.surge


@router.get("/surges", response_class=HTMLResponse, include_in_schema=False)
def surges_page(
    request: Request, session: SessionDep, actor: SurgeReader, status: str | None = None
) -> Response:
    """Every surge, the latest first: its size, rate, time to detect and cases answered."""
    status = _status(status)
    rows = view.surges(session, status=status)
    context = {"actor": actor, "rows": rows, "status": status, "statuses": SURGE_STATUSES}
    return templates.TemplateResponse(request, "surges.html", context)


def _plan(
    session: Any, actor: Actor, surge_id: int, text: str | None
) -> tuple[answer.Plan | None, str | None]:
    """The answer's preview for the page, or why it is refused."""
    if not text or not actor.can(Permission.SURGE_MANAGE):
        return None, None
    try:
        return answer.preview(
            session=session, agent=actor.agent, surge_id=surge_id, text=text
        ), None
    except ValueError as exc:
        return None, str(exc)


@router.get("/surges/{surge_id}", response_class=HTMLResponse, include_in_schema=False)
def surge_page(
    request: Request,
    session: SessionDep,
    actor: SurgeReader,
    surge_id: int,
    answer_text: Annotated[str | None, Query(alias="answer", max_length=4000)] = None,
    after_send: str = "wait",
) -> Response:
    """One surge: its timeline, cases and posts; for leads, the one answer, previewed."""
    found = view.detail(session, surge_id, now=request_now(request)) if in_range(surge_id) else None
    if found is None:
        return templates.TemplateResponse(
            request, "not_found.html", {"what": f"surge {surge_id}"}, status_code=404
        )
    plan, refused = _plan(session, actor, surge_id, answer_text)
    context = {
        "actor": actor,
        "d": found,
        "s": found.surge,
        "plan": plan,
        "refused": refused,
        "answer_text": answer_text or (found.answer.text if found.answer else ""),
        "after_send": after_send if after_send in answer.AFTER_SEND else "wait",
        "manage": actor.can(Permission.SURGE_MANAGE),
        "now": request_now(request),
    }
    return templates.TemplateResponse(request, "surge.html", context)


@router.get(
    "/surges/{surge_id}/rate.png",
    response_class=Response,
    # A page's image, as the reports' charts: its errors are pages, not the API's JSON.
    include_in_schema=False,
)
def surge_rate_chart(
    request: Request, session: SessionDep, actor: SurgeReader, surge_id: RowId
) -> Response:
    """The surge's posts per minute (or 5 minutes, ...) since it began, against the usual."""
    series = view.rate(session, surge_id, now=request_now(request))
    if series is None:
        raise HTTPException(404, f"no surge {surge_id}")
    png = rate_png(series)
    return Response(png, media_type="image/png", headers={"Cache-Control": RATE_CACHE})


@router.get("/api/surges", response_model=list[view.SurgeOut], responses=fails(400, 401, 403))
def list_surges(
    session: SessionDep, actor: SurgeReader, status: str | None = None
) -> list[view.SurgeOut]:
    """Every surge, the latest detected first (at most 200)."""
    return view.surges(session, status=_status(status))


@router.get(
    "/api/surges/{surge_id}",
    response_model=view.SurgeDetailOut,
    responses=fails(401, 403, 404),
)
def get_surge(
    request: Request, session: SessionDep, actor: SurgeReader, surge_id: RowId
) -> view.SurgeDetailOut:
    """One surge: figures, cases, a sample of its posts, timeline and the answer's setting."""
    found = view.detail(session, surge_id, now=request_now(request))
    if found is None:
        with api_errors():
            raise NotFound(f"no surge {surge_id}")
    return found


@router.post(
    "/api/surges/{surge_id}/acknowledge",
    response_model=view.SurgeOut,
    responses=fails(401, 403, 404, 409),
)
def acknowledge(
    request: Request, session: SessionDep, actor: SurgeManager, surge_id: RowId
) -> view.SurgeOut:
    """A lead has seen the surge (409 unless it is open)."""
    with api_errors():
        incidents.acknowledge(
            session=session, surge_id=surge_id, actor=actor.label, now=request_now(request)
        )
    session.commit()
    return _one(session, surge_id, request)


@router.post(
    "/api/surges/{surge_id}/preview",
    response_model=PreviewOut,
    responses=fails(400, 401, 403, 404),
)
def preview(
    session: SessionDep, actor: SurgeManager, surge_id: RowId, body: PreviewIn
) -> PreviewOut:
    """The answer as the first customers would read it (422 when it does not fit one)."""
    with api_errors():
        plan = answer.preview(session=session, agent=actor.agent, surge_id=surge_id, text=body.text)
    return PreviewOut(
        previews=[p.__dict__ for p in plan.previews],
        to_answer=plan.to_answer,
        answered_before=plan.answered_before,
        skipped=plan.skipped,
    )


@router.post(
    "/api/surges/{surge_id}/answer",
    response_model=AnswerOut,
    responses=fails(400, 401, 403, 404, 409),
)
def send_answer(
    request: Request, session: SessionDep, actor: SurgeManager, surge_id: RowId, body: AnswerIn
) -> AnswerOut:
    """Queue the answer for every open case not answered yet, each exactly once (sent by the
    workers within the platform's rate limits); after_send: "wait" or "same" for later cases."""
    with api_errors():
        result = answer.send(
            session=session,
            agent=actor.agent,
            surge_id=surge_id,
            text=body.text,
            after_send=body.after_send,
            now=request_now(request),
        )
    session.commit()
    for reply_id in result.reply_ids:
        enqueue_send(request, reply_id)
    return AnswerOut(
        surge=_one(session, surge_id, request),
        queued=len(result.reply_ids),
        reply_ids=result.reply_ids,
        answered_before=result.answered_before,
        skipped=result.skipped,
    )


@router.post(
    "/api/surges/{surge_id}/resolve",
    response_model=ResolvedOut,
    responses=fails(401, 403, 404, 409),
)
def resolve(
    request: Request, session: SessionDep, actor: SurgeManager, surge_id: RowId
) -> ResolvedOut:
    """Close the incident and its open cases (resolved, reason "surge resolved")."""
    with api_errors():
        closed = answer.resolve(
            session=session, agent=actor.agent, surge_id=surge_id, now=request_now(request)
        )
    session.commit()
    return ResolvedOut(surge=_one(session, surge_id, request), closed_cases=[c.id for c in closed])
