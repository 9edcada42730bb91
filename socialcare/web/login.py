"""Log in and out. The login form is guarded by a double-submit cookie (there is no session yet
to hold a CSRF token); the session cookie is HttpOnly, SameSite=Lax, and Secure over HTTPS."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from socialcare.auth.passwords import new_secret
from socialcare.auth.roles import Permission
from socialcare.errors import LoginFailed
from socialcare.people.logins import authenticate, end_session, start_session
from socialcare.web.deps import SessionDep, request_now, templates
from socialcare.web.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Actor,
    cookie_secure,
    login_policy,
    require,
    session_cookie,
)

router = APIRouter()


def safe_next(value: str | None) -> str:
    """Where to go after login: a path on this site only (never //host or a scheme).

    Whitespace and control characters are refused too: browsers drop tabs and newlines from a
    URL, so "/<tab>/host" would become "//host"."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        return "/"
    return value


def _form(request: Request, *, next_url: str, error: str | None, status: int = 200) -> Response:
    token = new_secret()
    response = templates.TemplateResponse(
        request,
        "login.html",
        {
            "login_csrf": token,
            "next": next_url,
            "error": error,
            "policy": login_policy(request.app.state.settings),
        },
        status_code=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request, request.app.state.settings),
        max_age=3600,
        path="/login",
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    """The login form."""
    return _form(request, next_url=safe_next(next), error=None)


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    handle: str = Form(""),
    password: str = Form(""),
    csrf_token: str = Form(""),
    next: str = Form("/"),
) -> Response:
    """Check the handle and password; on success start a session and go on to next."""
    next_url = safe_next(next)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf_token.encode()):
        return _form(request, next_url=next_url, error="The form expired: try again.", status=403)
    settings = request.app.state.settings
    now = request_now(request)
    policy = login_policy(settings)
    try:
        agent = authenticate(
            session=session, handle=handle, password=password, now=now, policy=policy
        )
    except LoginFailed as exc:
        session.commit()  # the failure count and any lockout must stick
        return _form(request, next_url=next_url, error=str(exc).capitalize() + ".", status=401)
    secret, _ = start_session(session=session, agent=agent, now=now, policy=policy)
    session.commit()
    response = RedirectResponse(next_url, status_code=303)
    response.headers.append(
        "set-cookie",
        session_cookie(secret, settings.session_ttl_seconds, cookie_secure(request, settings)),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(
    request: Request,
    session: SessionDep,
    actor: Actor = Depends(require(Permission.QUEUE_READ)),
) -> Response:
    """End this session (the cookie is worthless afterwards, even if kept)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        end_session(session=session, secret=cookie)
        session.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
