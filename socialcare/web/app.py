"""The web front end: the case queue, a case's thread, latency figures, a JSON queue API, and
the reports (socialcare.web.reports)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from socialcare.cases.models import OPEN_STATUSES
from socialcare.config import Settings, get_settings
from socialcare.db import get_sessionmaker, utcnow
from socialcare.metrics.latency import GROUPINGS, format_csv, latency_by, latency_total
from socialcare.ops import health
from socialcare.ops import metrics as ops_metrics
from socialcare.ops.errors import init_error_reporting
from socialcare.web import queries, reports
from socialcare.web.deps import HERE, SessionDep, request_now, templates

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class SecurityHeadersMiddleware:
    """Adds SECURITY_HEADERS to every HTTP response (unless a route already set one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


router = APIRouter()


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip() or None


def _queue_args(team: str | None, status: str | None) -> tuple[str | None, str | None]:
    team, status = _blank_to_none(team), _blank_to_none(status)
    if status is not None and status not in OPEN_STATUSES:
        raise HTTPException(400, f"status must be one of {', '.join(OPEN_STATUSES)}")
    return team, status


def _grouping(by: str) -> str:
    if by not in GROUPINGS:
        raise HTTPException(400, f"by must be one of {', '.join(GROUPINGS)}")
    return by


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: answers without touching the database."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when the database and the broker answer (within about 1 s), else 503."""
    result = health.readiness(request.app.state.settings)
    ready = all(value == health.OK for value in result.values())
    return JSONResponse(result, status_code=200 if ready else 503)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus metrics, computed from the database at scrape time."""
    body = ops_metrics.render(request.app.state.metrics_registry)
    return Response(body, media_type=ops_metrics.CONTENT_TYPE)


@router.get("/", response_class=HTMLResponse)
def queue_page(
    request: Request, session: SessionDep, team: str | None = None, status: str | None = None
) -> Response:
    """The queue: open cases, most urgent priority first, then oldest first."""
    team, status = _queue_args(team, status)
    now = request_now(request)
    rows, total = queries.queue_rows(session, now=now, team=team, status=status)
    context = {
        "rows": rows,
        "total": total,
        "limit": queries.QUEUE_LIMIT,
        "teams": queries.team_names(session),
        "statuses": OPEN_STATUSES,
        "team": team,
        "status": status,
        "now": now,
    }
    return templates.TemplateResponse(request, "queue.html", context)


@router.get("/api/queue")
def queue_api(
    request: Request, session: SessionDep, team: str | None = None, status: str | None = None
) -> JSONResponse:
    """The queue page's rows as JSON; X-Total-Count has the number of matching cases."""
    team, status = _queue_args(team, status)
    rows, total = queries.queue_rows(session, now=request_now(request), team=team, status=status)
    return JSONResponse([row.to_json() for row in rows], headers={"X-Total-Count": str(total)})


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, session: SessionDep, case_id: int) -> Response:
    """One case: its thread in time order, score reasons, replies and audit events."""
    detail = queries.case_detail(session, case_id)
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
        "d": detail,
        "c": case,
        "sla_label": sla_label,
        "overdue": overdue,
        "response_seconds": response_seconds,
    }
    return templates.TemplateResponse(request, "case.html", context)


@router.get("/latency", response_class=HTMLResponse)
def latency_page(request: Request, session: SessionDep, by: str = "brand") -> Response:
    """First-response latency and SLA attainment per group, with a CSV link."""
    by = _grouping(by)
    context = {
        "rows": latency_by(session, by=by),
        "total": latency_total(session),
        "by": by,
        "groupings": GROUPINGS,
    }
    return templates.TemplateResponse(request, "latency.html", context)


@router.get("/latency.csv")
def latency_csv(session: SessionDep, by: str = "brand") -> Response:
    """The latency table as CSV."""
    body = format_csv(latency_by(session, by=_grouping(by)))
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="latency-{by}.csv"'},
    )


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], datetime] = utcnow
) -> FastAPI:
    """The web app on settings' database; clock gives "now" for SLA countdowns."""
    settings = settings or get_settings()
    init_error_reporting(settings, component="web")
    app = FastAPI(title="socialcare", docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.sessionmaker = get_sessionmaker(settings)
    app.state.clock = clock
    app.state.metrics_registry = ops_metrics.build_registry(
        app.state.sessionmaker, lambda: app.state.clock()
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(reports.BadReportQuery, reports.bad_query_response)
    app.include_router(router)
    app.include_router(reports.router)
    return app
