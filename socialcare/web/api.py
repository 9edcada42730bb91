"""The JSON API: every workspace action, for the pages' scripts and for integrations (bearer
tokens). Described by /openapi.json; errors are {"detail": "..."} with 400, 401, 403, 404 or
409, and 422 for input that cannot be used, as {"detail": [{"loc", "msg", "type"}]} whether the
request's shape or a service refused it.

This module holds what every API module shares (the error answers, api_errors, enqueue_send)
and the endpoints about the caller and the floor: /me, /floor, /sources and /audit. The queue
and cases are in api_cases, replies and canned replies in api_replies, people and teams in
people, surges in surges."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from socialcare.auth.roles import LEAST_ROLE
from socialcare.errors import Conflict, NotFound
from socialcare.web import api_models as m
from socialcare.web import floor_view, queries
from socialcare.web.api_out import event_out
from socialcare.web.audit import audit_rows, parse_when
from socialcare.web.deps import SessionDep, request_now
from socialcare.web.params import RowIdQuery
from socialcare.web.security import AuditReader, FloorReader, QueueReader, SourcesReader

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


@router.get("/floor", response_model=m.FloorOut)
def floor(request: Request, session: SessionDep, actor: FloorReader) -> m.FloorOut:
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
def sources(request: Request, session: SessionDep, actor: SourcesReader) -> m.SourcesOut:
    """Ingestion health per polled account and the recent ingestion incidents."""
    data = queries.sources(session, now=request_now(request), settings=request.app.state.settings)
    return m.SourcesOut.model_validate(data)


@router.get("/audit", response_model=list[m.EventOut])
def audit(
    session: SessionDep,
    actor: AuditReader,
    agent: str | None = None,
    since: str | None = None,
    until: str | None = None,
    case_id: RowIdQuery = None,
) -> list[m.EventOut]:
    """Events newest first (at most 500), by actor, case and time."""
    rows = audit_rows(
        session,
        agent=agent or None,
        since=parse_when(since),
        until=parse_when(until),
        case_id=case_id,
    )
    return [event_out(e) for e in rows]
