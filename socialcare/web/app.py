"""The web front end: the case queue, a case's thread, latency figures, a JSON queue API, and
the reports (socialcare.web.reports)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Receive, Scope, Send

from socialcare import __version__
from socialcare.auth.roles import Permission
from socialcare.config import Settings, get_settings
from socialcare.db import get_sessionmaker, utcnow
from socialcare.metrics.latency import (
    GROUPINGS,
    UNIT_TITLES,
    UNITS,
    format_csv,
    headers,
    latency_by,
    latency_total,
)
from socialcare.ops import health
from socialcare.ops import metrics as ops_metrics
from socialcare.ops.errors import init_error_reporting
from socialcare.web import (
    api,
    api_cases,
    api_replies,
    errors,
    live,
    login,
    pages,
    people,
    reports,
    security,
    surges,
)
from socialcare.web.deps import HERE, SessionDep, templates
from socialcare.web.security import ReportsReader

log = logging.getLogger(__name__)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


# Every answer but the static files depends on who asks (or holds a CSRF token, as the login
# form does): no cache may keep it, unless a route says otherwise (the report charts are cached
# privately for a few minutes).
NO_STORE = "no-store"
CACHEABLE_PREFIX = "/static/"


class SecurityHeadersMiddleware(security.ResponseHeadersMiddleware):
    """Adds SECURITY_HEADERS to every HTTP response (unless a route already set one), and
    Cache-Control: no-store to every one but the static files' (unless a route set one)."""

    def edit(self, scope: Scope, headers: MutableHeaders) -> None:
        for name, value in SECURITY_HEADERS.items():
            headers.setdefault(name, value)
        if not scope.get("path", "").startswith(CACHEABLE_PREFIX):
            headers.setdefault("Cache-Control", NO_STORE)


class RefuseNulMiddleware:
    """400 for a path or query string holding a NUL character: no handle, team or filter has
    one, and PostgreSQL fails on any query that compares with one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope.get("path", "")
            or b"%00" in scope.get("query_string", b"")
            or b"\x00" in scope.get("query_string", b"")
        ):
            message = "a NUL character in the address"
            await errors.error_response(Request(scope), 400, message)(scope, receive, send)
            return
        await self.app(scope, receive, send)


router = APIRouter()


def _grouping(by: str) -> str:
    if by not in GROUPINGS:
        raise HTTPException(400, f"by must be one of {', '.join(GROUPINGS)}")
    return by


def _unit(unit: str) -> str:
    if unit not in UNITS:
        raise HTTPException(400, f"unit must be one of {', '.join(UNITS)}")
    return unit


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: answers without touching the database."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        503: {"description": "the database or the broker does not answer (ok or failed each)"}
    },
)
def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when the database and the broker answer (within about 1 s), else 503.
    Each is "ok" or "failed"; what failed (an error's text) only for a lead's or an admin's
    token or session, as for /metrics."""
    result = health.readiness(request.app.state.settings)
    ready = all(value == health.OK for value in result.values())
    shown = result if _may_see_details(request, result) else health.public(result)
    return JSONResponse(shown, status_code=200 if ready else 503)


def _may_see_details(request: Request, result: dict[str, str]) -> bool:
    """Whether the caller may read why a check failed (asked only when one did, and only of a
    database that answers)."""
    if result["database"] != health.OK or all(v == health.OK for v in result.values()):
        return False
    try:
        with request.app.state.sessionmaker() as session:
            actor = security.resolve_actor(request, session)
    except Exception:  # readiness must answer whatever the login tables say
        log.warning("readyz: could not check the caller's login", exc_info=True)
        return False
    return actor is not None and actor.can(Permission.REPORTS_READ)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {ops_metrics.CONTENT_TYPE.split(";")[0]: {}}}},
)
def metrics(request: Request, actor: ReportsReader) -> Response:
    """Prometheus metrics, computed from the database at scrape time (a lead's or an admin's
    API token as the bearer credential)."""
    body = ops_metrics.render(request.app.state.metrics_registry)
    return Response(body, media_type=ops_metrics.CONTENT_TYPE)


@router.get("/latency", response_class=HTMLResponse, include_in_schema=False)
def latency_page(
    request: Request,
    session: SessionDep,
    actor: ReportsReader,
    by: str = "brand",
    unit: str = "case",
) -> Response:
    """Latency and SLA attainment per group, with a CSV link: first response per case, or
    (unit=post) each customer post's wait for the brand's next reply."""
    by, unit = _grouping(by), _unit(unit)
    context = {
        "actor": actor,
        "rows": latency_by(session, by=by, unit=unit),
        "total": latency_total(session, unit=unit),
        "by": by,
        "groupings": GROUPINGS,
        "unit": unit,
        "units": UNIT_TITLES,
        "count": headers(unit)[1],
    }
    return templates.TemplateResponse(request, "latency.html", context)


@router.get("/latency.csv", include_in_schema=False)
def latency_csv(
    session: SessionDep, actor: ReportsReader, by: str = "brand", unit: str | None = None
) -> Response:
    """The latency table as CSV. With unit (case or post), a `unit` column names it on every
    line; without, the first-response CSV as it always was."""
    by = _grouping(by)
    if unit is not None:
        unit = _unit(unit)
    body = format_csv(latency_by(session, by=by, unit=unit or "case"), unit=unit)
    name = f"latency-{by}.csv" if unit is None else f"latency-{unit}-{by}.csv"
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


def _default_enqueue(step: str, *args: Any) -> None:
    from workers.tasks import enqueue

    enqueue(step, *args)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] = utcnow,
    enqueue: Callable[..., None] | None = None,
) -> FastAPI:
    """The web app on settings' database; clock gives "now" for SLA countdowns and leases,
    enqueue sends a step to the workers (default: the Celery broker)."""
    settings = settings or get_settings()
    init_error_reporting(settings, component="web")
    app = FastAPI(
        title="socialcare",
        version=__version__,
        description="The care team's workspace: queue, cases, replies, audit, people.",
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,  # errors.http_error redirects, relatively
    )
    app.state.settings = settings
    app.state.sessionmaker = get_sessionmaker(settings)
    app.state.clock = clock
    app.state.enqueue = enqueue or _default_enqueue
    app.state.change_feed = None
    app.state.metrics_registry = ops_metrics.build_registry(
        app.state.sessionmaker, lambda: app.state.clock()
    )
    app.add_middleware(RefuseNulMiddleware)
    app.add_middleware(errors.BodyGuardMiddleware)
    app.add_middleware(security.RenewCookieMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)  # added last, so it wraps every response
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    errors.install(app)
    app.add_exception_handler(reports.BadReportQuery, reports.bad_query_response)
    security.install(app)
    app.include_router(router)
    # The schema describes the JSON API; the HTML pages and the login form are not part of it.
    app.include_router(login.router, include_in_schema=False)
    app.include_router(pages.router, include_in_schema=False)
    app.include_router(api.router)
    app.include_router(api_cases.router)
    app.include_router(api_replies.router)
    app.include_router(people.router)
    app.include_router(live.router)
    app.include_router(surges.router)
    app.include_router(
        reports.router, dependencies=[Depends(security.require(Permission.REPORTS_READ))]
    )
    return app
