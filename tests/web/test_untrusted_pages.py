"""Every page shows untrusted names inert: handles, display names, team names, topics, reasons,
notes, close reasons, canned replies, errors a platform gave. No control or format character
reaches a page raw; each is shown as a visible mark (both databases)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from socialcare.cases.models import Case
from socialcare.cases.workspace_models import CannedReply
from socialcare.config import Settings
from socialcare.display import mark_name
from socialcare.people.service import create_token
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

NOW = T0 + timedelta(days=1)
# A right-to-left override, a terminal escape, a bell, and the format characters that a list of
# names once missed: Arabic letter mark, a tag character, soft hyphen, Mongolian vowel
# separator, invisible plus.
BAD = "\u202egnp\u202c\x1b[2J\x07\u061c\U000e0041\u00ad\u180e\u2064<b>"
MARKS = ["[RLO]gnp[PDF]", "[ESC][2J", "[BEL]", "[ALM]", "[U+E0041]", "[SHY]", "[MVS]", "[IP]"]


@pytest.fixture
def client(settings: Settings, engine: object, session: Session) -> Iterator[TestClient]:
    with TestClient(create_app(settings, clock=lambda: NOW)) as c:
        sign_in(c, session, "lead", "admin")
        yield c


@pytest.fixture
def cases(session: Session) -> dict[str, int]:
    brand = make_account(
        session, "acme" + BAD[:8], last_error="HTTP 500: " + BAD, config={"polled": True}
    )
    team = make_team(session, "t" + BAD)
    agent = make_agent(session, "a" + BAD, display_name="A" + BAD)
    agent.teams.append(team)

    def case(minutes: int, customer: str, **kw: Any) -> int:
        root = make_post(
            session,
            brand,
            "hello",
            created_at=T0 + timedelta(minutes=minutes),
            author_handle="c" + BAD,
            author_external_id=customer,
        )
        made = make_case(session, brand, root, team=team, topic="o" + BAD, **kw)
        make_score(
            session,
            root,
            topic="o" + BAD,
            reasons=[{"signal": "keyword", "value": 1, "weight": 0.3, "detail": "k" + BAD}],
        )
        return made.id

    queued = case(0, "u-1")
    until = NOW + timedelta(minutes=5)
    held = case(5, "u-2", status="claimed", claimed_by=agent.id, claim_expires_at=until)
    closed = case(
        1, "u-1", status="resolved", closed_at=T0 + timedelta(hours=1), close_reason="r" + BAD
    )
    held_case = session.get_one(Case, held)
    make_reply(session, held_case, state="failed", last_error="HTTP 403: " + BAD)
    make_event(session, held_case, kind="note", actor=agent.handle, data={"text": "n" + BAD})
    session.add(CannedReply(name="m" + BAD, text="hi", team_id=team.id, created_by="lead"))
    create_token(session=session, agent=agent, name="k" + BAD, actor="lead", now=NOW)
    session.commit()
    return {"queued": queued, "held": held, "closed": closed}


class Shown(HTMLParser):
    """What a page shows a reader: its text and the attributes a browser displays (a value or
    a data attribute may carry a name exactly; it is never shown)."""

    DISPLAYED = frozenset({"title", "placeholder", "alt", "aria-label"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.attributes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes.extend(v or "" for k, v in attrs if k in self.DISPLAYED)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def shown(client: TestClient, path: str) -> str:
    """The text a page shows (its displayed attributes included)."""
    response = client.get(path)
    assert response.status_code == 200, path
    parser = Shown()
    parser.feed(response.text)
    parser.close()
    return "\n".join(["".join(parser.parts), *parser.attributes])


def _raw_controls(text: str) -> list[str]:
    """The control and format characters in text, named."""
    return sorted({f"U+{ord(ch):04X}" for ch in text if mark_name(ch) is not None})


def test_no_page_shows_a_control_or_format_character_raw(
    client: TestClient, cases: dict[str, int]
) -> None:
    pages = [
        "/",
        "/queue/rows",
        "/?status=claimed",
        f"/cases/{cases['queued']}",
        f"/cases/{cases['held']}",
        f"/cases/{cases['closed']}",
        "/floor",
        "/sources",
        "/audit",
        "/admin/people",
        "/admin/canned",
        "/account",
        "/latency?by=team",
        "/reports?period=day",
    ]
    for path in pages:
        response = client.get(path)
        assert "<b>" not in response.text, path
        assert _raw_controls(shown(client, path)) == [], path
    queue = shown(client, "/?status=")
    for prefix in ("t", "o", "k", "c"):  # team, topic, reason, customer
        assert prefix + MARKS[0] in queue
    held = shown(client, f"/cases/{cases['held']}")
    for mark in MARKS:
        assert mark in held, mark
    for prefix in ("n", "a", "t", "o", "k", "HTTP 403: "):  # note, holder, team, topic, reason
        assert prefix + MARKS[0] in held, prefix
    assert "r" + MARKS[0] in shown(client, f"/cases/{cases['queued']}")  # an earlier case
    assert "r" + MARKS[0] in shown(client, f"/cases/{cases['closed']}")
    assert "t" + MARKS[0] in shown(client, "/latency?by=team")
    assert "HTTP 500: " + MARKS[0] in shown(client, "/sources")
    people = shown(client, "/admin/people")
    assert "A" + MARKS[0] in people and "a" + MARKS[0] in people
    assert "m" + MARKS[0] in shown(client, "/admin/canned")
    tokens = shown(client, "/account")  # an admin sees everyone's tokens
    assert "k" + MARKS[0] in tokens and "a" + MARKS[0] in tokens
    report = shown(client, "/reports?period=day")
    assert "@c" in report, "the longest wait is listed (its handle on one line, inert)"
