"""The queue, the case page, the floor and the API show the language of each case's first post,
and the queue filters by it (on both databases)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from socialcare.config import Settings
from socialcare.web import create_app
from tests.factories import T0, make_account, make_case, make_event, make_post, make_team
from tests.web.signin import sign_in

NOW = T0 + timedelta(hours=1)
POSTS = [
    ("fa", "سفارشم هنوز نرسیده"),
    ("ru", "Мой интернет не работает"),
    ("fa", "غذا سرد بود"),
    ("und", "👍"),
    (None, "stored before detection"),
]


@pytest.fixture
def client(settings: Settings, engine: object, session: Session) -> Iterator[TestClient]:
    acme = make_account(session, "acme")
    care = make_team(session, "care", languages=["en"])
    for minutes, (code, text) in enumerate(POSTS):
        root = make_post(session, acme, text, created_at=T0 + timedelta(minutes=minutes))
        root.language = code
        case = make_case(session, acme, root, team=care)
        if code == "fa":
            make_event(
                session,
                case,
                kind="case_opened",
                data={"rule": "language fa: no team reads it, sent to care"},
            )
    closed = make_post(session, acme, "Danke", created_at=T0, language="de")
    make_case(session, acme, closed, team=care, status="resolved")
    session.commit()
    with TestClient(create_app(settings, clock=lambda: NOW)) as c:
        sign_in(c, session, "lead", "lead")
        yield c


def _badges(html: str) -> list[str]:
    return re.findall(r'<code class="lang"[^>]*>([^<]*)</code>', html)


def test_the_queue_shows_each_language_and_filters_by_it(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert sorted(_badges(page.text)) == ["fa", "fa", "ru", "und"]
    menu = re.search(r'<select name="language">(.*?)</select>', page.text, re.S)
    assert menu is not None
    # Every language a customer post was seen in, closed cases' too.
    assert re.findall(r'<option value="(\w+)"', menu.group(1)) == ["de", "fa", "ru", "und"]
    assert 'lang="fa"' in page.text and 'lang="und"' not in page.text

    persian = client.get("/?language=FA")
    assert sorted(_badges(persian.text)) == ["fa", "fa"]
    assert "2 open cases" in persian.text
    rows = client.get("/api/queue", params={"language": "ru"})
    assert [r["language"] for r in rows.json()] == ["ru"]
    assert rows.headers["X-Total-Count"] == "1"
    for bad in ("farsi", "f1", "<b>"):  # a language that cannot be is refused
        assert client.get("/", params={"language": bad}).status_code == 400
        assert client.get("/api/queue", params={"language": bad}).status_code == 400


def test_the_case_page_api_and_floor_show_languages_and_why_a_case_went_where_it_did(
    client: TestClient,
) -> None:
    first = client.get("/api/queue").json()[0]
    assert first["language"] == "fa"
    page = client.get(f"/cases/{first['id']}")
    assert '<code class="lang" id="case-language">fa</code>' in page.text
    assert "language fa: no team reads it, sent to care" in page.text
    detail = client.get(f"/api/cases/{first['id']}").json()
    assert detail["case"]["language"] == "fa"
    assert detail["posts"][0]["language"] == "fa"

    floor = client.get("/floor")
    listed = re.search(r'<ul class="floor" id="by-language">(.*?)</ul>', floor.text, re.S)
    assert listed is not None
    counts = re.findall(r'<code class="lang"[^>]*>([^<]*)</code>(?:</a>)?: (\d+)', listed.group(1))
    assert counts == [("fa", "2"), ("ru", "1"), ("und", "1"), ("—", "1")]
    assert client.get("/api/floor").json()["by_language"] == {"fa": 2, "ru": 1, "und": 1, "—": 1}
