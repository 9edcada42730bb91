"""Who is asking: login sessions (cookie) and API tokens (bearer), roles, and CSRF checks.

Pages and API routes declare what they need with `Depends(require(Permission.X))`. An anonymous
request gets a redirect to /login (pages) or 401 (the API). A state-changing request that rides
on a session cookie must carry the session's CSRF token (header X-CSRF-Token, or the form field
csrf_token); bearer tokens are not sent by browsers on their own, so they need none.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from socialcare.auth.roles import Permission, allows
from socialcare.config import Settings
from socialcare.errors import Forbidden
from socialcare.people.logins import LoginPolicy, session_agent
from socialcare.people.models import Agent, WebSession
from socialcare.people.service import token_agent
from socialcare.web import errors
from socialcare.web.deps import SessionDep, request_now

SESSION_COOKIE = "sc_session"
LOGIN_CSRF_COOKIE = "sc_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class NotAuthenticated(Exception):
    """No valid session or token."""


class CsrfRejected(Exception):
    """A state-changing request on a session cookie without the session's CSRF token."""


@dataclass
class Actor:
    """The person behind a request, and how they proved it."""

    agent: Agent
    via: str  # "session" or "token"
    web_session: WebSession | None = None

    @property
    def label(self) -> str:
        return f"agent:{self.agent.handle}"

    @property
    def csrf_token(self) -> str:
        return self.web_session.csrf_token if self.web_session else ""

    def can(self, permission: Permission) -> bool:
        return allows(self.agent.role, permission)


def login_policy(settings: Settings) -> LoginPolicy:
    return LoginPolicy(
        max_failures=settings.login_max_failures,
        lockout=timedelta(seconds=settings.login_lockout_seconds),
        session_ttl=timedelta(seconds=settings.session_ttl_seconds),
    )


def cookie_secure(request: Request, settings: Settings) -> bool:
    """Whether cookies get the Secure flag: always, never, or when the request came over HTTPS
    (directly or through a proxy that says so, as Heroku's router does)."""
    if settings.session_cookie_secure != "auto":
        return settings.session_cookie_secure == "true"
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def session_cookie(secret: str, ttl_seconds: float, secure: bool) -> str:
    """The Set-Cookie value of a session: HttpOnly, SameSite=Lax, Secure where asked."""
    carrier = Response()
    carrier.set_cookie(
        SESSION_COOKIE,
        secret,
        httponly=True,
        samesite="lax",
        secure=secure,
        max_age=int(ttl_seconds),
        path="/",
    )
    return carrier.headers["set-cookie"]


class ResponseHeadersMiddleware:
    """A pure ASGI middleware that edits the headers of every HTTP response as it starts
    (subclasses say how, in edit); it leaves the body alone, so streams pass through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def edit(self, scope: Scope, headers: MutableHeaders) -> None:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_edited(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.edit(scope, MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, send_edited)


class RenewCookieMiddleware(ResponseHeadersMiddleware):
    """Sends a renewed session cookie (a fresh Max-Age) on the response of a request whose
    server-side session slid, unless the response sets the session cookie itself (logout)."""

    def edit(self, scope: Scope, headers: MutableHeaders) -> None:
        renewed = (scope.get("state") or {}).get("renewed_cookie")
        prefix = f"{SESSION_COOKIE}="
        if renewed and not any(v.startswith(prefix) for v in headers.getlist("set-cookie")):
            headers.append("set-cookie", renewed)


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, credential = value.partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        return credential.strip()
    return None


def resolve_actor(request: Request, session: Session) -> Actor | None:
    """The actor of this request (cached on it), from a bearer token or the session cookie."""
    if hasattr(request.state, "actor"):
        cached: Actor | None = request.state.actor
        return cached
    settings: Settings = request.app.state.settings
    now = request_now(request)
    actor: Actor | None = None
    token = _bearer(request)
    if token is not None:
        agent = token_agent(session=session, secret=token, now=now)
        actor = Actor(agent, "token") if agent is not None else None
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            found = session_agent(
                session=session, secret=cookie, now=now, policy=login_policy(settings)
            )
            if found is not None:
                actor = Actor(found[0], "session", found[1])
                if session.is_modified(found[1]):  # the session slid: so does the cookie
                    request.state.renewed_cookie = session_cookie(
                        cookie, settings.session_ttl_seconds, cookie_secure(request, settings)
                    )
    # Commit now (last-seen times), also to end the transaction: on SQLite every transaction
    # takes the write lock, which a request must not hold while it renders.
    session.commit()
    request.state.actor = actor
    return actor


async def csrf_candidate(request: Request) -> str | None:
    """The CSRF token a request carries, from its header or its form body."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.method in SAFE_METHODS:
        return None
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(FORM_TYPES):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


CsrfDep = Annotated[str | None, Depends(csrf_candidate)]


def require(permission: Permission) -> Callable[..., Actor]:
    """A dependency: the request's actor, who must hold permission."""

    def dependency(request: Request, session: SessionDep, csrf: CsrfDep) -> Actor:
        actor = resolve_actor(request, session)
        if actor is None:
            raise NotAuthenticated()
        if request.method not in SAFE_METHODS and actor.via == "session":
            expected = actor.csrf_token
            if not csrf or not hmac.compare_digest(csrf.encode(), expected.encode()):
                raise CsrfRejected()
        if not actor.can(permission):
            raise Forbidden(f"your role ({actor.agent.role}) may not do this")
        return actor

    return dependency


def wants_json(request: Request) -> bool:
    return errors.wants_json(request.url.path)


def _error(request: Request, status: int, message: str, **headers: str) -> Response:
    return errors.error_response(request, status, message, headers or None)


def not_authenticated(request: Request, _exc: Exception) -> Response:
    if wants_json(request):
        return _error(request, 401, "log in or send an API token", **{"WWW-Authenticate": "Bearer"})
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def csrf_rejected(request: Request, _exc: Exception) -> Response:
    return _error(request, 403, "missing or wrong CSRF token: reload the page and try again")


def forbidden(request: Request, exc: Exception) -> Response:
    return _error(request, 403, str(exc) or "not allowed")


def install(app: FastAPI) -> None:
    """Register the handlers that turn these exceptions into responses."""
    app.add_exception_handler(NotAuthenticated, not_authenticated)
    app.add_exception_handler(CsrfRejected, csrf_rejected)
    app.add_exception_handler(Forbidden, forbidden)


QueueReader = Annotated[Actor, Depends(require(Permission.QUEUE_READ))]
CaseWorker = Annotated[Actor, Depends(require(Permission.CASE_WORK))]
FloorReader = Annotated[Actor, Depends(require(Permission.FLOOR_READ))]
AuditReader = Annotated[Actor, Depends(require(Permission.AUDIT_READ))]
ReportsReader = Annotated[Actor, Depends(require(Permission.REPORTS_READ))]
SourcesReader = Annotated[Actor, Depends(require(Permission.SOURCES_READ))]
CannedManager = Annotated[Actor, Depends(require(Permission.CANNED_MANAGE))]
PeopleManager = Annotated[Actor, Depends(require(Permission.PEOPLE_MANAGE))]
