"""The workspace's HTML pages: the live queue, a case, the floor, the audit log, tokens, admin.

Pages read through socialcare.web.queries; every action on them goes through the JSON API
(socialcare.web.api), which calls the one service layer (socialcare.cases.actions)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare.auth.roles import ROLES, Permission
from socialcare.cases import actions
from socialcare.cases.lengths import rule_for
from socialcare.cases.models import OPEN_STATUSES, Case
from socialcare.ids import in_range
from socialcare.people import service as people
from socialcare.people.models import Agent, Team
from socialcare.routing.rules import PRIORITY_ORDER
from socialcare.web import case_query, floor_view, queries
from socialcare.web.audit import audit_rows, parse_when
from socialcare.web.deps import SessionDep, request_now, templates
from socialcare.web.languages import NOT_DETECTED, is_language_code, language_menu
from socialcare.web.params import RowIdQuery
from socialcare.web.security import (
    AuditReader,
    CannedManager,
    FloorReader,
    PeopleManager,
    QueueReader,
    SourcesReader,
)

router = APIRouter()


def blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip() or None


def queue_filter(
    team: str | None = None,
    status: str | None = None,
    platform: str | None = None,
    priority: str | None = None,
    topic: str | None = None,
    language: str | None = None,
) -> queries.QueueFilter:
    """The queue filters from query parameters; 400 for a status, priority or language that
    cannot be."""
    status, priority = blank_to_none(status), blank_to_none(priority)
    language = blank_to_none(language)
    if language is not None and not is_language_code(language.lower()):
        raise HTTPException(400, "language must be an ISO 639-1 code (en, fa, ru, ...) or und")
    if status is not None and status not in OPEN_STATUSES:
        raise HTTPException(400, f"status must be one of {', '.join(OPEN_STATUSES)}")
    if priority is not None and priority not in PRIORITY_ORDER:
        raise HTTPException(400, f"priority must be one of {', '.join(PRIORITY_ORDER)}")
    return queries.QueueFilter(
        team=blank_to_none(team),
        status=status,
        platform=blank_to_none(platform),
        priority=priority,
        topic=blank_to_none(topic),
        language=language.lower() if language else None,
    )


QueueFilterDep = Annotated[queries.QueueFilter, Depends(queue_filter)]


QueuePage = Annotated[
    int,
    Query(ge=1, le=queries.QUEUE_MAX_OFFSET // queries.QUEUE_PAGE, description="page of the queue"),
]


def _queue_context(
    request: Request, session: Session, f: queries.QueueFilter, page: int
) -> dict[str, Any]:
    now = request_now(request)
    offset = (page - 1) * queries.QUEUE_PAGE
    rows, total = queries.queue_rows(session, now=now, where=f, offset=offset)
    seen = actions.viewers(session=session, case_ids=[r.id for r in rows], now=now)
    return {
        "rows": rows,
        "total": total,
        "first": offset + 1,
        "page": page,
        "pages": max(1, -(-total // queries.QUEUE_PAGE)),
        "page_link": lambda n: _page_link(request, n),
        "f": f,
        "viewers": seen,
        "now": now,
    }


def _page_link(request: Request, page: int) -> str:
    """The queue page's URL with its filters, on another page."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
    if page > 1:
        params.append(("page", str(page)))
    return "/" + (f"?{urlencode(params)}" if params else "")


@router.get("/", response_class=HTMLResponse)
def queue_page(
    request: Request,
    session: SessionDep,
    actor: QueueReader,
    f: QueueFilterDep,
    page: QueuePage = 1,
) -> Response:
    """The live queue: open cases, most urgent priority first, then longest waiting."""
    context = _queue_context(request, session, f, page)
    context.update(
        actor=actor,
        teams=queries.team_names(session),
        statuses=OPEN_STATUSES,
        priorities=PRIORITY_ORDER,
        platforms=queries.distinct_values(session, Case.platform),
        topics=queries.distinct_values(session, Case.topic),
        languages=language_menu(session),
        # Kept for older templates and links: the plain team/status values.
        team=f.team,
        status=f.status,
    )
    return templates.TemplateResponse(request, "queue.html", context)


@router.get("/queue/rows", response_class=HTMLResponse)
def queue_rows_fragment(
    request: Request,
    session: SessionDep,
    actor: QueueReader,
    f: QueueFilterDep,
    page: QueuePage = 1,
) -> Response:
    """The queue's rows alone, for the live page to swap in when something changed."""
    context = _queue_context(request, session, f, page)
    context["actor"] = actor
    return templates.TemplateResponse(request, "_queue_rows.html", context)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, session: SessionDep, actor: QueueReader, case_id: int) -> Response:
    """One case: the thread, the customer's earlier cases, the reasons, and the work on it."""
    detail = case_query.case_detail(session, case_id) if in_range(case_id) else None
    if detail is None:
        return templates.TemplateResponse(
            request, "not_found.html", {"what": f"case {case_id}"}, status_code=404
        )
    now = request_now(request)
    case = detail.case
    sla_label, overdue = queries.sla_state(case.sla_due_at, case.first_response_at, now)
    response_seconds = (
        None
        if case.first_response_at is None
        else (case.first_response_at - case.opened_at).total_seconds()
    )
    context = {
        "actor": actor,
        "d": detail,
        "c": case,
        "sla_label": sla_label,
        "overdue": overdue,
        "response_seconds": response_seconds,
        "limit": rule_for(case.platform).limit,
        "canned": actions.canned_replies(session=session, team_id=case.team_id),
        "teams": queries.team_names(session),
        "viewers": actions.viewers(session=session, case_ids=[case_id], now=now).get(case_id, []),
        "notes": [e for e in detail.events if e.kind == "note"],
        "holds": case.status == "claimed" and case.claimed_by == actor.agent.id,
        "show_history": actor.can(Permission.AUDIT_READ),
    }
    return templates.TemplateResponse(request, "case.html", context)


@router.get("/floor", response_class=HTMLResponse)
def floor_page(request: Request, session: SessionDep, actor: FloorReader) -> Response:
    """The lead's view: who holds what and for how long, what is about to breach, who asked."""
    now = request_now(request)
    context = {"actor": actor, "not_detected": NOT_DETECTED, **floor_view.floor(session, now=now)}
    return templates.TemplateResponse(request, "floor.html", context)


@router.get("/sources", response_class=HTMLResponse)
def sources_page(request: Request, session: SessionDep, actor: SourcesReader) -> Response:
    """Ingestion health per polled account and the recent ingestion incidents."""
    settings = request.app.state.settings
    context = {
        "actor": actor,
        **queries.sources(session, now=request_now(request), settings=settings),
    }
    return templates.TemplateResponse(request, "sources.html", context)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    session: SessionDep,
    actor: AuditReader,
    agent: str | None = None,
    since: str | None = None,
    until: str | None = None,
    case_id: RowIdQuery = None,
) -> Response:
    """The audit log, newest first, filtered by actor and time."""
    start, end = parse_when(since), parse_when(until)
    rows = audit_rows(session, agent=blank_to_none(agent), since=start, until=end, case_id=case_id)
    context = {
        "actor": actor,
        "rows": rows,
        "agent": agent or "",
        "since": since or "",
        "until": until or "",
        "case_id": case_id,
    }
    return templates.TemplateResponse(request, "audit.html", context)


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, session: SessionDep, actor: QueueReader) -> Response:
    """One's API tokens: create and revoke; for admins, everyone's too."""
    mine = people.list_tokens(session=session, agent=actor.agent)
    everyone = None
    if actor.can(Permission.PEOPLE_MANAGE):
        everyone = people.list_tokens(session=session, agent=None)
    context = {
        "actor": actor,
        "tokens": [r.token for r in mine],
        "everyone": everyone,
        "now": request_now(request),
    }
    return templates.TemplateResponse(request, "account.html", context)


@router.get("/admin/people", response_class=HTMLResponse)
def people_page(request: Request, session: SessionDep, actor: PeopleManager) -> Response:
    """Agents, leads and admins, and the teams they are in."""
    agents = list(session.scalars(select(Agent).order_by(Agent.handle)))
    teams = list(session.scalars(select(Team).order_by(Team.name)))
    context = {"actor": actor, "agents": agents, "teams": teams, "roles": ROLES}
    return templates.TemplateResponse(request, "people.html", context)


@router.get("/admin/canned", response_class=HTMLResponse)
def canned_page(request: Request, session: SessionDep, actor: CannedManager) -> Response:
    """Canned replies: their text with {handle}, {agent} and {agent_name}."""
    context = {
        "actor": actor,
        "canned": actions.canned_replies(session=session, team_id=None),
        "teams": queries.team_names(session),
    }
    return templates.TemplateResponse(request, "canned.html", context)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
