"""Logging in through the real form: lockout, no handle enumeration, session expiry and logout,
cookie flags, where `next` may lead, and disabled people."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from socialcare.cases.models import Event
from socialcare.config import Settings
from socialcare.db import utcnow
from socialcare.people.logins import purge_expired_sessions
from socialcare.people.models import WebSession
from socialcare.people.service import create_token
from socialcare.web import create_app
from tests.web.signin import PASSWORD, bearer, csrf_of, person

FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
ALERT = re.compile(r'<p class="error" role="alert">([^<]*)</p>')
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


class Clock:
    """The app's "now", moved by the test."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_app(settings: Settings, engine: object, clock: Clock) -> Callable[..., FastAPI]:
    def make(**overrides: object) -> FastAPI:
        return create_app(settings.model_copy(update=overrides), clock=clock)

    return make


@pytest.fixture
def client(make_app: Callable[..., FastAPI]) -> Iterator[TestClient]:
    with TestClient(make_app()) as c:
        yield c


def attempt(
    client: TestClient, handle: str, password: str = PASSWORD, next_url: str = "/", **headers: str
) -> Response:
    """Fill in and send the login form, as a browser would."""
    field = FIELD.search(client.get("/login", headers=headers).text)
    assert field is not None
    data = {"handle": handle, "password": password, "csrf_token": field.group(1), "next": next_url}
    return client.post("/login", data=data, headers=headers, follow_redirects=False)


def alert(response: Response) -> str:
    found = ALERT.search(response.text)
    return found.group(1) if found else ""


def test_the_right_password_is_refused_while_locked_and_accepted_after_the_lockout(
    make_app: Callable[..., FastAPI], session: Session, clock: Clock
) -> None:
    person(session, "alice")
    app = make_app(login_max_failures=3, login_lockout_seconds=600)
    with TestClient(app) as client:
        for _ in range(2):
            assert attempt(client, "alice", "wrong password!").status_code == 401
        assert attempt(client, "alice").status_code == 303  # a success resets the count
        client.cookies.clear()
        for _ in range(3):
            refused = attempt(client, "alice", "wrong password!")
            assert refused.status_code == 401 and alert(refused) == "Wrong handle or password."
        locked = attempt(client, "alice")
        assert locked.status_code == 401 and "sc_session" not in locked.cookies
        assert alert(locked) == "Wrong handle or password."  # locked, but not said so
        assert "locked for 10 minutes" in " ".join(locked.text.split())
        clock.advance(599)
        assert attempt(client, "alice").status_code == 401
        clock.advance(2)
        accepted = attempt(client, "alice")
        assert accepted.status_code == 303 and "sc_session" in accepted.cookies
        # An unknown handle refused as often gets the very same page as a locked one.
        for _ in range(4):
            unknown = attempt(client, "nobody-here", "wrong password!")
        assert FIELD.sub("", unknown.text) == FIELD.sub("", locked.text)
    session.expire_all()
    kinds = session.scalars(select(Event.kind).where(Event.kind.like("login%"))).all()
    assert kinds.count("login_locked") == 1 and kinds.count("login_refused_locked") == 2


@SQLITE_ONLY
def test_an_unknown_handle_a_wrong_password_and_a_disabled_account_get_the_same_answer(
    client: TestClient, session: Session
) -> None:
    person(session, "alice")
    person(session, "gone", active=False)
    answers = [
        attempt(client, "nobody-here"),
        attempt(client, "alice", "not her password"),
        attempt(client, "gone"),
    ]
    assert {r.status_code for r in answers} == {401}
    assert {alert(r) for r in answers} == {"Wrong handle or password."}
    pages = {FIELD.sub("", r.text) for r in answers}  # the form's token differs, nothing else
    assert len(pages) == 1


def test_a_session_slides_while_used_and_is_worthless_once_it_expires(
    make_app: Callable[..., FastAPI], session: Session, clock: Clock
) -> None:
    person(session, "alice")
    with TestClient(make_app(session_ttl_seconds=3600)) as client:
        assert attempt(client, "alice").status_code == 303
        clock.advance(1800)
        renewed = client.get("/api/me")  # renews the session for an hour, and its cookie
        assert renewed.status_code == 200
        assert "Max-Age=3600" in renewed.headers["set-cookie"]
        assert client.get("/api/me").headers.get("set-cookie") is None  # not on every request
        clock.advance(3000)  # 80 minutes after logging in, 50 after last use
        assert client.get("/api/me").status_code == 200
        clock.advance(3601)
        assert client.get("/api/me").status_code == 401
        page = client.get("/floor", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Ffloor"
    assert purge_expired_sessions(session=session, now=clock.now) == 1
    assert session.scalar(select(func.count()).select_from(WebSession)) == 0


def test_logging_out_makes_the_cookie_worthless_even_if_kept(
    client: TestClient, session: Session
) -> None:
    person(session, "alice")
    attempt(client, "alice")
    kept = client.cookies["sc_session"]
    token = csrf_of(client)
    assert client.post("/logout", follow_redirects=False).status_code == 403  # no CSRF token
    assert client.get("/api/me").status_code == 200
    out = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert 'sc_session=""' in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    client.cookies.clear()
    assert client.get("/api/me", cookies={"sc_session": kept}).status_code == 401
    assert session.scalar(select(func.count()).select_from(WebSession)) == 0


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("setting", "proto", "secure"),
    [
        ("auto", None, False),
        ("auto", "https", True),
        ("auto", "http", False),
        ("true", None, True),
        ("false", "https", False),
    ],
)
def test_the_session_cookie_is_httponly_samesite_lax_and_secure_only_over_https(
    make_app: Callable[..., FastAPI],
    session: Session,
    setting: str,
    proto: str | None,
    secure: bool,
) -> None:
    person(session, "alice")
    headers = {"X-Forwarded-Proto": proto} if proto else {}
    with TestClient(make_app(session_cookie_secure=setting)) as client:
        field = FIELD.search(client.get("/login", headers=headers).text)
        assert field is not None
        # Sent by hand: over https the browser sends back the Secure login cookie, which the
        # client here, talking plain http to the app as a proxy does, would keep to itself.
        headers["Cookie"] = f"sc_login_csrf={field.group(1)}"
        form = {"handle": "alice", "password": PASSWORD, "csrf_token": field.group(1)}
        response = client.post("/login", data=form, headers=headers, follow_redirects=False)
    login_cookie = response.request.headers["cookie"]
    assert login_cookie.startswith("sc_login_csrf=")
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("sc_session="))
    flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
    assert "httponly" in flags and flags["samesite"].lower() == "samesite=lax"
    assert flags["path"] == "Path=/"
    assert ("secure" in flags) is secure


def lands_on_this_site(location: str) -> bool:
    # Browsers drop tabs and newlines from a URL and read a backslash as a slash.
    seen = re.sub(r"[\t\n\r]", "", location).replace("\\", "/")
    return urlsplit(seen).netloc == "" and urlsplit(seen).scheme == "" and seen.startswith("/")


OFF_SITE = [
    "//evil.example/phish",
    "https://evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    " //evil.example",
]


@SQLITE_ONLY
def test_login_never_sends_the_browser_off_site(client: TestClient, session: Session) -> None:
    person(session, "alice")
    for next_url in OFF_SITE:
        form = client.get("/login", params={"next": next_url}).text
        assert 'name="next" value="/"' in form, next_url
        response = attempt(client, "alice", next_url=next_url)
        assert response.status_code == 303, next_url
        assert lands_on_this_site(response.headers["location"]), next_url


@SQLITE_ONLY
def test_login_goes_on_to_the_page_asked_for(client: TestClient, session: Session) -> None:
    person(session, "alice")
    response = attempt(client, "alice", next_url="/cases/7?tab=thread")
    assert response.headers["location"] == "/cases/7?tab=thread"


def test_a_disabled_agent_loses_every_session_and_token(
    client: TestClient, make_app: Callable[..., FastAPI], session: Session
) -> None:
    alice = person(session, "alice")
    secret, _ = create_token(session=session, agent=alice, name="script", actor="tests")
    session.commit()
    admin = bearer(session, "root", "admin")
    with TestClient(client.app) as other:
        attempt(client, "alice")
        attempt(other, "alice")
        token = {"Authorization": f"Bearer {secret}"}
        assert client.get("/api/me", headers=token).status_code == 200
        assert client.post("/api/agents/alice/disable", headers=admin).status_code == 200
        for c in (client, other):
            assert c.get("/api/me").status_code == 401
        assert other.get("/api/me", headers=token).status_code == 401
        assert attempt(other, "alice").status_code == 401  # and cannot log back in
        assert client.post("/api/agents/alice/enable", headers=admin).status_code == 200
        assert client.get("/api/me").status_code == 401  # the old sessions stay ended
        assert other.get("/api/me", headers=token).status_code == 401  # the token stays revoked
        assert attempt(other, "alice").status_code == 303
        assert other.get("/api/me").json()["handle"] == "alice"


def test_the_api_finds_a_person_by_handle_as_the_login_does(
    client: TestClient, session: Session
) -> None:
    person(session, "alice")
    session.commit()
    admin = bearer(session, "root", "admin")
    assert client.post("/api/agents/%20Alice%20/disable", headers=admin).status_code == 200
    assert attempt(client, "alice").status_code == 401
    assert client.post("/api/agents/ALICE/enable", headers=admin).status_code == 200
    assert attempt(client, "alice").status_code == 303
    assert client.post("/api/agents/nobody/disable", headers=admin).status_code == 404
