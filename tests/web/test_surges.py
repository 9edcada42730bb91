"""The surge pages and their API: leads see, preview, send and close; agents only see; hostile
post text is shown inert; every reply is handed to the workers once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from socialcare.cases.models import Case, Reply
from socialcare.config import Settings
from socialcare.web import create_app
from tests.surge.world import T0, World, join_surge, surge_world
from tests.web.signin import sign_in

NOW = T0 + timedelta(hours=2)
HOSTILE = '<script>alert("x")</script> login \u202edead\u202c <b>still</b> broken'
TEMPLATE = "Hi @{handle}, logins are failing for everyone: a fix is on its way."


@pytest.fixture
def sent() -> list[tuple[Any, ...]]:
    return []


@pytest.fixture
def app(settings: Settings, engine: object, sent: list[tuple[Any, ...]]) -> Any:
    return create_app(settings, clock=lambda: NOW, enqueue=lambda *args: sent.append(args))


@pytest.fixture
def world(session: Session, settings: Settings) -> World:
    made = surge_world(session, settings, ["ann", "bob", "cem"])
    made.cases.append(join_surge(session, made, "mallory", HOSTILE))
    return made


def client_as(app: Any, session: Session, handle: str, role: str) -> TestClient:
    client = TestClient(app)
    sign_in(client, session, handle, role)
    return client


@pytest.fixture
def lead(app: Any, session: Session) -> Iterator[TestClient]:
    with client_as(app, session, "lena", "lead") as c:
        yield c


@pytest.fixture
def agent(app: Any, session: Session) -> Iterator[TestClient]:
    with client_as(app, session, "al", "agent") as c:
        yield c


def test_the_pages_show_the_incident_with_post_text_inert(lead: TestClient, world: World):
    listing = lead.get("/surges")
    assert listing.status_code == 200
    assert f'href="/surges/{world.surge.id}"' in listing.text
    assert "Security: log, password" in listing.text and "x:@acmecare" in listing.text
    page = lead.get(f"/surges/{world.surge.id}")
    assert page.status_code == 200
    for case in world.cases:
        assert f'href="/cases/{case.id}"' in page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;alert" in page.text
    assert "\u202e" not in page.text and 'class="ctl"' in page.text
    assert f'data-post="/api/surges/{world.surge.id}/acknowledge"' in page.text
    assert f'data-post="/api/surges/{world.surge.id}/resolve"' in page.text
    assert "opened" in page.text  # the timeline
    assert 'href="/surges"' in page.text  # the nav link


def test_the_json_lists_and_describes_the_surge(lead: TestClient, world: World):
    (row,) = lead.get("/api/surges").json()
    assert (row["id"], row["status"], row["cases"], row["answered"]) == (
        world.surge.id,
        "open",
        4,
        0,
    )
    assert row["detect_seconds"] == (world.surge.detected_at - world.surge.started_at).seconds
    body = lead.get(f"/api/surges/{world.surge.id}").json()
    assert [c["id"] for c in body["cases"]] == [c.id for c in world.cases]
    assert body["cases"][0]["waiting_seconds"] == (NOW - T0).total_seconds()
    assert HOSTILE in [p["text"] for p in body["posts"]]
    assert [e["kind"] for e in body["timeline"]] == ["opened"]
    assert lead.get("/api/surges/999999").status_code == 404
    assert lead.get("/api/surges?status=gone").status_code == 422


def test_an_agent_sees_the_incident_but_may_not_answer_acknowledge_or_resolve(
    agent: TestClient, world: World, session: Session, sent: list[tuple[Any, ...]]
):
    page = agent.get(f"/surges/{world.surge.id}?answer=hello")
    assert (
        page.status_code == 200 and "data-post" not in page.text and "answer-plan" not in page.text
    )
    sid = world.surge.id
    for url, body in [
        (f"/api/surges/{sid}/answer", {"text": TEMPLATE}),
        (f"/api/surges/{sid}/preview", {"text": TEMPLATE}),
        (f"/api/surges/{sid}/acknowledge", None),
        (f"/api/surges/{sid}/resolve", None),
    ]:
        assert agent.post(url, json=body).status_code == 403, url
    assert session.execute(select(Reply)).first() is None and sent == []


def test_a_lead_previews_then_sends_once_however_often_the_form_is_posted(
    lead: TestClient, world: World, session: Session, sent: list[tuple[Any, ...]]
):
    sid = world.surge.id
    page = lead.get(f"/surges/{sid}", params={"answer": TEMPLATE, "after_send": "same"})
    assert "Hi @ann, logins are failing" in page.text and "Goes to 4 customers" in page.text
    assert 'id="answer-send"' in page.text and 'value="same" selected' in page.text
    preview = lead.post(f"/api/surges/{sid}/preview", json={"text": TEMPLATE}).json()
    assert preview["to_answer"] == 4 and preview["previews"][1]["handle"] == "bob"
    no_csrf = lead.post(
        f"/api/surges/{sid}/answer", json={"text": TEMPLATE}, headers={"X-CSRF-Token": ""}
    )
    assert no_csrf.status_code == 403
    first = lead.post(f"/api/surges/{sid}/answer", json={"text": TEMPLATE, "after_send": "same"})
    again = lead.post(f"/api/surges/{sid}/answer", json={"text": TEMPLATE, "after_send": "same"})
    assert first.status_code == again.status_code == 200, first.text
    assert (first.json()["queued"], again.json()["queued"]) == (4, 0)
    assert first.json()["surge"]["status"] == "answered"
    ids = session.execute(select(Reply.id).order_by(Reply.id)).scalars().all()
    session.rollback()  # a SQLite read holds the write lock the app needs
    assert sorted(args[1] for args in sent) == ids and {a[0] for a in sent} == {"send_reply"}
    shown = lead.get(f"/surges/{sid}").text
    assert "the same answer" in shown and "case_answered" in shown


def test_an_answer_too_long_for_one_customer_is_refused_on_the_page_and_by_the_api(
    lead: TestClient, world: World, session: Session
):
    sid = world.surge.id
    too_long = "@{handle} " + "z" * (280 - len("@ann "))
    page = lead.get(f"/surges/{sid}", params={"answer": too_long})
    assert 'id="answer-refused"' in page.text and "for @mallory" in page.text
    assert 'id="answer-send"' not in page.text
    refused = lead.post(f"/api/surges/{sid}/answer", json={"text": too_long})
    assert refused.status_code == 422 and "280" in refused.json()["detail"][0]["msg"]
    assert session.execute(select(Reply)).first() is None
    session.rollback()


def test_acknowledge_then_resolve_closes_the_cases_and_conflicts_are_told(
    lead: TestClient, world: World, session: Session
):
    sid = world.surge.id
    assert lead.post(f"/api/surges/{sid}/acknowledge").json()["status"] == "acknowledged"
    twice = lead.post(f"/api/surges/{sid}/acknowledge")
    assert twice.status_code == 409 and "is acknowledged" in twice.json()["detail"]
    resolved = lead.post(f"/api/surges/{sid}/resolve")
    assert resolved.status_code == 200
    assert resolved.json()["closed_cases"] == [c.id for c in world.cases]
    session.expire_all()
    assert {c.status for c in session.execute(select(Case)).scalars()} == {"resolved"}
    session.rollback()  # a SQLite read holds the write lock the app needs
    assert lead.post(f"/api/surges/{sid}/resolve").status_code == 409
    page = lead.get(f"/surges/{sid}").text
    assert "data-post" not in page and "resolved" in page
