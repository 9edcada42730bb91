"""Web pages on both databases: queue order and filters, escaping, headers, case page, latency."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from socialcare.cases.models import Case
from socialcare.config import Settings
from socialcare.people.models import Team
from socialcare.posts.models import Account, Post
from socialcare.web import create_app
from tests.factories import (
    T0,
    make_account,
    make_agent,
    make_case,
    make_event,
    make_post,
    make_reply,
    make_score,
    make_team,
)
from tests.web.signin import sign_in

NOW = T0 + timedelta(hours=2)
HOSTILE = '<script>alert(1)</script> and <b>bold</b> "quoted" & more'


@dataclass
class World:
    """The rows the tests look for."""

    p1_old: Case
    p1_new: Case
    p2: Case
    responded: Case
    closed: Case


@pytest.fixture
def client(settings: Settings, engine: object, session: Session) -> Iterator[TestClient]:
    with TestClient(create_app(settings, clock=lambda: NOW)) as c:
        sign_in(c, session, "lead", "lead")
        yield c


@pytest.fixture
def world(session: Session) -> World:
    acme = make_account(session, "acme")
    billing = make_team(session, "billing")
    delivery = make_team(session, "delivery")
    alice = make_agent(session, "alice")

    def case(minutes: int, priority: str, team: Team, text: str, **kw: Any) -> Case:
        root = make_post(session, acme, text, created_at=T0 + timedelta(minutes=minutes))
        made = make_case(session, acme, root, priority=priority, team=team, **kw)
        made.urgency = {"P1": 0.9, "P2": 0.6}.get(priority, 0.3)
        return made

    p2 = case(0, "P2", billing, "where is my refund")
    p1_new = case(30, "P1", delivery, HOSTILE, status="claimed", claimed_by=alice.id)
    p1_old = case(10, "P1", billing, "parcel lost " + "x" * 400)
    answered = T0 + timedelta(minutes=9)
    responded = case(5, "P3", delivery, "thanks", status="responded", first_response_at=answered)
    closed = case(1, "P1", billing, "all good", status="resolved")
    make_score(
        session,
        session.get_one(Post, p1_new.root_post_id),
        reasons=[
            {"signal": "negative_sentiment", "value": 0.92, "weight": 0.4},
            {"signal": "keyword", "value": 1, "weight": 0.25, "detail": "<i>lost</i>"},
        ],
    )
    session.commit()
    return World(p1_old, p1_new, p2, responded, closed)


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_queue_order_and_total(client: TestClient, world: World) -> None:
    rows = client.get("/api/queue").json()
    assert [r["id"] for r in rows] == [
        world.p1_old.id,
        world.p1_new.id,
        world.p2.id,
        world.responded.id,
    ]
    page = client.get("/")
    assert page.status_code == 200
    assert "<title>socialcare queue</title>" in page.text
    assert "4 open cases" in page.text
    body = page.text
    order = [body.index(f'href="/cases/{c.id}"') for c in (world.p1_old, world.p1_new, world.p2)]
    assert order == sorted(order)
    assert f'href="/cases/{world.closed.id}"' not in body


def test_queue_row_contents(client: TestClient, world: World) -> None:
    rows = {r["id"]: r for r in client.get("/api/queue").json()}
    old = rows[world.p1_old.id]
    assert old["priority"] == "P1"
    assert old["team"] == "billing"
    assert len(old["text"]) <= 280 and old["text"].endswith("…")
    assert old["opened_at"] == (T0 + timedelta(minutes=10)).isoformat()
    assert old["sla_label"] == "overdue by 1h 35m" and old["overdue"] is True
    new = rows[world.p1_new.id]
    assert new["claimed_by"] == "alice"
    assert new["reasons"] == ["negative_sentiment 0.92×0.4", "keyword 1×0.25 (<i>lost</i>)"]
    assert new["top_reasons"] == new["reasons"]  # ranked by value times weight
    assert rows[world.p2.id]["sla_label"] == "overdue by 1h 00m"
    responded = rows[world.responded.id]
    assert responded["status"] == "responded"
    assert responded["response_seconds"] == 240.0
    assert responded["sla_label"] == "met"


def test_queue_filters(client: TestClient, world: World) -> None:
    billing = [r["id"] for r in client.get("/api/queue", params={"team": "billing"}).json()]
    assert billing == [world.p1_old.id, world.p2.id]
    claimed = client.get("/api/queue", params={"status": "claimed"}).json()
    assert [r["id"] for r in claimed] == [world.p1_new.id]
    both = client.get("/api/queue", params={"team": "delivery", "status": "responded"}).json()
    assert [r["id"] for r in both] == [world.responded.id]
    assert client.get("/api/queue", params={"team": "nobody"}).json() == []
    page = client.get("/", params={"team": "billing", "status": ""})
    assert "2 open cases" in page.text
    assert f'href="/cases/{world.p1_new.id}"' not in page.text
    assert client.get("/", params={"status": "resolved"}).status_code == 400


def test_queue_filters_by_priority_platform_and_topic(
    client: TestClient, world: World, session: Session
) -> None:
    p1 = [r["id"] for r in client.get("/api/queue", params={"priority": "P1"}).json()]
    assert p1 == [world.p1_old.id, world.p1_new.id]
    assert client.get("/api/queue", params={"priority": "P9"}).status_code == 400
    world.p2.topic = "refund"
    world.p1_old.platform = "mastodon"
    session.commit()
    topic = client.get("/api/queue", params={"topic": "refund"}).json()
    assert [r["id"] for r in topic] == [world.p2.id]
    masto = client.get("/api/queue", params={"platform": "mastodon", "priority": "P1"}).json()
    assert [r["id"] for r in masto] == [world.p1_old.id]
    page = client.get("/", params={"platform": "mastodon"}).text
    assert '<option value="mastodon" selected>' in page and "1 open case." in page


def test_hostile_text_is_escaped(client: TestClient, world: World) -> None:
    for path in ("/", f"/cases/{world.p1_new.id}"):
        body = client.get(path).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
        assert "&lt;b&gt;bold&lt;/b&gt;" in body
        assert "<script>alert" not in body
        assert "<b>bold" not in body
        assert "<i>lost" not in body
        assert "&lt;i&gt;lost&lt;/i&gt;" in body
        # No inline script: every script element loads a file of the app's own.
        scripts = re.findall(r"<script[^>]*>", body)
        assert scripts and all(
            re.fullmatch(r'<script src="/static/\w+\.js" defer>', t) for t in scripts
        )


def test_security_headers(client: TestClient) -> None:
    for path in ("/", "/healthz", "/latency", "/static/style.css", "/cases/999999"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"


def test_case_page_thread_in_order(client: TestClient, world: World, session: Session) -> None:
    case = world.p2
    acme = session.get_one(Account, case.account_id)
    root = session.get_one(Post, case.root_post_id)
    follow = make_post(
        session,
        acme,
        "still waiting, order 123",
        created_at=T0 + timedelta(minutes=20),
        author_handle=root.author_handle,
        case=case,
    )
    brand_at = T0 + timedelta(minutes=12)
    make_post(session, acme, "Sorry! DM us", created_at=brand_at, is_brand=True, in_reply_to=root)
    make_post(session, acme, "unrelated chatter", created_at=T0 + timedelta(minutes=15))
    make_reply(session, case, "Reply from the outbox", state="sent")
    make_event(session, case, "case.claimed", data={"note": "<b>hi</b>"})
    session.commit()

    body = client.get(f"/cases/{case.id}").text
    positions = [
        body.index("where is my refund"),
        body.index("Sorry! DM us"),
        body.index(follow.text),
    ]
    assert positions == sorted(positions)
    assert "unrelated chatter" not in body
    assert "Reply from the outbox" in body and "case.claimed" in body
    assert "&lt;b&gt;hi&lt;/b&gt;" in body
    assert "billing" in body


def test_unknown_case_is_404(client: TestClient, engine: object) -> None:
    response = client.get("/cases/424242")
    assert response.status_code == 404
    assert "There is no case 424242" in response.text
    assert client.get("/cases/not-a-number").status_code == 422


def test_latency_page_and_csv(client: TestClient, session: Session) -> None:
    acme, bolt = make_account(session, "acme"), make_account(session, "bolt")
    for minutes, reply_after in ((0, 300), (1, 900), (2, None)):
        root = make_post(session, acme, created_at=T0 + timedelta(minutes=minutes))
        answered = None if reply_after is None else root.created_at + timedelta(seconds=reply_after)
        make_case(session, acme, root, priority="P1", first_response_at=answered)
    root = make_post(session, bolt, created_at=T0)
    make_case(session, bolt, root, priority="P2", first_response_at=T0 + timedelta(hours=2))
    session.commit()

    page = client.get("/latency")
    assert page.status_code == 200
    assert 'href="/latency.csv?by=brand"' in page.text
    assert "acme" in page.text and "bolt" in page.text

    response = client.get("/latency.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(response.text)))
    assert lines == [
        ["group", "cases", "answered", "unanswered", "p50_s", "p90_s", "sla_%"],
        ["acme", "3", "2", "1", "600.0", "840.0", "66.7"],
        ["bolt", "1", "1", "0", "7200.0", "7200.0", "0.0"],
    ]
    by_priority = list(csv.reader(io.StringIO(client.get("/latency.csv?by=priority").text)))
    assert [line[0] for line in by_priority[1:]] == ["P1", "P2"]
    assert client.get("/latency?by=colour").status_code == 400


def test_sources_page_and_api_show_each_accounts_health_and_its_incidents(
    client: TestClient, session: Session
) -> None:
    from socialcare.ingest.service import open_incident

    late = make_account(
        session, "acme", config={"polled": True}, last_polled_at=NOW - timedelta(minutes=30)
    )
    make_account(
        session,
        "acme@social.example",
        platform="mastodon",
        config={"polled": True},
        last_polled_at=NOW - timedelta(seconds=30),
        failing=True,
        last_error=f"401 from /api/v1/notifications {HOSTILE}",
    )
    make_account(session, "replayed")  # not polled: not a source to watch
    for minutes in (50, 20):
        make_post(session, late, created_at=NOW - timedelta(minutes=minutes), ingested_at=NOW)
    incidents = [
        open_incident(
            session=session,
            account_id=late.id,
            kind=kind,
            severity=severity,
            detail=detail,
            now=NOW - age,
        )
        for kind, severity, detail, age in (
            (
                "window_gap",
                "error",
                f"older than search reaches: lost {HOSTILE}",
                timedelta(hours=1),
            ),
            (
                "window_overflow",
                "info",
                "1,500 mentions; 700 filled from search",
                timedelta(days=1),
            ),
            ("window_overflow", "info", "last month's", timedelta(days=10)),
        )
    ]
    assert None not in incidents
    gap, filled, old = (i for i in incidents if i is not None)
    session.commit()

    api = client.get("/api/sources")
    assert api.status_code == 200
    body = api.json()
    accounts = {a["handle"]: a for a in body["accounts"]}
    assert set(accounts) == {"acme", "acme@social.example"}
    assert accounts["acme"]["state"] == "late"
    assert accounts["acme"]["posts"] == 2 and accounts["acme"]["last_hour"] == 2
    assert accounts["acme"]["lag_s"] == 20 * 60
    assert set(accounts["acme"]["incidents"]) == {"window_gap", "missed_polls"}
    assert accounts["acme@social.example"]["state"] == "failing"
    assert accounts["acme@social.example"]["projected_cost"] is None  # billed reads are X's
    # Open incidents first, then the week's resolved ones; older ones are left out.
    assert [i["id"] for i in body["incidents"]] == [gap.id, filled.id]
    assert body["incidents"][0]["resolved_at"] is None

    page = client.get("/sources")
    assert page.status_code == 200
    text = page.text
    assert "<script>alert(1)</script>" not in text
    assert text.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2  # the error and the detail
    assert text.index(f'data-incident="{gap.id}"') < text.index(f'data-incident="{filled.id}"')
    assert f'data-incident="{old.id}"' not in text
    assert re.search(
        rf'data-account="{late.id}">\s*<td>x @acme</td>\s*<td class="state">late', text
    )
    assert 'href="/sources"' in text  # the lead's navigation links it


def test_the_queue_comes_in_pages_that_keep_the_filters(
    client: TestClient, session: Session
) -> None:
    acme = make_account(session, "acme")
    cases = []
    for minute in range(60):
        root = make_post(session, acme, created_at=T0 + timedelta(minutes=minute))
        cases.append(make_case(session, acme, root, priority="P2"))
    other = make_case(session, acme, make_post(session, acme), priority="P3")
    session.commit()
    ids = [c.id for c in cases]  # oldest first: the queue's order within a priority

    first = client.get("/?priority=P2")
    assert "60 open cases, showing 1–50." in first.text
    assert "page 1 of 2" in first.text
    assert 'href="/?priority=P2&amp;page=2" rel="next"' in first.text
    assert f'href="/cases/{ids[49]}"' in first.text and f'href="/cases/{ids[50]}"' not in first.text

    second = client.get("/queue/rows?priority=P2&page=2")  # what the live page swaps in
    shown = [int(i) for i in re.findall(r'data-case="(\d+)"', second.text)]
    assert shown == ids[50:]
    assert "showing 51–60" in second.text and 'href="/?priority=P2" rel="prev"' in second.text
    assert f'data-case="{other.id}"' not in second.text

    api = client.get("/api/queue", params={"priority": "P2", "limit": 5, "offset": 50})
    assert [r["id"] for r in api.json()] == ids[50:55]
    assert api.headers["X-Total-Count"] == "60"
    for bad in ({"limit": 0}, {"limit": 201}, {"offset": -1}):
        assert client.get("/api/queue", params=bad).status_code == 422
    assert client.get("/?page=0").status_code == 422
