"""Who may use what: every route and API endpoint, for anonymous visitors and each role, over a
session cookie (with and without its CSRF token) and over a bearer token, on both databases.

The table is checked against the app's routes both ways, so a new route without an entry (or an
entry for a route that is gone) fails the test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session

from socialcare.cases.models import Case
from socialcare.cases.workspace_models import CannedReply
from socialcare.config import Settings
from socialcare.people.service import create_token
from socialcare.surge.models import Surge
from socialcare.web import create_app
from tests.factories import make_account, make_agent, make_case, make_post, make_reply, make_team
from tests.web.signin import PASSWORD, person, sign_in

ROLES = ("agent", "lead", "admin")
RANK = {"public": -1, "agent": 0, "lead": 1, "admin": 2}
SAFE = {"GET", "HEAD", "OPTIONS"}
LOGIN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Access:
    least: str  # public, or the least role that may use the route
    url: str  # placeholders ({idle}, {reply}, ...) are filled from the world's ids
    body: dict[str, Any] | None = None
    by_token: bool = True  # False: a logged-in session only (a bearer token gets 403)


# Targets are chosen so that a permitted request can only fail for a reason of the case's state
# (404, 409, 422), never a 403 of its own: release, reply and heartbeat use a case nobody holds.
TABLE: dict[tuple[str, str], Access] = {
    ("GET", "/openapi.json"): Access("public", "/openapi.json"),
    ("GET", "/static"): Access("public", "/static/app.js"),
    ("GET", "/healthz"): Access("public", "/healthz"),
    ("GET", "/readyz"): Access("public", "/readyz"),
    ("GET", "/login"): Access("public", "/login?next=/floor"),
    ("POST", "/login"): Access("public", "/login"),
    ("GET", "/metrics"): Access("lead", "/metrics"),
    ("GET", "/latency"): Access("lead", "/latency?by=team"),
    ("GET", "/latency.csv"): Access("lead", "/latency.csv"),
    ("GET", "/reports"): Access("lead", "/reports"),
    ("GET", "/reports.csv"): Access("lead", "/reports.csv"),
    ("GET", "/reports/chart/{name}.png"): Access("lead", "/reports/chart/volume.png"),
    ("GET", "/api/reports"): Access("lead", "/api/reports"),
    ("GET", "/"): Access("agent", "/?priority=P2"),
    ("GET", "/queue/rows"): Access("agent", "/queue/rows"),
    ("GET", "/cases/{case_id}"): Access("agent", "/cases/{idle}"),
    ("GET", "/floor"): Access("lead", "/floor"),
    ("GET", "/sources"): Access("lead", "/sources"),
    ("GET", "/audit"): Access("lead", "/audit"),
    ("GET", "/account"): Access("agent", "/account"),
    ("GET", "/admin/people"): Access("admin", "/admin/people"),
    ("GET", "/admin/canned"): Access("lead", "/admin/canned"),
    ("GET", "/api/me"): Access("agent", "/api/me"),
    ("GET", "/api/queue"): Access("agent", "/api/queue?team=support"),
    ("GET", "/api/stream"): Access("agent", "/api/stream"),
    ("GET", "/api/cases/{case_id}"): Access("agent", "/api/cases/{idle}"),
    ("POST", "/api/cases/next"): Access("agent", "/api/cases/next", {"team": "empty"}),
    ("POST", "/api/cases/{case_id}/claim"): Access("agent", "/api/cases/{claimable}/claim"),
    ("POST", "/api/cases/{case_id}/release"): Access("agent", "/api/cases/{idle}/release"),
    ("POST", "/api/cases/{case_id}/heartbeat"): Access(
        "agent", "/api/cases/{idle}/heartbeat", {"active": True}
    ),
    ("POST", "/api/cases/{case_id}/replies"): Access(
        "agent", "/api/cases/{idle}/replies", {"text": "Sorry!"}
    ),
    ("POST", "/api/replies/{reply_id}/retry"): Access("agent", "/api/replies/{reply}/retry"),
    ("POST", "/api/cases/{case_id}/notes"): Access(
        "agent", "/api/cases/{idle}/notes", {"text": "called them"}
    ),
    ("POST", "/api/cases/{case_id}/escalate"): Access(
        "agent", "/api/cases/{idle}/escalate", {"reason": "billing", "team": "support"}
    ),
    ("POST", "/api/cases/{case_id}/resolve"): Access(
        "agent", "/api/cases/{closable}/resolve", {"reason": "done"}
    ),
    ("POST", "/api/cases/{case_id}/dismiss"): Access(
        "agent", "/api/cases/{closable}/dismiss", {"reason": "spam"}
    ),
    ("GET", "/api/canned"): Access("agent", "/api/canned?case_id={idle}"),
    ("POST", "/api/canned"): Access("lead", "/api/canned", {"name": "hi", "text": "Hi {handle}"}),
    ("DELETE", "/api/canned/{canned_id}"): Access("lead", "/api/canned/{canned}"),
    ("GET", "/api/floor"): Access("lead", "/api/floor"),
    ("GET", "/api/sources"): Access("lead", "/api/sources"),
    ("GET", "/api/audit"): Access("lead", "/api/audit?agent=agent"),
    ("GET", "/api/agents"): Access("admin", "/api/agents"),
    ("POST", "/api/agents"): Access("admin", "/api/agents", {"handle": "newbie", "teams": []}),
    ("POST", "/api/agents/{handle}/disable"): Access("admin", "/api/agents/spare/disable"),
    ("POST", "/api/agents/{handle}/enable"): Access("admin", "/api/agents/spare/enable"),
    ("GET", "/api/teams"): Access("agent", "/api/teams"),
    ("POST", "/api/teams"): Access("admin", "/api/teams", {"name": "returns"}),
    ("PUT", "/api/teams/{name}/members"): Access(
        "admin", "/api/teams/empty/members", {"handles": []}
    ),
    ("GET", "/surges"): Access("agent", "/surges?status=open"),
    ("GET", "/surges/{surge_id}"): Access("agent", "/surges/{surge}?answer=Hi%20@%7Bhandle%7D"),
    ("GET", "/surges/{surge_id}/rate.png"): Access("agent", "/surges/{surge}/rate.png"),
    ("GET", "/api/surges"): Access("agent", "/api/surges"),
    ("GET", "/api/surges/{surge_id}"): Access("agent", "/api/surges/{surge}"),
    ("POST", "/api/surges/{surge_id}/acknowledge"): Access(
        "lead", "/api/surges/{surge}/acknowledge"
    ),
    ("POST", "/api/surges/{surge_id}/preview"): Access(
        "lead", "/api/surges/{surge}/preview", {"text": "Hi @{handle}"}
    ),
    ("POST", "/api/surges/{surge_id}/answer"): Access(
        "lead", "/api/surges/{surge}/answer", {"text": "Hi @{handle}", "after_send": "wait"}
    ),
    ("POST", "/api/surges/{surge_id}/resolve"): Access("lead", "/api/surges/{surge}/resolve"),
    ("GET", "/api/tokens"): Access("agent", "/api/tokens"),
    ("POST", "/api/tokens"): Access("agent", "/api/tokens", {"name": "script"}, by_token=False),
    ("DELETE", "/api/tokens/{token_id}"): Access("agent", "/api/tokens/{spare_token}"),
    # Last: it ends the sessions the rows above ride on.
    ("POST", "/logout"): Access("agent", "/logout"),
}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route and mount the app serves (HEAD beside GET left out)."""
    try:  # routers included by reference: the effective routes, prefixes applied
        from fastapi.routing import iter_route_contexts

        routes: list[Any] = list(iter_route_contexts(app.routes))
    except ImportError:
        routes = list(app.routes)
    found = set()
    for route in routes:
        methods = route.methods or {"GET"}  # a mount answers whatever it serves
        for method in methods - {"HEAD"} or {"HEAD"}:
            found.add((method, route.path))
    return found


def world(session: Session) -> dict[str, Any]:
    """The rows the table's urls name, by placeholder."""
    account = make_account(session)
    support = make_team(session, "support")
    make_team(session, "empty")

    def case(text: str) -> int:
        return make_case(session, account, make_post(session, account, text), team=support).id

    idle, claimable, closable = case("idle"), case("to claim"), case("to close")
    reply = make_reply(session, session.get_one(Case, idle), state="failed", last_error="503")
    canned = CannedReply(name="doomed", text="bye", created_by="tests")
    session.add(canned)
    spare = person(session, "spare", "agent")
    at = datetime(2024, 5, 1, tzinfo=UTC)
    surge = Surge(
        key="access",
        account_id=account.id,
        title="outage",
        topic="other",
        started_at=at,
        detected_at=at,
        last_post_at=at,
    )
    session.add(surge)
    _, token = create_token(session=session, agent=spare, name="spare", actor="tests")
    session.commit()
    return {
        "idle": idle,
        "claimable": claimable,
        "closable": closable,
        "reply": reply.id,
        "canned": canned.id,
        "spare_token": token.id,
        "surge": surge.id,
    }


def looks_anonymous(response: Response) -> bool:
    location = response.headers.get("location", "")
    return response.status_code == 401 or (
        response.status_code == 303 and location.startswith("/login?next=")
    )


def permitted(response: Response) -> bool:
    return (
        not looks_anonymous(response) and response.status_code != 403 and response.status_code < 500
    )


def send(client: TestClient, method: str, url: str, body: Any, **headers: str) -> Response:
    return client.request(method, url, json=body, headers=headers, follow_redirects=False)


def log_in_fresh(app: FastAPI, handle: str) -> Response:
    """Anonymous POST /login with the form's double-submit token, on a client of its own."""
    with TestClient(app) as fresh:
        token = LOGIN_FIELD.search(fresh.get("/login").text)
        assert token is not None
        data = {"handle": handle, "password": PASSWORD, "csrf_token": token.group(1), "next": "/"}
        return fresh.post("/login", data=data, follow_redirects=False)


def test_every_route_admits_exactly_the_roles_it_should_and_checks_csrf(
    settings: Settings, engine: object, session: Session
) -> None:
    (settings.broker_folder / "messages").mkdir(parents=True, exist_ok=True)  # so /readyz is 200
    app = create_app(settings, enqueue=lambda *args: None)
    app.state.closing = True  # the event stream answers its first event and ends
    assert app_routes(app) == set(TABLE), "every route needs an entry in TABLE, and only those"
    ids = world(session)
    anonymous = TestClient(app, raise_server_exceptions=False)
    clients, csrf, bearers = {}, {}, {}
    for role in ROLES:
        clients[role] = TestClient(app, raise_server_exceptions=False)
        csrf[role] = sign_in(clients[role], session, role, role)
        del clients[role].headers["X-CSRF-Token"]  # sent below only where a check wants it
        agent = make_agent(session, f"{role}-bot", role=role)
        secret, _ = create_token(session=session, agent=agent, name="bot", actor="tests")
        session.commit()
        bearers[role] = f"Bearer {secret}"

    kept = clients["agent"].cookies["sc_session"]
    failures: list[str] = []

    def check(ok: bool, what: str, response: Response) -> None:
        if not ok:
            failures.append(f"{what}: {response.status_code} {response.text[:120]!r}")

    for (method, path), rule in TABLE.items():
        url = rule.url.format(**ids)
        name = f"{method} {url}"
        changes = method not in SAFE

        if rule.least == "public":
            if (method, path) == ("POST", "/login"):
                r = anonymous.post("/login", data={"handle": "spare", "password": PASSWORD})
                check(r.status_code == 403, f"{name} without the form's token", r)
                r = log_in_fresh(app, "spare")
                check(r.status_code == 303 and "sc_session" in r.cookies, name, r)
                continue
            r = send(anonymous, method, url, rule.body)
            check(permitted(r), f"{name} anonymous", r)
            continue

        r = send(anonymous, method, url, rule.body)
        if path.startswith("/api/") or path == "/metrics":
            check(r.status_code == 401, f"{name} anonymous wants 401", r)
        else:
            target = quote(url, safe="")
            want = f"/login?next={target}"
            check(r.status_code == 303 and r.headers.get("location") == want, name, r)

        if changes:  # the most powerful role, so only the CSRF check can refuse it
            for label, extra in (("no", {}), ("a wrong", {"X-CSRF-Token": "x" + csrf["admin"]})):
                r = send(clients["admin"], method, url, rule.body, **extra)
                ok = r.status_code == 403 and "CSRF" in r.text
                check(ok, f"{name} on a session with {label} CSRF token", r)

        for role in ROLES:
            allowed = RANK[role] >= RANK[rule.least]
            for via in ("session", "token"):
                if via == "session":
                    extra = {"X-CSRF-Token": csrf[role]} if changes else {}
                    if path == "/logout":  # the page's form carries the token as a field
                        r = clients[role].post(
                            url, data={"csrf_token": csrf[role]}, follow_redirects=False
                        )
                    else:
                        r = send(clients[role], method, url, rule.body, **extra)
                else:  # no CSRF token: browsers never send a bearer token on their own
                    r = send(anonymous, method, url, rule.body, Authorization=bearers[role])
                what = f"{name} as {role} via {via}"
                if allowed and (via == "session" or rule.by_token):
                    check(permitted(r), f"{what} should be allowed", r)
                else:
                    check(r.status_code == 403, f"{what} should be 403", r)

    assert not failures, "\n".join(failures)
    # Logging out above ended the session itself, not just the browser's copy of the cookie.
    assert anonymous.get("/api/me", cookies={"sc_session": kept}).status_code == 401
