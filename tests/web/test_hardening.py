"""The web app under hostile input, on both databases: ids past what a key can hold, lone
surrogates, huge bodies, a forged Host header, caching of logged-in answers, error pages for
pages and JSON for the API, and reply text with control characters."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from socialcare.cases.models import Case
from socialcare.config import Settings
from socialcare.ids import BIGINT_MAX, INTEGER_MAX
from socialcare.web import create_app
from socialcare.web.errors import MAX_BODY_BYTES
from tests.factories import make_account, make_case, make_post, make_team
from tests.web.signin import bearer, person, sign_in

JSON = {"content-type": "application/json"}


@dataclass
class Site:
    app: FastAPI
    page: TestClient  # a lead logged in through the form (a session cookie)
    api: TestClient  # anonymous unless a request sends the headers below
    admin: dict[str, str]  # an admin's bearer token
    agent: dict[str, str]  # an agent's bearer token
    case: Case  # claimed by the agent "ann"


@pytest.fixture
def site(settings: Settings, engine: object, session: Session) -> Iterator[Site]:
    account = make_account(session, "acme")
    team = make_team(session, "support")
    ann = person(session, "ann", "agent")
    ann.teams = [team]
    root = make_post(session, account, "my parcel is lost")
    case = make_case(session, account, root, team=team, status="claimed", claimed_by=ann.id)
    session.commit()
    admin = bearer(session, "root", "admin")
    from socialcare.people.service import create_token

    secret, _ = create_token(session=session, agent=ann, name="ann", actor="tests")
    session.commit()
    app = create_app(settings, enqueue=lambda *args: None)
    with (
        TestClient(app, raise_server_exceptions=False) as page,
        TestClient(app, raise_server_exceptions=False) as api,
    ):
        sign_in(page, session, "lead", "lead")
        yield Site(app, page, api, admin, {"Authorization": f"Bearer {secret}"}, case)


def is_html(response: object) -> bool:
    content_type: str = response.headers.get("content-type", "")  # type: ignore[attr-defined]
    return content_type.startswith("text/html")


# 1. Ids no key can hold are "no such row", never a database error.


@pytest.mark.parametrize("case_id", [0, -1, INTEGER_MAX + 1, BIGINT_MAX, BIGINT_MAX + 1, 10**40])
def test_a_case_page_for_an_id_no_case_can_have_is_404(site: Site, case_id: int) -> None:
    response = site.page.get(f"/cases/{case_id}")
    assert response.status_code == 404
    assert is_html(response) and f"There is no case {case_id}" in response.text


@pytest.mark.parametrize("case_id", [INTEGER_MAX + 1, BIGINT_MAX + 1, 10**40])
def test_the_audit_filters_refuse_a_case_id_no_case_can_have(site: Site, case_id: int) -> None:
    page = site.page.get(f"/audit?case_id={case_id}")
    assert page.status_code == 422 and is_html(page)
    assert "case_id" in page.text
    api = site.api.get(f"/api/audit?case_id={case_id}", headers=site.admin)
    assert api.status_code == 422 and api.json()["detail"][0]["loc"] == ["query", "case_id"]
    for path in (f"/api/cases/{case_id}", f"/api/cases/{case_id}/claim"):
        method = "GET" if path.count("/") == 3 else "POST"
        answer = site.api.request(method, path, headers=site.admin)
        assert answer.status_code == 422, path


def test_the_largest_id_a_case_can_have_is_an_ordinary_404(site: Site) -> None:
    assert site.api.get(f"/api/cases/{INTEGER_MAX}", headers=site.admin).status_code == 404
    assert site.page.get(f"/audit?case_id={INTEGER_MAX}").status_code == 200


# 2. A lone surrogate in a JSON body cannot be stored or echoed: a clear 422.


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/canned", b'{"name": "hello", "text": "hi \\ud800 there"}'),
        ("/api/canned", b'{"name": "\\udfff", "text": "hello"}'),
        ("/api/teams", b'{"name": "x\\ud83d"}'),
        ("/api/agents", b'{"handle": "zed", "teams": ["\\udc00"]}'),
        ("/api/cases/next", b'{"team": "\\ud800\\ud800"}'),
        ("/api/teams", b'{"name": "ok", "\\ud800": 1}'),
    ],
)
def test_a_lone_surrogate_in_a_json_body_is_a_clear_422(site: Site, path: str, body: bytes) -> None:
    response = site.api.post(path, content=body, headers={**site.admin, **JSON})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body"] and "surrogate" in error["msg"]


def test_a_body_nested_too_deep_to_parse_is_a_400_surrogate_or_not(site: Site) -> None:
    for inner in (b'"\\ud800"', b""):
        body = b"[" * 100_000 + inner + b"]" * 100_000
        response = site.api.post("/api/teams", content=body, headers={**site.admin, **JSON})
        assert response.status_code == 400
        assert response.json() == {"detail": "There was an error parsing the body"}


def test_a_surrogate_pair_is_an_ordinary_character(site: Site) -> None:
    body = b'{"name": "party \\ud83c\\udf89"}'  # U+1F389 written as its UTF-16 pair
    response = site.api.post("/api/teams", content=body, headers={**site.admin, **JSON})
    assert response.status_code == 201 and response.json()["name"] == "party \U0001f389"
    escaped = b'{"name": "a \\\\ud800 b"}'  # an escaped backslash: the text "\ud800"
    response = site.api.post("/api/teams", content=escaped, headers={**site.admin, **JSON})
    assert response.status_code == 201 and response.json()["name"] == "a \\ud800 b"


def test_a_body_that_is_not_utf8_is_refused_cleanly(site: Site) -> None:
    encoded = b'{"handle": "zed", "display_name": "\xed\xa0\x80 x"}'  # U+D800 as UTF-8 bytes
    response = site.api.post("/api/agents", content=encoded, headers={**site.admin, **JSON})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "display_name"] and error["type"] == "string_unicode"
    assert error["input"] == "\\ud800 x"
    garbage = b'{"handle": "zed", "display_name": "\xff"}'
    response = site.api.post("/api/agents", content=garbage, headers={**site.admin, **JSON})
    assert response.status_code == 400 and "detail" in response.json()


# 3. Pages answer errors with a page; the API with JSON.


def test_page_errors_are_pages_and_api_errors_are_json(site: Site) -> None:
    agent = TestClient(site.app, raise_server_exceptions=False)
    agent.headers.update(site.agent)
    for client, path, status in (
        (site.page, "/no/such/page", 404),
        (site.page, "/cases/not-a-number", 422),
        (site.page, "/?status=bogus", 400),
        (agent, "/admin/people", 403),
    ):
        response = client.get(path)
        assert response.status_code == status, path
        assert is_html(response), path
        assert "<title>" in response.text and '{"detail"' not in response.text
    for path, status in (("/api/no/such", 404), ("/api/cases/not-a-number", 422)):
        response = site.api.get(path, headers=site.admin)
        assert response.status_code == status
        assert response.headers["content-type"] == "application/json"
        assert "detail" in response.json()
    refused = site.api.get("/api/agents", headers=site.agent)
    assert refused.status_code == 403 and refused.json() == {
        "detail": "your role (agent) may not do this"
    }


def test_an_unexpected_error_is_a_page_for_pages_and_json_for_the_api(site: Site) -> None:
    def boom() -> None:
        raise RuntimeError("secret internals /var/lib/thing")

    site.app.router.add_api_route("/boom", boom)
    site.app.router.add_api_route("/api/boom", boom)
    page = site.page.get("/boom")
    assert page.status_code == 500 and is_html(page)
    assert "secret internals" not in page.text and "Something went wrong" in page.text
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    api = site.api.get("/api/boom")
    assert api.status_code == 500
    assert api.json() == {"detail": "internal error: the server could not answer this request"}


# 4. A 422 never echoes a large input; a body over the limit is a 413.


def test_a_validation_error_echoes_at_most_a_short_prefix_of_the_input(site: Site) -> None:
    text = "A" * 500_000
    response = site.api.post(
        f"/api/cases/{site.case.id}/notes", json={"text": text}, headers=site.agent
    )
    assert response.status_code == 422
    assert len(response.content) < 1000
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "text"] and error["type"] == "string_too_long"
    assert error["input"].startswith("AAAA") and len(error["input"]) <= 41
    nested = site.api.post("/api/teams", json={"name": ["B" * 100_000]}, headers=site.admin)
    assert nested.status_code == 422 and len(nested.content) < 1000
    assert "BBBB" not in nested.text


def test_a_body_over_the_limit_is_refused_with_413_whether_or_not_it_says_its_length(
    site: Site,
) -> None:
    big = b'{"text": "' + b"x" * MAX_BODY_BYTES + b'"}'
    said = site.api.post(
        f"/api/cases/{site.case.id}/notes", content=big, headers={**site.agent, **JSON}
    )
    assert said.status_code == 413
    assert said.json() == {"detail": f"the request body is over {MAX_BODY_BYTES} bytes"}

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    unsaid = site.api.post(
        f"/api/cases/{site.case.id}/notes", content=chunks(), headers={**site.agent, **JSON}
    )
    assert unsaid.status_code == 413
    form = site.page.post("/logout", content=b"csrf_token=" + b"x" * MAX_BODY_BYTES)
    assert form.status_code == 413 and is_html(form)
    notes = site.api.get(f"/api/cases/{site.case.id}", headers=site.agent).json()["notes"]
    assert notes == []  # nothing half-read was stored
    fits = site.api.post(
        f"/api/cases/{site.case.id}/notes", json={"text": "fits"}, headers=site.agent
    )
    assert fits.status_code == 201


# 5. Redirects never go to the Host header's site.


def test_the_trailing_slash_redirect_is_relative_whatever_the_host_header(site: Site) -> None:
    for path, location in (
        (f"/cases/{site.case.id}/", f"/cases/{site.case.id}"),
        ("/api/queue/?team=support&page=2", "/api/queue?team=support&page=2"),
    ):
        response = site.page.get(path, headers={"host": "evil.example"}, follow_redirects=False)
        assert response.status_code == 307, path
        assert response.headers["location"] == location
    for path in ("//evil.example/", "/\\evil.example/", "/no/such/"):
        response = site.page.get(f"http://testserver{path}", follow_redirects=False)
        assert response.status_code == 404, path
        assert "location" not in response.headers


# 6. What a login shows is never stored by a cache; the report charts are cached privately.


def test_logged_in_answers_are_not_stored_and_charts_are_cached_privately(site: Site) -> None:
    for path in ("/", f"/cases/{site.case.id}", "/account", "/api/queue", "/latency.csv"):
        response = site.page.get(path)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "no-store", path
    api = site.api.get("/api/me", headers=site.admin)
    assert api.headers["cache-control"] == "no-store"
    assert site.api.get("/login").headers["cache-control"] == "no-store"  # it holds a CSRF token
    chart = site.page.get("/reports/chart/trend.png")
    assert chart.status_code == 200 and chart.headers["cache-control"] == "private, max-age=300"
    assert "cache-control" not in site.api.get("/static/style.css").headers


# 8. Reply text that would drive a terminal or hide and reorder text is refused.


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("Sorry!\x1b[2J", "ESC"),
        ("ding\x07", "BEL"),
        ("over\rwrite", "CR"),
        ("\x9b31m red", "CSI"),
        ("pay \u202eevil\u202c now", "RLO"),
        ("\u2066isolated\u2069", "LRI"),
        ("hidden \U000e0041\U000e0042 tags", "U+E0041"),
    ],
)
def test_a_reply_with_control_or_reordering_characters_is_refused(
    site: Site, text: str, named: str, session: Session
) -> None:
    path = f"/api/cases/{site.case.id}/replies"
    response = site.api.post(path, json={"text": text}, headers=site.agent)
    assert response.status_code == 422
    message = response.json()["detail"][0]["msg"]
    assert f"[{named}]" in message and "may not contain" in message
    canned = site.api.post("/api/canned", json={"name": "c", "text": text}, headers=site.admin)
    assert canned.status_code == 422 and f"[{named}]" in canned.json()["detail"][0]["msg"]
    detail = site.api.get(f"/api/cases/{site.case.id}", headers=site.agent).json()
    assert detail["replies"] == []


def test_emoji_sequences_line_breaks_and_tabs_are_kept_in_replies(site: Site) -> None:
    text = (
        "Thanks \U0001f469\u200d\U0001f4bb \u2764\ufe0f \U0001f3f4\U000e0067\U000e0062"
        "\U000e0073\U000e0063\U000e0074\U000e007f\nline two\tand a tab\r\n"
        "three \u05e9\u05dc\u05d5\u05dd"
    )
    response = site.api.post(
        f"/api/cases/{site.case.id}/replies", json={"text": text}, headers=site.agent
    )
    assert response.status_code == 201, response.text
    assert response.json()["text"] == text
    canned = site.api.post("/api/canned", json={"name": "t", "text": text}, headers=site.admin)
    assert canned.status_code == 201
